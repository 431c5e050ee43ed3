"""The state folder's check (generator/steps/statedir.py): on the local target, and the rules on `ls` lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.steps.core import statedir
from generator.steps.core.transport import LocalTarget


def test_a_missing_state_dir_is_created_0700_with_the_folders_on_the_way(tmp_path: Path) -> None:
    root = tmp_path / "home"
    root.mkdir(mode=0o755)
    statedir.ensure(LocalTarget(), str(root / "a" / "state"))
    assert [(root / p).stat().st_mode & 0o777 for p in ("a", "a/state")] == [0o700, 0o700]


@pytest.mark.parametrize(("mode", "where"), [(0o770, ""), (0o707, ""), (0o777, "above")])
def test_a_state_dir_writable_by_others_is_refused_in_one_line(tmp_path: Path, mode: int, where: str) -> None:
    state = tmp_path / "above" / "state"
    state.mkdir(parents=True)
    (state.parent if where else state).chmod(mode)
    with pytest.raises(statedir.UnsafeStateDir) as caught:
        statedir.ensure(LocalTarget(), str(state))
    message = str(caught.value)
    assert message.startswith(f"state folder {state}")
    assert (f": {state.parent} on the way to it" in message) == bool(where)
    assert "writable by group or others" in message and "\n" not in message


@pytest.mark.parametrize(
    ("line", "own", "problem"),
    [
        ("drwx------ 2 1000 1000 4096 Dec  6 22:00 /x", True, None),
        ("drwxr-xr-x 2 1000 1000 4096 Dec  6 22:00 /x", True, None),
        ("drwx------ 2 1001 1001 4096 Dec  6 22:00 /x", True,
         "is owned by uid 1001, not by the deploying user (uid 1000)"),
        ("drwxrwx--- 2 1000 1000 4096 Dec  6 22:00 /x", True,
         "is writable by group or others (drwxrwx---): run 'chmod 700' on it"),
        ("-rw------- 1 1000 1000 0 Dec  6 22:00 /x", True, "is not a folder"),
        ("drwxrwxrwt 9 0 0 4096 Dec  6 22:00 /tmp", False, None),
        ("drwxrwxrwt 9 1001 1001 4096 Dec  6 22:00 /tmp/a", False,
         "is owned by uid 1001, neither the deploying user (uid 1000) nor root"),
        ("drwxrwxrwx 9 0 0 4096 Dec  6 22:00 /srv", False, "is writable by group or others (drwxrwxrwx)"),
        ("drwxr-xr-x 9 0 0 4096 Dec  6 22:00 /srv", False, None),
    ],
)  # fmt: skip
def test_the_rules_on_one_ls_line(line: str, own: bool, problem: str | None) -> None:
    assert statedir.judge(line, 1000, own=own) == problem


def test_the_folders_checked_stop_at_the_home_for_a_relative_path() -> None:
    assert statedir.on_the_way(".wfgen/production") == [".wfgen/production", ".wfgen"]
    assert statedir.on_the_way("~/.wfgen") == [".wfgen"]
    assert statedir.on_the_way("/srv/wfgen/") == ["/srv/wfgen", "/srv"]

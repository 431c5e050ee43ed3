"""generator/render/output.py: write only what changed, atomically; report stale, missing and orphaned files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from generator.manifest.resolve import GENERATED_NOTE
from generator.manifest.validate import parse_manifest
from generator.render.files import DEPLOY_WORKFLOW, MANIFEST_JSON, render
from generator.render.output import orphaned_files, stale_files, write_files
from tests.support.files import build_file_tree, snapshot

MANIFEST = """\
[project]
name = "shop"
branches = ["main"]

[services.api]
repository = "shop/api"
port = 8000
"""
HEADER = "# " + GENERATED_NOTE.format(source="services.toml")
LONG_AGO_NS = 1_000_000_000 * 1_000_000_000  # 2001-09-09, far from "now"


def rendered(text: str = MANIFEST) -> dict[str, str]:
    return render(parse_manifest(text), source="services.toml")


def age(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(LONG_AGO_NS, LONG_AGO_NS))


def mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_write_creates_directories_and_returns_sorted_paths(tmp_path: Path) -> None:
    files = {"b/two.txt": "2\n", "a/deep/one.txt": "1\n", "top.txt": "top"}
    assert write_files(tmp_path, files) == ["a/deep/one.txt", "b/two.txt", "top.txt"]
    assert {rel: (tmp_path / rel).read_text(encoding="utf-8") for rel in files} == files
    assert oct((tmp_path / "top.txt").stat().st_mode & 0o777) == oct(0o644)


def test_write_skips_unchanged_files_and_leaves_their_mtime_alone(tmp_path: Path) -> None:
    files = rendered()
    assert write_files(tmp_path, files) == sorted(files)
    age(tmp_path)
    before = mtimes(tmp_path)
    assert write_files(tmp_path, files) == []
    assert mtimes(tmp_path) == before
    changed = rendered(MANIFEST.replace('branches = ["main"]', 'branches = ["main", "next"]'))
    assert write_files(tmp_path, changed) == [MANIFEST_JSON, DEPLOY_WORKFLOW]
    after = mtimes(tmp_path)
    assert {rel for rel in after if after[rel] != before[rel]} == {MANIFEST_JSON, DEPLOY_WORKFLOW}


def test_write_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "gen.txt"
    write_files(tmp_path, {"gen.txt": "old\n" * 1000})
    target.chmod(0o640)
    inode = target.stat().st_ino
    with target.open(encoding="utf-8") as reader:
        write_files(tmp_path, {"gen.txt": "new\n"})
        assert reader.read() == "old\n" * 1000  # an open reader keeps the complete old file
    assert target.read_text(encoding="utf-8") == "new\n"
    assert target.stat().st_ino != inode  # renamed into place, not rewritten in place
    assert target.stat().st_mode & 0o777 == 0o640  # the user's mode survives
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen.txt"]  # no temp file left behind


def test_write_keeps_bytes_exactly(tmp_path: Path) -> None:
    write_files(tmp_path, {"x.txt": "a\r\nb ✓\n\n"})
    assert (tmp_path / "x.txt").read_bytes() == "a\r\nb ✓\n\n".encode()


@pytest.mark.parametrize("bad", ["../escape.txt", "/abs.txt", "a/../../b.txt", ""])
def test_paths_must_stay_inside_the_root(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="inside the output directory"):
        write_files(tmp_path / "root", {bad: "x"})
    assert not (tmp_path / "escape.txt").exists()


def test_up_to_date_tree_has_nothing_stale_and_check_writes_nothing(tmp_path: Path) -> None:
    files = rendered()
    write_files(tmp_path, files)
    before = snapshot(tmp_path)
    assert stale_files(tmp_path, files) == []
    assert stale_files(tmp_path, rendered(MANIFEST.replace("8000", "8001")))  # stale against a new manifest
    assert snapshot(tmp_path) == before


def test_hand_edited_generated_file_is_changed_with_a_diff(tmp_path: Path) -> None:
    files = rendered()
    write_files(tmp_path, files)
    path = tmp_path / DEPLOY_WORKFLOW
    path.write_text(
        path.read_text(encoding="utf-8").replace("max-parallel: 6", "max-parallel: 60"), encoding="utf-8"
    )
    [stale] = stale_files(tmp_path, files)
    assert (stale.path, stale.reason) == (DEPLOY_WORKFLOW, "changed")
    lines = stale.diff.splitlines()
    assert lines[:2] == [f"--- a/{DEPLOY_WORKFLOW}", f"+++ b/{DEPLOY_WORKFLOW}"]
    assert "-      max-parallel: 60" in lines and "+      max-parallel: 6" in lines


def test_manifest_change_makes_workflow_and_manifest_json_stale(tmp_path: Path) -> None:
    write_files(tmp_path, rendered())
    new = rendered(MANIFEST.replace('branches = ["main"]', 'branches = ["main", "next"]'))
    stale = stale_files(tmp_path, new)
    assert [(s.path, s.reason) for s in stale] == [(MANIFEST_JSON, "changed"), (DEPLOY_WORKFLOW, "changed")]
    assert "+          - next\n" in stale[1].diff


def test_deleted_file_is_missing(tmp_path: Path) -> None:
    files = rendered()
    write_files(tmp_path, files)
    (tmp_path / ".github/wfgen/steps/core/steplib.py").unlink()
    [stale] = stale_files(tmp_path, files)
    assert (stale.path, stale.reason) == (".github/wfgen/steps/core/steplib.py", "missing")
    assert stale.diff.startswith(
        "--- a/.github/wfgen/steps/core/steplib.py\n+++ b/.github/wfgen/steps/core/steplib.py\n"
    )
    assert f"+{HEADER}\n" in stale.diff


def test_orphaned_generated_files_are_reported_but_hand_written_ones_are_not(tmp_path: Path) -> None:
    files = rendered()
    write_files(tmp_path, files)
    build_file_tree(
        tmp_path,
        {
            ".github/wfgen/retired_step.py": f"{HEADER}\nprint('old')\n",
            ".github/workflows/old-deploy.yml": f"{HEADER}\nname: old\n",
            ".github/workflows/ci.yml": "name: CI  # hand-written\n",
            ".github/wfgen/notes.json": '{\n  "_generated": "by hand"\n}\n',
            "elsewhere/copied.py": f"{HEADER}\n",
        },
    )
    assert orphaned_files(tmp_path, files) == [
        ".github/wfgen/retired_step.py",
        ".github/workflows/old-deploy.yml",
    ]
    stale = stale_files(tmp_path, files)
    assert [(s.path, s.reason) for s in stale] == [
        (".github/wfgen/retired_step.py", "orphaned"),
        (".github/workflows/old-deploy.yml", "orphaned"),
    ]
    assert stale[0].diff.splitlines()[2:] == ["@@ -1,2 +0,0 @@", f"-{HEADER}", "-print('old')"]
    assert (tmp_path / ".github/wfgen/retired_step.py").exists()  # reported, never deleted


def test_an_old_manifest_json_is_recognised_as_generated(tmp_path: Path) -> None:
    files = rendered()
    build_file_tree(tmp_path, {".github/wfgen/old/manifest.json": files[MANIFEST_JSON]})
    assert orphaned_files(tmp_path, files) == [".github/wfgen/old/manifest.json"]

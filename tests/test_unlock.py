"""`wfgen unlock`: says whose the lock was, releases it; exit 1 when the target is unreachable, 2 when there
is nothing to release or the input is bad. Against a local target's real lock dir."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import cli
from generator.steps.core import holder as holders
from generator.steps.core import lock, transport
from tests.support.manifests import manifest_toml


def write_manifest(tmp_path: Path, target: dict[str, object] | None = None) -> Path:
    state = tmp_path / "state"
    path = tmp_path / "services.toml"
    services = {"web": {"path": "web", "port": 8080}, "api": {"path": "api", "port": 8081}}
    path.write_text(manifest_toml(services, target={"state_dir": str(state), **(target or {})}))
    return path


def unlock(manifest: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["unlock", *args, "--manifest", str(manifest)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_unlock_says_whose_lock_it_was_and_releases_it(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    lock_dir = tmp_path / "state" / "locks" / "web"
    lock_dir.mkdir(parents=True)
    owner = {"holder": "alice", "host": "laptop", "pid": 4242, "run_id": "20261206-140211-ab12",
             "since": "2026-12-06T14:02:11.000Z", "token": "f" * 16}  # fmt: skip
    (lock_dir / "owner").write_text(json.dumps(owner) + "\n")
    code, out, err = unlock(manifest, "web")
    since = holders._local_clock(owner["since"])
    assert (code, err) == (0, "")
    assert out.startswith(
        f"web: locked by alice on laptop (pid 4242, run 20261206-140211-ab12) since {since}, refreshed "
    )
    assert out.endswith(" s ago\nweb: released the lock\n")
    assert not lock_dir.exists() and list(lock_dir.parent.iterdir()) == []


def test_unlock_of_a_live_deploys_lock_and_a_second_unlock(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    with transport.LocalTarget() as local:
        held = lock.ServiceLock(local, str(tmp_path / "state"), "api")
        held.acquire(1, 0, lambda holder: pytest.fail("the free lock made us wait"))
        code, out, _ = unlock(manifest, "api")
        held.release()
    assert code == 0
    assert out.startswith(
        f"api: locked by {holders.holder_name()} on {socket.gethostname()} (pid {os.getpid()}) "
    )
    assert unlock(manifest, "api") == (2, "", "api: no lock is held; nothing to release\n")


def test_unlock_of_an_unknown_service_is_one_line_exit_2(tmp_path: Path) -> None:
    code, out, err = unlock(write_manifest(tmp_path), "wbe")
    assert (code, out) == (2, "")
    assert err == "unlock: unknown service 'wbe' (did you mean 'web'?); known: web, api\n"


def test_unlock_of_an_unreachable_target_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    manifest = write_manifest(tmp_path, {"kind": "ssh", "port": port, "insecure_ignore_host_key": True})
    monkeypatch.setenv("VPS_HOST", "127.0.0.1")
    monkeypatch.setenv("VPS_USER", "nobody")
    monkeypatch.setenv("VPS_SSH_KEY", "not a key")
    code, out, err = unlock(manifest, "web")
    assert (code, out) == (1, "")
    assert err.endswith(
        "web: cannot reach $VPS_USER@$VPS_HOST:"
        f"{port}: ssh: connect to host $VPS_HOST port {port}: Connection refused\n"
    )
    assert "127.0.0.1" not in err and "nobody" not in err


def test_unlock_acts_on_the_environment_given(tmp_path: Path) -> None:
    """Each environment keeps its locks in a state folder of its own; without --env, the first one's."""
    manifest = tmp_path / "services.toml"
    manifest.write_text(
        f'[project]\nname = "shop"\n\n[target]\nkind = "local"\nstate_dir = "{tmp_path / "state"}"\n\n'
        '[services.web]\npath = "web"\nport = 3000\n\n'
        '[environments.production]\nbranches = ["main"]\n\n'
        '[environments.staging]\nbranches = ["develop"]\nport_offset = 1000\n'
    )
    lock_dir = tmp_path / "state" / "staging" / "locks" / "web"
    lock_dir.mkdir(parents=True)
    owner = {"holder": "bob", "host": "ci", "pid": 7, "token": "e" * 16}
    (lock_dir / "owner").write_text(json.dumps(owner) + "\n")
    assert unlock(manifest, "web") == (2, "", "web: no lock is held; nothing to release\n")
    code, out, _ = unlock(manifest, "web", "--env", "staging")
    assert code == 0 and out.startswith("web: locked by bob on ci (pid 7) since ?, refreshed ")
    assert not lock_dir.exists()

"""`wfgen status` and generator/steps/status.py: what runs, since when, health, deploys and rollback images,
asked from a real Docker engine (locally and through a real sshd)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from generator.cli import cli
from generator.commands import status as status_report
from generator.steps import status
from generator.steps.core.audit import AuditEntry
from generator.steps.engine.images import KeptImage
from generator.steps.engine.running import Running
from tests.support.docker import docker
from tests.support.fleet import Fleet, make_fleet
from tests.support.manifests import toml_table
from tests.support.sshd import SshServer


def deploy(fleet: Fleet, services: str) -> str:
    """Deploy from the fleet folder; the run id the audit log records."""
    result = fleet.wfgen("deploy", services, "main", "--quiet", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    run_id: str = fleet.last_run()["run_id"]
    return run_id


def status_of(
    fleet: Fleet, *args: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    result = fleet.wfgen("status", "--json", *args, timeout=120, **env)
    assert result.stdout.startswith("{"), result.stdout + result.stderr
    document = json.loads(result.stdout)
    return result, {item["service"]: item for item in document["services"]}


def test_after_a_deploy_and_a_second_deploy_of_one_service(
    tmp_path: Path, docker_host: str, docker_project: str
) -> None:
    fleet = make_fleet(tmp_path / "f", docker_project, docker_host, {"api": {}, "web": {}})
    first_run = deploy(fleet, "all")
    first = fleet.repos["web"].head
    result, found = status_of(fleet)
    assert result.returncode == 0, result.stderr
    for name in ("api", "web"):
        item = found[name]
        assert (item["state"], item["serving"], item["problem"]) == ("running", True, None)
        assert item["commit"] == fleet.repos[name].head
        assert item["image"] == f"{fleet.project}/{name}:{fleet.repos[name].head[:12]}"
        assert item["started_at"].endswith("Z") and item["finished_at"] is None
        assert item["health"] == {**item["health"], "status": 200, "ok": True, "path": "/health",
                                  "port": fleet.ports[name]}  # fmt: skip
        [entry] = item["deploys"]
        assert (entry["result"], entry["commit"], entry["run"]) == ("deployed", item["commit"], first_run)
        assert entry["duration_s"] > 0 and entry["who"]
        [version] = item["versions"]
        assert (version["image"], version["running"], version["rollback"]) == (item["image"], True, False)

    second = fleet.repos["web"].write_marker("v2")
    second_run = deploy(fleet, "web")
    result, found = status_of(fleet)
    assert result.returncode == 0, result.stderr
    web = found["web"]
    assert web["commit"] == second
    assert [(e["commit"], e["result"], e["run"]) for e in web["deploys"]] == [
        (second, "deployed", second_run), (first, "deployed", first_run)
    ]  # fmt: skip
    assert all(entry["duration_s"] > 0 for entry in web["deploys"])
    marks = [(v["commit"], v["running"], v["rollback"]) for v in web["versions"]]
    assert marks == [(second, True, False), (first, False, True)]  # newest first
    assert len(found["api"]["deploys"]) == 1  # the audit log holds both services' lines

    table = fleet.wfgen("status", timeout=120)
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith(f"Status on local Docker ({docker_host}) at ")
    assert table.stdout.rstrip().endswith("✅ 2/2 services serving")
    lines = table.stdout.splitlines()
    row = next(line.split() for line in lines if line.startswith("web "))
    assert row[:4] == ["web", "running", second[:7], web["image"]]
    assert row[-7:-2] == ["✅", "HTTP", "200", "on", "/health"]
    assert any(line.strip().startswith(second[:7]) and line.endswith("← running") for line in lines)
    assert any(line.strip().startswith(first[:7]) and line.endswith("← rollback") for line in lines)


def test_a_stopped_container_and_a_service_never_deployed(
    tmp_path: Path, docker_host: str, docker_project: str
) -> None:
    fleet = make_fleet(tmp_path / "f", docker_project, docker_host, {"api": {}, "web": {}})
    deploy(fleet, "api")
    docker(docker_host, "stop", "-t", "1", f"{fleet.project}-api", timeout=60, check=True)
    result, found = status_of(fleet)
    assert result.returncode == 1
    api, web = found["api"], found["web"]
    assert (api["state"], api["serving"], api["health"]) == ("exited", False, None)
    assert api["problem"] == f"stopped (exit code {api['exit_code']})" and api["finished_at"].endswith("Z")
    assert api["commit"] == fleet.repos["api"].head and api["versions"][0]["running"]
    assert (web["state"], web["problem"], web["deploys"], web["versions"]) == (
        "absent", "never deployed", [], []
    )  # fmt: skip
    assert result.stderr == f"status: not serving: api: {api['problem']}; web: never deployed\n"
    table = fleet.wfgen("status", timeout=120)
    assert table.returncode == 1
    assert table.stdout.splitlines()[-1] == (
        f"❌ 2 of 2 services not serving: api: {api['problem']}; web: never deployed"
    )


def test_over_ssh_the_host_and_user_are_never_printed(
    tmp_path: Path, docker_host: str, docker_project: str, sshd: SshServer
) -> None:
    fleet = make_fleet(tmp_path / "f", docker_project, docker_host, {"api": {}, "web": {}})
    deploy(fleet, "all")
    text = fleet.manifest.read_text(encoding="utf-8")
    local = f'[target]\nkind = "local"\nnetwork = "{fleet.network}"\nstate_dir = "{fleet.state_dir}"\n'
    remote = sshd.target_config(network=fleet.network, state_dir=str(fleet.state_dir))
    fleet.manifest.write_text(text.replace(local, "\n".join(toml_table("target", remote)) + "\n"))
    env = sshd.target_env()
    result, found = status_of(fleet, **env)
    assert result.returncode == 0, result.stderr
    assert {name: item["health"]["status"] for name, item in found.items()} == {"api": 200, "web": 200}
    assert found["api"]["deploys"][0]["who"] == "$VPS_USER"  # deployed by the user the target logs in as
    table = fleet.wfgen("status", timeout=120, **env)
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith(f"Status on ssh $VPS_USER@$VPS_HOST:{sshd.port} at ")
    for output in (result.stdout, table.stdout):
        assert sshd.host not in output and f" {sshd.user} " not in output

    unreachable = fleet.wfgen("status", timeout=120, **{**env, "VPS_HOST": "127.0.0.2"})
    assert unreachable.returncode == 1 and unreachable.stdout == ""
    [line] = unreachable.stderr.splitlines()
    assert line.startswith(f"status: cannot read what runs on ssh $VPS_USER@$VPS_HOST:{sshd.port}: ")
    assert "127.0.0.2" not in line


def test_an_engine_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path / "f", "wfgtx", "unix:///nonexistent/docker.sock", {"api": {}},
                       create_network=False)  # fmt: skip
    result = fleet.wfgen("status", timeout=60)
    assert (result.returncode, result.stdout) == (1, "")
    [line] = result.stderr.splitlines()
    assert line.startswith(
        "status: cannot read what runs on local Docker (unix:///nonexistent/docker.sock): "
    )


@pytest.mark.parametrize(
    ("manifest", "env", "message"),
    [
        ('[project]\nname = "x"\n', {}, "services.toml:1: services: required key is missing"),
        ('[project]\nname = "x"\nbranches = ["main"]\n[target]\nkind = "ssh"\n'
         '[services.a]\nrepository = "o/a"\nport = 3000\n', {"VPS_HOST": ""},
         "status: environment variable VPS_HOST is not set (target.host_env)"),
    ],
    ids=["bad-manifest", "missing-secret"],
)  # fmt: skip
def test_bad_input_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, manifest: str, env: dict[str, str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("services.toml").write_text(manifest, encoding="utf-8")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["status"])
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message + "\n")


# --- the pieces, without a target ------------------------------------------------------------------


def test_docker_times_are_read_to_the_second() -> None:
    assert status.utc("2026-11-29T14:23:15.123456789Z") == "2026-11-29T14:23:15Z"
    assert status.utc("2026-11-29T14:23:15Z") == "2026-11-29T14:23:15Z"
    assert status.utc("0001-01-01T00:00:00Z") is None
    assert status.utc("") is None


def test_the_vendored_status_step_needs_only_the_standard_library() -> None:
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", "import sys; sys.path.insert(0, '.'); import steps.status"],
        cwd=".github/wfgen", env={"PATH": os.defpath}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_the_table_shows_the_plain_values_one_a_line_and_quotes_a_control_character() -> None:
    item = {"service": "web", "container": "p-web", "problem": None, "deploys": [], "versions": [],
            "vars": {"LOG_LEVEL": "info", "BANNER": "a\tb"}}  # fmt: skip
    assert status_report.details(item)[:4] == [
        "web (p-web)",
        "  vars (plain values from the manifest; secrets are never shown):",
        "    LOG_LEVEL=info",
        '    BANNER="a\\tb"',
    ]


def test_on_a_swarm_the_kept_image_with_the_services_digest_is_the_running_one() -> None:
    digest = "r/p/web@sha256:" + "e" * 64
    kept = [
        KeptImage("2026-01-02T10:00:00Z", "sha256:c", "r/p/web:c", {"wfgen.commit": "c"}, (digest,)),
        KeptImage("2026-01-01T10:00:00Z", "sha256:a", "r/p/web:a", {"wfgen.commit": "a"}, ()),
    ]
    now = Running(commit="c", running=True, labels={}, published=frozenset(), image=digest, image_id=digest)
    deploys = [AuditEntry("2026-01-02T10:00:05Z", "ci", "web", "c", "deployed", 3.0, "2"),
               AuditEntry("2026-01-01T10:00:05Z", "ci", "web", "a", "deployed", 3.0, "1")]  # fmt: skip
    marks = [(v.commit, v.running, v.rollback) for v in status.versions(kept, now, deploys)]
    assert marks == [("c", True, False), ("a", False, True)]

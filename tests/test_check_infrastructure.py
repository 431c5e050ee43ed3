"""check_infrastructure.py as a real `python3 -I -S` subprocess against a real engine, sshd and sockets."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker import docker
from tests.support.manifests import manifest_toml, resolved_manifest
from tests.support.ports import free_port
from tests.support.sshd import BASE_TOOLS, SshServer, start_sshd_with_tools
from tests.support.stepscripts import step_argv

SECRET_VALUE = "s3cr3t-value-that-must-never-be-printed"
LOCAL_HTTP = "not needed: local probes use Python's urllib"


def manifest(target: dict[str, Any], **infrastructure: Any) -> dict[str, Any]:
    """The resolved manifest of a services.toml with this [target] and [infrastructure] (and one service)."""
    tables = {"min_free_disk_mb": 1, **infrastructure}
    text = manifest_toml(
        # Not behind the proxy: its check is tests/test_proxy.py's and tests/test_handover.py's.
        {"web": {"path": "web", "port": 8080, "proxy": False}},
        project={"name": "wfgt"},
        target=target,
        infrastructure=tables,
    )
    return resolved_manifest(text)


LOCAL = {"kind": "local"}


def run_check(
    tmp_path: Path, data: dict[str, Any] | None, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "manifest.json"
    if data is not None:
        path.write_text(json.dumps(data, indent=2) + "\n")
    return subprocess.run(
        step_argv("check_infrastructure", "--manifest", str(path), *args),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def rows(output: str) -> dict[str, tuple[bool, str]]:
    """{check name: (passed, reason)} from the ✓/✗ lines."""
    table = {}
    for line in output.splitlines():
        if line[:2] in ("✓ ", "✗ "):
            name, _, reason = line[2:].partition(" — ")
            table[name] = (line[0] == "✓", reason)
    return table


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield int(server.getsockname()[1])


@pytest.fixture
def network(docker_host: str, docker_project: str) -> str:
    name = f"{docker_project}-net"
    docker(docker_host, "network", "create", name, check=True, timeout=60)
    return name


def test_all_good_locally(
    tmp_path: Path, docker_env: dict[str, str], network: str, listening_port: int
) -> None:
    data = manifest(
        {**LOCAL, "network": network},
        networks=[network],
        tcp=[f"127.0.0.1:{listening_port}"],
        secrets=["WFGT_JWT"],
    )
    summary = tmp_path / "summary.md"
    env = {**docker_env, "WFGT_JWT": SECRET_VALUE, "GITHUB_STEP_SUMMARY": str(summary)}
    proc = run_check(tmp_path, data, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = rows(proc.stdout)
    expected = [
        "docker engine",
        "http client",
        f"network {network}",
        "free disk",
        f"tcp 127.0.0.1:{listening_port}",
    ]
    assert list(table) == [*expected, "secret WFGT_JWT"]
    assert all(ok for ok, _ in table.values())
    assert table[f"network {network}"] == (True, "exists")
    assert table["docker engine"][1].startswith("server ")
    assert table["http client"] == (True, LOCAL_HTTP)
    text = summary.read_text()
    assert "| ✓ | secret WFGT_JWT | set |" in text
    assert SECRET_VALUE not in proc.stdout + proc.stderr + text


def test_each_failure_is_reported_for_its_own_reason(
    tmp_path: Path, docker_env: dict[str, str], network: str
) -> None:
    missing_net, closed = "wfgt-no-such-network-x9", free_port()
    data = manifest(
        {**LOCAL, "network": network},
        networks=[missing_net],
        tcp=[f"127.0.0.1:{closed}"],
        secrets=["WFGT_SET", "WFGT_MISSING"],
        min_free_disk_mb=1024**3,
    )
    env = {**docker_env, "WFGT_SET": SECRET_VALUE}
    env.pop("WFGT_MISSING", None)
    proc = run_check(tmp_path, data, env)
    assert proc.returncode == 1
    table = rows(proc.stdout)
    assert table["docker engine"][0] is True
    assert table[f"network {missing_net}"] == (
        False,
        f"missing: create it with 'docker network create {missing_net}'",
    )
    assert table["free disk"][0] is False
    assert table["free disk"][1].endswith(f"(need {1024**3} MB)")
    assert table[f"tcp 127.0.0.1:{closed}"] == (False, "no answer within 5 s from local docker")
    assert table["secret WFGT_SET"] == (True, "set")
    assert table["secret WFGT_MISSING"] == (False, "not set in the environment")
    assert table[f"network {network}"] == (True, "exists")
    assert "4 of 8 checks failed" in proc.stderr
    assert SECRET_VALUE not in proc.stdout + proc.stderr


def test_secrets_are_judged_by_the_flags_the_workflow_passes(
    tmp_path: Path, docker_env: dict[str, str], network: str
) -> None:
    """The job gets `WFGEN_SECRET_SET_X: ${{ secrets.X != '' }}`, never X's value; a hand run has only X."""
    data = manifest(
        {**LOCAL, "network": network},
        secrets=["WFGT_FLAG_SET", "WFGT_FLAG_UNSET", "WFGT_BY_VALUE", "WFGT_EMPTY"],
    )
    env = {
        **docker_env,
        "WFGEN_SECRET_SET_WFGT_FLAG_SET": "true",
        "WFGEN_SECRET_SET_WFGT_FLAG_UNSET": "false",
        "WFGT_FLAG_UNSET": SECRET_VALUE,  # the flag is what the workflow knows about the secret
        "WFGT_BY_VALUE": SECRET_VALUE,
        "WFGT_EMPTY": "",
    }
    proc = run_check(tmp_path, data, env)
    table = rows(proc.stdout)
    assert table["secret WFGT_FLAG_SET"] == (True, "set")
    assert table["secret WFGT_FLAG_UNSET"] == (False, "not set in the environment")
    assert table["secret WFGT_BY_VALUE"] == (True, "set")
    assert table["secret WFGT_EMPTY"] == (False, "not set in the environment")
    assert SECRET_VALUE not in proc.stdout + proc.stderr


def test_docker_engine_down(tmp_path: Path, docker_env: dict[str, str]) -> None:
    env = {**docker_env, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    proc = run_check(tmp_path, manifest({**LOCAL, "network": "wfgt-any"}, networks=["wfgt-any"]), env)
    assert proc.returncode == 1
    table = rows(proc.stdout)
    assert table["docker engine"][0] is False
    assert "no-docker.sock" in table["docker engine"][1]
    assert table["network wfgt-any"][0] is False
    assert table["free disk"][0] is True, "falls back to the state dir when Docker does not answer"


def test_all_good_over_ssh(
    tmp_path: Path, sshd: SshServer, docker_env: dict[str, str], network: str, listening_port: int
) -> None:
    data = manifest(
        sshd.target_config(network=network), networks=[network], tcp=[f"127.0.0.1:{listening_port}"]
    )
    proc = run_check(tmp_path, data, {**docker_env, **sshd.target_env()})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = rows(proc.stdout)
    assert table["target reachable"] == (True, f"$VPS_USER@$VPS_HOST:{sshd.port}")
    assert list(table)[1:] == ["docker engine", "http client", f"network {network}", "free disk",
                               f"tcp 127.0.0.1:{listening_port}"]  # fmt: skip
    assert table["http client"] in ((True, "curl"), (True, "wget"))
    assert sshd.private_key.strip().splitlines()[1] not in proc.stdout + proc.stderr


def test_unreachable_ssh_marks_the_rest(tmp_path: Path, sshd: SshServer, docker_env: dict[str, str]) -> None:
    data = manifest(
        sshd.target_config(port=free_port(), network="wfgt-net"),
        networks=["wfgt-net"],
        tcp=["127.0.0.1:5432"],
        secrets=["WFGT_SET"],
    )
    proc = run_check(tmp_path, data, {**docker_env, **sshd.target_env(), "WFGT_SET": SECRET_VALUE})
    assert proc.returncode == 1
    table = rows(proc.stdout)
    assert table["target reachable"][0] is False
    assert table["target reachable"][1].startswith("cannot reach ")
    for name in ("docker engine", "http client", "network wfgt-net", "free disk", "tcp 127.0.0.1:5432"):
        assert table[name] == (False, "target unreachable")
    assert table["secret WFGT_SET"] == (True, "set")


def test_missing_manifest_is_usage_error(tmp_path: Path) -> None:
    proc = run_check(tmp_path, None, {"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert "resolved manifest not found" in proc.stderr


def test_missing_target_env_var_is_usage_error(tmp_path: Path, sshd: SshServer) -> None:
    env = {"PATH": "/usr/bin:/bin", **sshd.target_env()}
    del env["VPS_SSH_KEY"]
    proc = run_check(tmp_path, manifest(sshd.target_config()), env)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "infrastructure: environment variable VPS_SSH_KEY is not set (target.ssh_key_env)"
    )
    assert proc.stdout == ""


def network_ids(docker_host: str, name: str) -> list[str]:
    listing = docker(docker_host, "network", "ls", "--filter", f"name=^{name}$", "--format", "{{.ID}}")
    return listing.stdout.split()


def test_project_network_is_created_once_before_the_deploys(
    tmp_path: Path, docker_env: dict[str, str], docker_host: str, docker_project: str
) -> None:
    name = f"{docker_project}-net"
    data = manifest({**LOCAL, "network": name}, networks=[name])
    first = run_check(tmp_path, data, docker_env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert rows(first.stdout)[f"network {name}"] == (True, "created")
    assert first.stdout.count(f"network {name} — ") == 1
    assert len(network_ids(docker_host, name)) == 1
    again = run_check(tmp_path, data, docker_env)
    assert rows(again.stdout)[f"network {name}"] == (True, "exists")
    assert len(network_ids(docker_host, name)) == 1


def test_project_network_fails_when_docker_is_down(tmp_path: Path, docker_env: dict[str, str]) -> None:
    env = {**docker_env, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    proc = run_check(tmp_path, manifest({**LOCAL, "network": "wfgt-project-net"}), env)
    assert proc.returncode == 1
    ok, reason = rows(proc.stdout)["network wfgt-project-net"]
    assert not ok and "no-docker.sock" in reason


def test_ssh_target_without_curl_or_wget_fails_the_http_client_check(
    tmp_path: Path, docker_env: dict[str, str], network: str
) -> None:
    server = start_sshd_with_tools(tmp_path / "sshd-no-curl")
    try:
        data = manifest(server.target_config(network=network))
        proc = run_check(tmp_path, data, {**docker_env, **server.target_env()})
    finally:
        server.stop()
    assert proc.returncode == 1
    table = rows(proc.stdout)
    assert table["target reachable"][0] is True
    assert table["http client"] == (False, "neither curl nor wget on the target; install curl")
    assert "1 of" in proc.stderr and "checks failed: http client" in proc.stderr


def test_free_disk_names_the_ssh_user_by_variable(tmp_path: Path, docker_env: dict[str, str]) -> None:
    """No docker on the target: the state dir is measured instead, and its path names the user's home."""
    server = start_sshd_with_tools(tmp_path / "sshd-no-docker", tuple(t for t in BASE_TOOLS if t != "docker"))
    state_dir = tmp_path / server.user / "state"
    state_dir.mkdir(parents=True)
    summary = tmp_path / "summary.md"
    env = {**docker_env, **server.target_env(), "GITHUB_STEP_SUMMARY": str(summary)}
    try:
        proc = run_check(tmp_path, manifest(server.target_config(state_dir=str(state_dir))), env)
    finally:
        server.stop()
    table = rows(proc.stdout)
    assert table["docker engine"][0] is False
    ok, reason = table["free disk"]
    assert ok and reason.endswith(
        f" MB free on {str(state_dir).replace(server.user, '$VPS_USER')} (need 1 MB)"
    )
    assert server.user not in reason
    assert server.user not in summary.read_text()

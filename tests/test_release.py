"""The release command (generator/steps/engine/release.py): real Docker, through deploy_service.py."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import time
from typing import Any

import pytest

from generator.steps.engine import release
from tests.support.deploys import DeployBench, DeployRun, fetch
from tests.support.docker import docker
from tests.support.fixture_service import ServiceRepo
from tests.support.ports import free_port
from tests.support.stepscripts import run_step

SERVICE = "web"
FAST_HEALTH = {"interval_s": 0.2, "timeout_s": 2.0, "deadline_s": 6.0}
SH = ["/bin/busybox", "sh", "-c"]


def setup(
    bench: DeployBench,
    project: str,
    repo: ServiceRepo,
    command: list[str] | None,
    *,
    proxy: bool = False,
    port: int | None = None,
    **settings: Any,
) -> int:
    """The manifest of `web` with this release command (none: None); returns its port (`port`, or a free one)."""
    port = port or free_port()
    table: dict[str, Any] = {
        "repository": repo.url,
        "port": port,
        "container_port": 3000,
        "health": FAST_HEALTH,
        "proxy": proxy,
        "env": ["T_RELEASE_TOKEN"],
        **settings,
    }
    if command is not None:
        table["release"] = command
    bench.write({SERVICE: table}, project={"name": project, "keep_images": 3})
    return port


def version(port: int) -> str:
    return fetch(f"http://127.0.0.1:{port}/version")[1].strip()


def release_containers(docker_host: str, project: str) -> list[str]:
    rows = docker(
        docker_host, "ps", "-a", "--filter", f"label=wfgen.project={project}",
        "--filter", "label=wfgen.role=release", "--format", "{{.Names}}", timeout=60,
    ).stdout.split()  # fmt: skip
    return rows


def quoted(run: DeployRun) -> list[str]:
    return [line[6:] for line in run.stdout.splitlines() if line.startswith("    | ")]


@pytest.fixture
def secret(bench: DeployBench) -> str:
    value = f"s3cr3t-{os.urandom(8).hex()}"
    bench.env = {**bench.env, "T_RELEASE_TOKEN": value}
    return value


def deploy_v1(bench: DeployBench, port: int) -> None:
    first = bench.deploy()
    assert first.status["result"] == "deployed", first.stdout + first.stderr
    assert version(port) == "v1"


def assert_old_serves(bench: DeployBench, docker_host: str, project: str, port: int) -> None:
    assert version(port) == "v1"
    assert fetch(f"http://127.0.0.1:{port}/health")[0] == 200
    assert release_containers(docker_host, project) == []
    assert not (bench.state_dir / "locks" / SERVICE).exists()
    assert not list((bench.state_dir / "env").iterdir())  # the env-file with the secret is gone


# --- the docker command, without Docker --------------------------------------------------------------


def test_run_args_are_one_argument_list_with_no_ports_and_the_release_labels() -> None:
    one_off = release.Release(
        "letzgo", "web", "letzgo-network", "letzgo/web:abc", ("npm", "run", "x; rm -rf /"), "/s/env/w.env",
        "letzgo-web-release-0123456789ab",
    )  # fmt: skip
    assert one_off.run_args() == [
        "docker", "run", "-d", "--init", "--name", "letzgo-web-release-0123456789ab",
        "--network", "letzgo-network", "--env-file", "/s/env/w.env",
        "--label", "wfgen.project=letzgo", "--label", "wfgen.service=web", "--label", "wfgen.role=release",
        "letzgo/web:abc", "npm", "run", "x; rm -rf /",
    ]  # fmt: skip
    without_env = release.Release("p", "web", "n", "p/web:1", ("migrate",), None, "p-web-release-x")
    assert "--env-file" not in without_env.run_args()


def test_a_release_container_is_told_apart_from_a_version_of_the_service() -> None:
    name = release.container_name("letzgo", "web")
    assert release.is_release_container(name, "letzgo", "web")
    assert not release.is_release_container("letzgo-web-1a2b3c4d5e6f", "letzgo", "web")
    assert not release.is_release_container("letzgo-web-api-release-0123456789ab", "letzgo", "web")


def test_output_of_both_streams_is_merged_in_the_order_it_was_written() -> None:
    stdout = "2026-11-29T10:00:00.1Z first\n2026-11-29T10:00:00.300000001Z third\n"
    stderr = "2026-11-29T10:00:00.20345Z second\n2026-11-29T10:00:01Z fourth\n"
    assert release.merge_timestamped(stdout, stderr) == ["first", "second", "third", "fourth"]


# --- on a real Docker engine -----------------------------------------------------------------------


def test_release_runs_once_with_the_service_env_and_network_before_the_candidate(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str, secret: str
) -> None:
    """It reaches the running version by its container name on the project network, sees the secret (whose
    value never leaves the step) and the plain values, and its output is in the log."""
    live = f"{docker_project}-{SERVICE}"
    script = (
        'echo "migrating with $T_RELEASE_TOKEN in $MIGRATE_MODE mode"; '
        f"/bin/busybox wget -q -O - http://{live}:3000/version 2>/dev/null || echo 'nothing runs yet'; "
        "/bin/busybox sleep 0.3; echo 'migrated' >&2"  # the two streams are ordered by Docker's timestamps
    )
    port = setup(bench, docker_project, web, [*SH, script], vars={"MIGRATE_MODE": "safe"})
    cold = bench.deploy()
    assert cold.status["result"] == "deployed", cold.stdout + cold.stderr
    assert cold.phases == [
        "lock", "source", "build", "release", "candidate", "health", "switch", "verify", "cleanup", "done",
    ]  # fmt: skip
    assert f"running release command: {shlex.join([*SH, script])}" in cold.stdout
    assert quoted(cold) == ["migrating with $T_RELEASE_TOKEN in safe mode", "nothing runs yet", "migrated"]
    assert "release command done in" in cold.stdout
    web.write_marker("v2")
    second = bench.deploy()
    assert second.status["result"] == "deployed", second.stdout + second.stderr
    assert quoted(second) == ["migrating with $T_RELEASE_TOKEN in safe mode", "v1", "migrated"]
    assert version(port) == "v2"
    assert secret not in cold.stdout + cold.stderr + second.stdout + second.stderr
    assert secret not in json.dumps(second.status)
    assert release_containers(docker_host, docker_project) == []


def test_release_is_not_run_when_the_commit_already_runs(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str, secret: str
) -> None:
    port = setup(bench, docker_project, web, [*SH, "echo migrating"])
    deploy_v1(bench, port)
    again = bench.deploy()
    assert again.status["result"] == "unchanged", again.stdout + again.stderr
    assert "release" not in again.phases
    assert "running release command" not in again.stdout and "migrating" not in again.stdout


def test_a_failing_release_fails_the_deploy_with_its_last_lines_and_the_old_version_serves(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str, secret: str
) -> None:
    port = setup(bench, docker_project, web, None)
    deploy_v1(bench, port)
    script = (
        'for i in $(/bin/busybox seq 1 30); do echo "step $i"; done; '
        '/bin/busybox sleep 0.3; echo "token $T_RELEASE_TOKEN bad" >&2'
    )
    setup(bench, docker_project, web, [*SH, script + "; exit 3"], port=port)
    web.write_marker("v2")
    failed = bench.deploy()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    message = (
        "release command exited with 3 (last output: token $T_RELEASE_TOKEN bad); running container untouched"
    )
    assert (failed.status["result"], failed.status["phase"], failed.status["message"]) == (
        "failed",
        "release",
        message,
    )
    assert failed.stderr.strip().splitlines()[-1] == f"{SERVICE}: {message}"
    assert quoted(failed) == [*(f"step {i}" for i in range(12, 31)), "token $T_RELEASE_TOKEN bad"]
    assert "candidate" not in failed.phases
    assert secret not in failed.stdout + failed.stderr + json.dumps(failed.status)
    assert_old_serves(bench, docker_host, docker_project, port)
    assert (bench.state_dir / "audit.log").read_text().splitlines()[-1].split()[4] == "failed"


def test_a_release_that_overruns_its_timeout_is_removed_and_the_old_version_serves(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str, secret: str
) -> None:
    port = setup(bench, docker_project, web, None)
    deploy_v1(bench, port)
    setup(bench, docker_project, web, [*SH, "echo waiting for a lock; exec /bin/busybox sleep 60"], port=port,
          release_timeout_s=2)  # fmt: skip
    web.write_marker("v2")
    slow = bench.deploy()
    assert slow.returncode == 1, slow.stdout + slow.stderr
    assert (slow.status["result"], slow.status["phase"]) == ("failed", "release")
    assert slow.status["message"] == (
        "release command timed out after 2 s (last output: waiting for a lock); running container untouched"
    )
    assert quoted(slow) == ["waiting for a lock"]
    assert slow.seconds < 40  # not the command's 60 s
    assert_old_serves(bench, docker_host, docker_project, port)


def test_a_release_command_that_is_not_in_the_image_fails_the_deploy(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str, secret: str
) -> None:
    port = setup(bench, docker_project, web, None)
    deploy_v1(bench, port)
    setup(bench, docker_project, web, ["/no/such/migrate"], port=port)
    web.write_marker("v2")
    broken = bench.deploy()
    assert broken.returncode == 1, broken.stdout + broken.stderr
    # tini names the pid of the child it forked, which is not always the same: the rest is exact.
    assert re.fullmatch(
        r"release command exited with 127 \(last output: \[FATAL tini \(\d+\)\] exec /no/such/migrate failed: "
        r"No such file or directory\); running container untouched",
        broken.status["message"],
    ), broken.status["message"]
    assert_old_serves(bench, docker_host, docker_project, port)


def test_a_cancel_during_the_release_removes_its_container(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str, secret: str
) -> None:
    port = setup(bench, docker_project, web, None)
    deploy_v1(bench, port)
    setup(bench, docker_project, web, [*SH, "exec /bin/busybox sleep 120"], port=port)
    web.write_marker("v2")
    started = time.monotonic()
    proc = bench.start()
    bench.wait_for_phase("release")
    for _ in range(200):  # until the container runs, so the cancel finds one to remove
        if release_containers(docker_host, docker_project):
            break
        time.sleep(0.05)
    assert release_containers(docker_host, docker_project), "the release container never started"
    proc.send_signal(signal.SIGTERM)
    cancelled = bench.finish(proc, started, timeout=60)
    assert cancelled.returncode == 1, cancelled.stdout + cancelled.stderr
    assert (cancelled.status["result"], cancelled.status["phase"]) == ("cancelled", "release")
    assert "cancelled by SIGTERM" in cancelled.status["message"]
    assert_old_serves(bench, docker_host, docker_project, port)


def test_a_release_container_left_by_a_killed_deploy_goes_with_the_next_deploy(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str, secret: str
) -> None:
    port = setup(bench, docker_project, web, [*SH, "echo migrating"], proxy=True)
    deploy_v1(bench, port)
    image = f"{docker_project}/{SERVICE}:{web.head[:12]}"
    left = f"{docker_project}-{SERVICE}-release-0123456789ab"
    docker(
        docker_host, "run", "-d", "--name", left, "--label", f"wfgen.project={docker_project}",
        "--label", f"wfgen.service={SERVICE}", "--label", "wfgen.role=release",
        image, "/bin/busybox", "sleep", "300", timeout=60, check=True,
    )  # fmt: skip
    web.write_marker("v2")
    next_deploy = bench.deploy()
    assert next_deploy.status["result"] == "deployed", next_deploy.stdout + next_deploy.stderr
    assert "removed 1 leftover(s) of interrupted deploys" in next_deploy.stdout
    assert release_containers(docker_host, docker_project) == []
    assert version(port) == "v2"


def test_a_rollback_does_not_run_the_release_command(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str, secret: str
) -> None:
    """The version it goes back to ran its release command when it was deployed."""
    port = setup(bench, docker_project, web, [*SH, "echo migrating"])
    deploy_v1(bench, port)
    first = web.head
    web.write_marker("v2")
    assert bench.deploy().status["result"] == "deployed"
    back = run_step(
        "rollback", "--manifest", str(bench.manifest), "--service", SERVICE,
        "--status-file", str(bench.workdir / "rollback.json"), env=bench.env, timeout=300,
    )  # fmt: skip
    assert back.returncode == 0, back.stdout + back.stderr
    assert f"not running the release command: {first[:7]} ran it when it was deployed" in back.stdout
    assert "running release command" not in back.stdout and "migrating" not in back.stdout
    assert "release" not in [
        entry["phase"] for entry in json.loads((bench.workdir / "rollback.json").read_text())["phases"]
    ]
    assert version(port) == "v1"

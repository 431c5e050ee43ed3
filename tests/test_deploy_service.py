"""deploy_service.py against a real Docker engine (and a real sshd): it never takes a healthy service down."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generator.steps import status
from generator.steps.core import config_load, handoff, lock
from tests.support.deploys import DeployBench, Poller, fetch
from tests.support.docker import docker
from tests.support.fixture_service import ServiceRepo, git
from tests.support.manifests import manifest_toml, write_resolved_manifest
from tests.support.ports import free_port
from tests.support.sshd import SshServer, start_sshd_with_home
from tests.support.stepscripts import run_step

SERVICE = "web"
FAST_HEALTH = {"interval_s": 0.2, "timeout_s": 2.0, "deadline_s": 6.0}


def service_table(repo: ServiceRepo, port: int, **health: float) -> dict[str, Any]:
    """The restart cutover (proxy = false): the deploy behind the proxy is tests/test_handover.py's."""
    table = {
        "repository": repo.url,
        "port": port,
        "container_port": 3000,
        "health": {**FAST_HEALTH, **health},
    }
    return {**table, "proxy": False}


def setup_local(
    bench: DeployBench, project: str, repo: ServiceRepo, env: list[str] | None = None, **health: float
) -> int:
    port = free_port()
    table = {**service_table(repo, port, **health), "env": env or []}
    bench.write({SERVICE: table}, project={"name": project, "keep_images": 2})
    return port


def inspect(docker_host: str, name: str, fmt: str) -> str | None:
    proc = docker(docker_host, "inspect", "--format", fmt, name)
    return proc.stdout.strip() if proc.returncode == 0 else None


def image_created(docker_host: str, ref: str) -> str | None:
    return inspect(docker_host, ref, "{{.Id}} {{.Created}}")


def version(port: int) -> str:
    return fetch(f"http://127.0.0.1:{port}/version")[1].strip()


def lock_dir(bench: DeployBench) -> Path:
    return bench.state_dir / "locks" / SERVICE


def assert_clean_failure(bench: DeployBench, docker_host: str, project: str) -> None:
    assert inspect(docker_host, f"{project}-{SERVICE}-candidate", "{{.Id}}") is None
    assert inspect(docker_host, f"{project}-{SERVICE}-previous", "{{.Id}}") is None
    assert not lock_dir(bench).exists()


# --- usage ----------------------------------------------------------------------------------------


def test_unknown_service_suggests_and_exits_2(tmp_path: Path) -> None:
    manifest = write_resolved_manifest(
        tmp_path, manifest_toml({"auth-service": {"repository": "o/a", "port": 3000}})
    )
    proc = run_step(
        "deploy_service", "--manifest", str(manifest), "--service", "auth-servce", "--branch", "main"
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "auth-servce: unknown service 'auth-servce' (did you mean 'auth-service'?); known: auth-service"
    ]


def test_a_service_name_with_a_line_break_cannot_emit_a_workflow_command(tmp_path: Path) -> None:
    """A dispatched input is untrusted: the raw value never starts a line of the job log, repr() shows it."""
    manifest = write_resolved_manifest(tmp_path, manifest_toml({"web": {"repository": "o/w", "port": 3000}}))
    name = "web\n::error::x"
    for proc in (
        run_step("deploy_service", "--manifest", str(manifest), "--service", name, "--branch", "main"),
        run_step(
            "deploy_service", "--manifest", str(manifest), "--branch", "main", env={"WFGEN_SERVICE": name}
        ),
    ):
        assert (proc.returncode, proc.stdout) == (2, "")
        assert proc.stderr == "deploy: unknown service 'web\\n::error::x'; known: web\n"


@pytest.mark.parametrize(
    ("wait", "problem"),
    [
        ("nan", "expected a finite number of seconds, got 'nan'"),
        ("inf", "expected a finite number of seconds, got 'inf'"),
        ("1e309", "expected a finite number of seconds, got '1e309'"),
        ("-0", "must not be negative"),
        ("-1", "must not be negative"),
        ("soon", "expected seconds, got 'soon'"),
    ],
)
def test_lock_wait_that_is_not_a_finite_duration_exits_2_before_anything_runs(
    tmp_path: Path, wait: str, problem: str
) -> None:
    state = tmp_path / "state"
    table = {"repository": (tmp_path / "no-such-repo").as_uri(), "port": 3000}
    manifest = write_resolved_manifest(
        tmp_path, manifest_toml({"auth-service": table}, target={"state_dir": str(state)})
    )
    status = tmp_path / "status.json"
    proc = run_step(
        "deploy_service", "--manifest", str(manifest), "--service", "auth-service", "--branch", "main",
        "--status-file", str(status), f"--lock-wait={wait}",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [f"auth-service: --lock-wait: {problem}"]
    assert not status.exists() and not state.exists()


def test_missing_manifest_exits_2(tmp_path: Path) -> None:
    proc = run_step(
        "deploy_service", "--manifest", str(tmp_path / "nope.json"), "--service", "x", "--branch", "m"
    )
    assert proc.returncode == 2
    assert "resolved manifest not found" in proc.stderr


def test_status_file_that_cannot_be_written_exits_2(tmp_path: Path) -> None:
    manifest = write_resolved_manifest(
        tmp_path, manifest_toml({"auth-service": {"repository": "o/a", "port": 3000}})
    )
    (tmp_path / "blocker").write_text("a regular file\n")
    status = tmp_path / "blocker" / "auth-service.json"
    args = ("--manifest", str(manifest), "--service", "auth-service", "--branch", "main")
    proc = run_step("deploy_service", *args, "--status-file", str(status))
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.splitlines() == [
        f"auth-service: --status-file {status}: cannot write (File exists: {tmp_path / 'blocker'})"
    ]


def test_missing_secret_fails_without_touching_anything(tmp_path: Path) -> None:
    services = {"auth-service": {"repository": "o/a", "port": 3000, "env": ["T_DEPLOY_SECRET"]}}
    manifest = write_resolved_manifest(
        tmp_path, manifest_toml(services, target={"state_dir": str(tmp_path / "s")})
    )
    status = tmp_path / "st.json"
    proc = run_step(
        "deploy_service", "--manifest", str(manifest), "--service", "auth-service", "--branch", "main",
        "--status-file", str(status),
    )  # fmt: skip
    assert proc.returncode == 1
    assert "environment variable T_DEPLOY_SECRET is not set" in proc.stderr
    assert json.loads(status.read_text())["result"] == "failed"


@pytest.mark.slow  # deploy_timeout_minutes is at least 1: this test waits that minute
def test_a_deploy_cancels_itself_at_its_deadline(tmp_path: Path) -> None:
    """deploy_timeout_minutes is the step's own deadline, before the job's timeout-minutes (a few minutes more)."""
    state = tmp_path / "state"
    services = {SERVICE: {"repository": "o/w", "port": 3000}}
    text = manifest_toml(services, project={"deploy_timeout_minutes": 1}, target={"state_dir": str(state)})
    manifest = write_resolved_manifest(tmp_path, text)
    held = state / "locks" / SERVICE
    held.mkdir(parents=True)
    (held / "owner").write_text(
        '{"holder": "alice", "host": "laptop", "since": "2026-01-01T10:20:01.000Z"}\n'
    )
    proc = run_step(
        "deploy_service", "--manifest", str(manifest), "--service", SERVICE, "--branch", "main",
        "--lock-wait", "600", "--status-file", str(tmp_path / "st.json"), timeout=150,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"{SERVICE}: cancelled by the deadline of project.deploy_timeout_minutes; running container untouched"
    )
    status = json.loads((tmp_path / "st.json").read_text())
    assert status["result"] == "cancelled" and status["finished_at"] is not None
    assert (held / "owner").exists()


def test_lock_held_gives_up_after_wait(tmp_path: Path) -> None:
    """Someone else's fresh lock: wait --lock-wait seconds, fail naming the holder, leave their lock alone."""
    state = tmp_path / "state"
    manifest = write_resolved_manifest(
        tmp_path,
        manifest_toml({SERVICE: {"repository": "o/w", "port": 3000}}, target={"state_dir": str(state)}),
    )
    held = state / "locks" / SERVICE
    held.mkdir(parents=True)
    owner = {
        "holder": "alice",
        "host": "laptop",
        "pid": 1,
        "run_id": None,
        "since": "2026-01-01T10:20:01.000Z",
    }
    (held / "owner").write_text(json.dumps(owner) + "\n")
    started = time.monotonic()
    proc = run_step(
        "deploy_service", "--manifest", str(manifest), "--service", SERVICE, "--branch", "main",
        "--lock-wait", "1.5", "--status-file", str(tmp_path / "st.json"),
    )  # fmt: skip
    assert proc.returncode == 1
    assert time.monotonic() - started >= 1.5
    assert "waiting for the lock held by alice@laptop" in proc.stdout
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"{SERVICE}: locked by alice@laptop since ") and line.endswith(
        "; gave up after 1.5 s"
    )
    assert (held / "owner").exists()
    assert (state / "audit.log").read_text().split()[2:5] == [SERVICE, "-", "failed"]


# --- local target ---------------------------------------------------------------------------------


def test_cold_unchanged_force_rebuild(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    port = setup_local(bench, docker_project, web, env=["T_DEPLOY_TOKEN"])
    secret = f"s3cr3t-{os.urandom(8).hex()}"
    bench.env = {**bench.env, "T_DEPLOY_TOKEN": secret}
    cold = bench.deploy()
    assert cold.returncode == 0, cold.stdout + cold.stderr
    env = json.loads(inspect(docker_host, f"{docker_project}-{SERVICE}", "{{json .Config.Env}}") or "[]")
    assert f"T_DEPLOY_TOKEN={secret}" in env
    assert secret not in cold.stdout + cold.stderr + (bench.state_dir / "audit.log").read_text()
    assert not list((bench.state_dir / "env").iterdir())  # the 0600 env-file is gone again
    assert cold.status["result"] == "deployed" and cold.status["commit"] == web.head
    image = f"{docker_project}/{SERVICE}:{web.head[:12]}"
    assert cold.status["image"] == image
    assert cold.phases == [
        "lock",
        "source",
        "build",
        "candidate",
        "health",
        "switch",
        "verify",
        "cleanup",
        "done",
    ]
    assert fetch(f"http://127.0.0.1:{port}/health")[0] == 200 and version(port) == "v1"
    labels = json.loads(inspect(docker_host, image, "{{json .Config.Labels}}") or "{}")
    assert (
        labels["wfgen.service"] == SERVICE
        and labels["wfgen.commit"] == web.head
        and labels["wfgen.branch"] == "main"
    )
    assert "wfgen.built-at" in labels
    created = image_created(docker_host, image)

    again = bench.deploy()
    assert again.returncode == 0 and again.status["result"] == "unchanged", again.stdout + again.stderr
    assert "building" not in again.stdout
    assert image_created(docker_host, image) == created
    assert again.seconds < 10

    forced = bench.deploy("--force-rebuild")
    assert forced.returncode == 0 and forced.status["result"] == "deployed", forced.stdout + forced.stderr
    assert f"building image {image}" in forced.stdout
    assert image_created(docker_host, image) != created
    assert inspect(docker_host, f"{docker_project}-{SERVICE}", "{{.Config.Image}}") == image
    audit = (bench.state_dir / "audit.log").read_text().splitlines()
    assert [line.split()[4] for line in audit] == ["deployed", "unchanged", "deployed"]
    assert not lock_dir(bench).exists()


def test_changed_configuration_redeploys_the_same_image(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    """A rotated secret or a new env name reaches the container without a new commit or --force-rebuild."""
    port = setup_local(bench, docker_project, web, env=["T_DEPLOY_TOKEN"])
    old_secret, new_secret = (f"s3cr3t-{os.urandom(8).hex()}" for _ in range(2))
    running, image = f"{docker_project}-{SERVICE}", f"{docker_project}/{SERVICE}:{web.head[:12]}"
    assert bench.deploy(env={"T_DEPLOY_TOKEN": old_secret}).status["result"] == "deployed"
    created = image_created(docker_host, image)

    rotated = bench.deploy(env={"T_DEPLOY_TOKEN": new_secret})
    output = rotated.stdout + rotated.stderr
    assert (rotated.returncode, rotated.status["result"]) == (0, "deployed"), output
    assert f"configuration changed: env T_DEPLOY_TOKEN; redeploying {image}" in rotated.stdout
    assert "building image" not in rotated.stdout and image_created(docker_host, image) == created
    env = json.loads(inspect(docker_host, running, "{{json .Config.Env}}") or "[]")
    assert f"T_DEPLOY_TOKEN={new_secret}" in env
    labels = inspect(docker_host, running, "{{json .Config.Labels}}") or ""
    assert old_secret not in output + labels and new_secret not in output + labels
    assert len(json.loads(labels)["wfgen.config"]) == 64

    same = bench.deploy(env={"T_DEPLOY_TOKEN": new_secret})
    assert same.status["result"] == "unchanged", same.stdout + same.stderr

    table = {**service_table(web, port), "env": ["T_DEPLOY_TOKEN", "T_DEPLOY_EXTRA"]}
    bench.write({SERVICE: table}, project={"name": docker_project, "keep_images": 2})
    added = bench.deploy(env={"T_DEPLOY_TOKEN": new_secret, "T_DEPLOY_EXTRA": "x"})
    assert added.status["result"] == "deployed", added.stdout + added.stderr
    assert "configuration changed: env T_DEPLOY_EXTRA;" in added.stdout
    assert version(port) == "v1" and inspect(docker_host, running, "{{.Config.Image}}") == image


def test_plain_values_reach_the_container_redeploy_when_changed_and_show_in_status(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    """services.<name>.vars: in the container beside the secrets, fingerprinted, and shown by status (the
    secrets are not)."""
    port = free_port()
    secret = f"s3cr3t-{os.urandom(8).hex()}"
    running, image = f"{docker_project}-{SERVICE}", f"{docker_project}/{SERVICE}:{web.head[:12]}"

    def write(values: dict[str, str]) -> None:
        table = {**service_table(web, port), "env": ["T_DEPLOY_TOKEN"], "vars": values}
        bench.write({SERVICE: table}, project={"name": docker_project, "keep_images": 2})

    write({"NODE_ENV": "production", "LOG_LEVEL": "info"})
    first = bench.deploy(env={"T_DEPLOY_TOKEN": secret})
    assert (first.returncode, first.status["result"]) == (0, "deployed"), first.stdout + first.stderr
    env = json.loads(inspect(docker_host, running, "{{json .Config.Env}}") or "[]")
    assert {"NODE_ENV=production", "LOG_LEVEL=info", f"T_DEPLOY_TOKEN={secret}"} <= set(env)
    assert not list((bench.state_dir / "env").iterdir())  # the env-file is gone again
    created = image_created(docker_host, image)

    same = bench.deploy(env={"T_DEPLOY_TOKEN": secret})
    assert same.status["result"] == "unchanged", same.stdout + same.stderr

    write({"NODE_ENV": "production", "LOG_LEVEL": "debug"})
    changed = bench.deploy(env={"T_DEPLOY_TOKEN": secret})
    assert (changed.returncode, changed.status["result"]) == (0, "deployed"), changed.stdout + changed.stderr
    assert f"configuration changed: var LOG_LEVEL; redeploying {image}" in changed.stdout
    assert "building image" not in changed.stdout and image_created(docker_host, image) == created
    env = json.loads(inspect(docker_host, running, "{{json .Config.Env}}") or "[]")
    assert "LOG_LEVEL=debug" in env and "LOG_LEVEL=info" not in env

    document = status.gather(config_load.load(bench.manifest), {**bench.env, "T_DEPLOY_TOKEN": secret})
    [item] = document["services"]
    assert item["vars"] == {"LOG_LEVEL": "debug", "NODE_ENV": "production"}
    assert secret not in json.dumps(document)


def test_a_state_dir_others_can_write_to_fails_the_leg_before_anything_is_written(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    """Env-files, the audit log, locks and the proxy's socket live there: it is the deploying user's alone."""
    setup_local(bench, docker_project, web, env=["T_DEPLOY_TOKEN"])
    secret = f"s3cr3t-{os.urandom(8).hex()}"
    bench.state_dir.mkdir()
    bench.state_dir.chmod(0o777)
    refused = bench.deploy(env={"T_DEPLOY_TOKEN": secret})
    problem = (f"state folder {bench.state_dir} is writable by group or others (drwxrwxrwx): run 'chmod 700' on "
               "it; wfgen keeps env-files there")  # fmt: skip
    assert (refused.returncode, refused.status["result"]) == (1, "failed"), refused.stdout + refused.stderr
    assert refused.status["message"] == problem
    assert list(bench.state_dir.iterdir()) == []  # no lock, env-file, salt or audit line
    assert inspect(docker_host, f"{docker_project}-{SERVICE}", "{{.Id}}") is None

    bench.state_dir.chmod(0o700)
    above = bench.workdir / "open"
    above.mkdir(mode=0o777)
    above.chmod(0o777)
    nested = above / "state"
    table = {**service_table(web, free_port()), "env": ["T_DEPLOY_TOKEN"]}
    bench.write({SERVICE: table}, project={"name": docker_project}, target={"state_dir": str(nested)})
    below = bench.deploy(env={"T_DEPLOY_TOKEN": secret})
    assert below.status["result"] == "failed", below.stdout + below.stderr
    assert below.status["message"] == (f"state folder {nested}: {above} on the way to it is writable by group or "
                                       "others (drwxrwxrwx); wfgen keeps env-files there")  # fmt: skip

    above.chmod(0o755)
    fresh = bench.deploy(env={"T_DEPLOY_TOKEN": secret})
    assert fresh.status["result"] == "deployed", fresh.stdout + fresh.stderr
    assert nested.stat().st_mode & 0o777 == 0o700


def test_secret_values_printed_by_a_crashing_candidate_never_leave_the_step(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    setup_local(bench, docker_project, web, env=["T_DEPLOY_TOKEN"], deadline_s=4.0)
    secret = f"s3cr3t-{os.urandom(8).hex()}"
    web.commit_variant("prints_env")
    run = bench.deploy(env={"T_DEPLOY_TOKEN": secret})
    assert (run.returncode, run.status["result"]) == (1, "failed"), run.stdout + run.stderr
    assert "    | T_DEPLOY_TOKEN=$T_DEPLOY_TOKEN" in run.stdout.splitlines()
    assert secret not in run.stdout + run.stderr + (bench.workdir / "status.json").read_text()
    assert_clean_failure(bench, docker_host, docker_project)


def test_new_versions_switch_and_prune(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    port = setup_local(bench, docker_project, web)
    assert bench.deploy().returncode == 0
    first = f"{docker_project}/{SERVICE}:{web.head[:12]}"
    web.write_marker("v2")
    poller = Poller(f"http://127.0.0.1:{port}/version")
    poller.start()
    second = bench.deploy()
    poller.stop()
    assert second.status["result"] == "deployed", second.stdout + second.stderr
    assert second.status["previous_image"] == first
    assert "switched; previous container kept for rollback" in second.stdout
    assert poller.bodies == {"v1", "v2"} and version(port) == "v2"
    web.write_marker("v3")
    assert bench.deploy().returncode == 0 and version(port) == "v3"
    images = docker(
        docker_host, "images", "--format", "{{.Tag}}", f"{docker_project}/{SERVICE}"
    ).stdout.split()
    assert sorted(images) == sorted([web.head[:12], second.status["commit"][:12]])  # keep_images = 2
    assert inspect(docker_host, f"{docker_project}-{SERVICE}-previous", "{{.Id}}") is None


def test_prune_keeps_the_version_a_rollback_would_go_to(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    """keep_images = 2; A, B deployed, C and D built but unhealthy, B forced again: the newest two are B and
    D, the old container's is B's, and A, older than all of them, is the rollback version: kept."""
    setup_local(bench, docker_project, web, deadline_s=2.0)
    first = web.head
    assert bench.deploy().returncode == 0
    second = web.write_marker("v2")
    assert bench.deploy().returncode == 0
    broken = [web.commit_variant("broken_health")]
    assert bench.deploy().status["result"] == "failed"
    broken.append(web.write_marker("v4"))  # still broken: a second image that never served
    assert bench.deploy().status["result"] == "failed"
    git(web.path, "reset", "-q", "--hard", second)
    forced = bench.deploy("--force-rebuild")
    assert forced.status["result"] == "deployed", forced.stdout + forced.stderr
    assert f"pruned 1 old image(s), keeping the last 2 and {first[:7]}, the rollback version" in forced.stdout
    tags = docker(docker_host, "images", "--format", "{{.Tag}}", f"{docker_project}/{SERVICE}").stdout.split()
    assert sorted(tags) == sorted(commit[:12] for commit in (first, second, broken[1]))


def test_broken_health_keeps_previous_serving(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    port = setup_local(bench, docker_project, web, deadline_s=4.0)
    assert bench.deploy().returncode == 0
    running_id = inspect(docker_host, f"{docker_project}-{SERVICE}", "{{.Id}}")
    web.commit_variant("broken_health")
    poller = Poller(f"http://127.0.0.1:{port}/version", expect="v1")
    poller.start()
    broken = bench.deploy()
    poller.stop()
    assert broken.returncode == 1
    assert (broken.status["result"], broken.status["phase"]) == ("failed", "health")
    assert "candidate never became healthy" in broken.stderr and "HTTP 404" in broken.stderr
    assert poller.failed == 0 and poller.ok > 20
    assert inspect(docker_host, f"{docker_project}-{SERVICE}", "{{.Id}}") == running_id
    assert_clean_failure(bench, docker_host, docker_project)


def test_a_candidate_that_exits_at_once_fails_with_its_exit_code_and_logs(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    """Gone before docker could show its port: the crash is the message, not `docker port`'s complaint."""
    port = setup_local(bench, docker_project, web, deadline_s=4.0)
    assert bench.deploy().returncode == 0
    web.commit_variant("exits")
    broken = bench.deploy()
    assert (broken.returncode, broken.status["result"]) == (1, "failed"), broken.stdout + broken.stderr
    # The restart policy may have started it again by the time it is inspected: the code is then 0.
    crashed = r"container exited with code \d+ \(restarts: \d+\)"
    message = f"candidate never became healthy: {crashed}; running container untouched"
    assert re.fullmatch(message, broken.status["message"]), broken.status["message"]
    assert "    | fixture: exiting on purpose" in broken.stdout.splitlines()
    assert version(port) == "v1"
    assert_clean_failure(bench, docker_host, docker_project)


def test_a_deploy_killed_mid_cutover_leaves_its_rollback_point_for_the_next(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    """SIGKILL between 'rename old to -previous' and 'verify' leaves two containers; -previous is the good one."""
    port = setup_local(bench, docker_project, web, deadline_s=4.0)
    assert bench.deploy().returncode == 0
    running = f"{docker_project}-{SERVICE}"
    good_image = inspect(docker_host, running, "{{.Config.Image}}")
    # What a killed deploy leaves: the verified container renamed (still serving), an unverified one created.
    docker(docker_host, "rename", running, f"{running}-previous", timeout=60, check=True)
    docker(docker_host, "create", "--name", running, "--network", f"{docker_project}-network", str(good_image),
           "sh", "-c", "exit 1", timeout=60, check=True)  # fmt: skip
    web.commit_variant("broken_health")
    broken = bench.deploy()
    assert broken.returncode == 1 and broken.status["result"] == "failed", broken.stdout + broken.stderr
    assert "left by an interrupted deploy" in broken.stdout
    assert inspect(docker_host, running, "{{.Config.Image}}") == good_image
    assert inspect(docker_host, running, "{{.State.Running}}") == "true"
    assert version(port) == "v1"
    assert_clean_failure(bench, docker_host, docker_project)


def test_unreachable_ssh_target_is_one_line_and_a_final_status(tmp_path: Path) -> None:
    closed = free_port()
    text = manifest_toml(
        {SERVICE: {"repository": "file:///nowhere", "port": 3000}},
        project={"name": "unreach"},
        target={"kind": "ssh", "port": closed, "state_dir": str(tmp_path / "state"), "connect_timeout_s": 3},
    )
    manifest = write_resolved_manifest(tmp_path, text)
    env = {"VPS_HOST": "127.0.0.1", "VPS_USER": "nobody", "VPS_SSH_KEY": "not a key", "VPS_KNOWN_HOSTS": "x"}
    proc = run_step(
        "deploy_service", "--manifest", str(manifest), "--service", SERVICE, "--branch", "main",
        "--status-file", str(tmp_path / "st.json"), env=env,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"{SERVICE}: cannot reach $VPS_USER@$VPS_HOST:")
    status = json.loads((tmp_path / "st.json").read_text())
    assert status["result"] == "failed" and status["finished_at"] is not None


def test_final_check_failure_rolls_back(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    """The candidate is healthy; then (test hook) the image tag is pointed at a broken build, so the final
    container really fails its health check on the real port, and the previous container must come back."""
    port = setup_local(bench, docker_project, web, deadline_s=3.0)
    assert bench.deploy().returncode == 0
    broken_ref = f"{docker_project}/broken:1"
    web.commit_variant("broken_health")
    docker(docker_host, "build", "-q", "-t", broken_ref, str(web.path), check=True, timeout=300)
    web.commit_variant("ok")
    new = web.write_marker("v2")
    hook = f"docker tag {broken_ref} {docker_project}/{SERVICE}:{new[:12]}"
    rolled = bench.deploy(env={"WFGEN_TEST_BEFORE_SWITCH": hook})
    assert rolled.returncode == 1, rolled.stdout + rolled.stderr
    assert (rolled.status["result"], rolled.status["phase"]) == ("rolled_back", "verify")
    assert "candidate healthy" in rolled.stdout
    assert "previous container restored" in rolled.stderr
    assert version(port) == "v1"
    assert inspect(docker_host, f"{docker_project}-{SERVICE}", "{{.State.Running}}") == "true"
    assert_clean_failure(bench, docker_host, docker_project)


def test_build_failure_leaves_running_container(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    port = setup_local(bench, docker_project, web)
    assert bench.deploy().returncode == 0
    running_id = inspect(docker_host, f"{docker_project}-{SERVICE}", "{{.Id}}")
    web.commit_variant("bad_dockerfile")
    failed = bench.deploy()
    assert failed.returncode == 1
    assert (failed.status["result"], failed.status["phase"]) == ("failed", "build")
    assert "this-file-does-not-exist" in failed.stdout  # the build output's tail is shown
    assert inspect(docker_host, f"{docker_project}-{SERVICE}", "{{.Id}}") == running_id
    assert version(port) == "v1"
    assert_clean_failure(bench, docker_host, docker_project)
    assert not list((bench.state_dir / "src").iterdir())


def test_stale_lock_is_broken_with_a_warning(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    setup_local(bench, docker_project, web)
    held = lock_dir(bench)
    held.mkdir(parents=True)
    (held / "owner").write_text('{"holder": "ghost", "host": "gone", "since": "2020-01-01T00:00:00.000Z"}\n')
    old = time.time() - 7200
    os.utime(held, (old, old))
    run = bench.deploy("--lock-wait", "5")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "warning: breaking stale lock held by ghost@gone" in run.stdout
    assert not held.exists()


def test_concurrent_deploys_never_interleave(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    setup_local(bench, docker_project, web)
    started = time.monotonic()
    first = bench.start(status="a.json")
    second = bench.start(status="b.json")
    runs = [bench.finish(first, started, "a.json"), bench.finish(second, started, "b.json")]
    assert [run.returncode for run in runs] == [0, 0], [run.stdout + run.stderr for run in runs]
    assert sorted(run.status["result"] for run in runs) == ["deployed", "unchanged"]
    winner, waiter = sorted(runs, key=lambda run: run.status["result"])
    waited_until = next(p["at"] for p in waiter.status["phases"] if p["phase"] == "source")
    assert waited_until >= winner.status["finished_at"]
    assert "waiting for the lock held by" in waiter.stdout
    audit = (bench.state_dir / "audit.log").read_text().splitlines()
    assert [line.split()[4] for line in audit] == ["deployed", "unchanged"]


def test_sigterm_mid_health_cancels_and_restores(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    port = setup_local(bench, docker_project, web, deadline_s=60.0)
    assert bench.deploy().returncode == 0
    web.commit_variant("ok", delay_s=60)
    poller = Poller(f"http://127.0.0.1:{port}/version", expect="v1")
    poller.start()
    started = time.monotonic()
    proc = bench.start()
    status_path = bench.workdir / "status.json"
    for _ in range(600):
        if status_path.exists() and json.loads(status_path.read_text())["phase"] == "health":
            break
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    run = bench.finish(proc, started, timeout=60)
    poller.stop()
    assert run.returncode == 1, run.stdout + run.stderr
    assert (run.status["result"], run.status["phase"]) == ("cancelled", "health")
    assert "cancelled by SIGTERM" in run.stderr
    assert poller.failed == 0 and version(port) == "v1"
    assert_clean_failure(bench, docker_host, docker_project)
    assert (bench.state_dir / "audit.log").read_text().splitlines()[-1].split()[4] == "cancelled"


def wait_for_stop_of_old(docker_host: str, project: str) -> None:
    """The switch is in `docker stop` of the old container: it is renamed and the new one is created."""
    running = f"{project}-{SERVICE}"
    for _ in range(600):
        if inspect(docker_host, f"{running}-previous", "{{.Id}}") and inspect(
            docker_host, running, "{{.Id}}"
        ):
            time.sleep(0.5)
            return
        time.sleep(0.05)
    pytest.fail("the switch never reached the stop of the old container")


def cancel_like_github(proc: subprocess.Popen[str]) -> None:
    """GitHub's cancel: SIGINT, then SIGTERM 7.5 s later, then SIGKILL 2.5 s after that (while still running)."""
    proc.send_signal(signal.SIGINT)
    for then, wait_s in ((signal.SIGTERM, 7.5), (signal.SIGKILL, 2.5)):
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            proc.send_signal(then)


def files_holding(root: Path, text: str) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and text in path.read_text(errors="replace")]


@pytest.mark.parametrize("phase", ["health", "switch", "verify"])
def test_a_github_cancel_leaves_a_version_serving_and_no_secret_lock_or_running_status(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str, phase: str
) -> None:
    """The cancel's SIGKILL comes 10 s after its SIGINT: secrets, status, restore and unlock fit before it.

    switch: the old container ignores SIGTERM, so its `docker stop` runs the full 10 s when the cancel lands."""
    if phase == "switch":
        web.commit_variant("slow_stop")
        web.write_marker("v1")
    port = setup_local(bench, docker_project, web, env=["T_DEPLOY_TOKEN"], deadline_s=60.0)
    secret = f"s3cr3t-{os.urandom(8).hex()}"
    bench.env = {**bench.env, "T_DEPLOY_TOKEN": secret}
    assert bench.deploy().returncode == 0
    web.commit_variant("ok", delay_s={"health": 60, "switch": 0, "verify": 3}[phase])
    web.write_marker("v2")
    started = time.monotonic()
    proc = bench.start()
    bench.wait_for_phase(phase)
    if phase == "switch":
        wait_for_stop_of_old(docker_host, docker_project)
    else:
        time.sleep(0.5)
    assert files_holding(bench.state_dir / "env", secret), "the deploy had no env-file to leave behind"
    cancel_like_github(proc)
    run = bench.finish(proc, started, timeout=30)
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.status["result"] == "cancelled" and run.status["finished_at"] is not None, run.stdout
    assert "cancelled by SIGINT" in run.status["message"]
    assert version(port) == "v1"
    assert files_holding(bench.state_dir, secret) == []
    assert_clean_failure(bench, docker_host, docker_project)


def test_path_source_from_monorepo(
    tmp_path: Path, bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    """A folder of the checkout, streamed with git archive; the commit is the last one touching the folder."""
    mono = tmp_path / "mono"
    shutil.copytree(web.path, mono / "services" / SERVICE, ignore=shutil.ignore_patterns(".git"))
    git(mono.parent, "init", "-q", "-b", "main", str(mono))
    for key, value in (("user.name", "t"), ("user.email", "t@wfgen.invalid"), ("commit.gpgsign", "false")):
        git(mono, "config", key, value)
    git(mono, "add", "-A")
    git(mono, "commit", "-q", "-m", "monorepo")
    folder_commit = git(mono, "rev-parse", "HEAD")
    (mono / "README").write_text("unrelated\n")
    git(mono, "add", "-A")
    git(mono, "commit", "-q", "-m", "unrelated change")
    port = free_port()
    table = {"path": f"services/{SERVICE}", "port": port, "container_port": 3000, "health": FAST_HEALTH}
    bench.write({SERVICE: table}, project={"name": docker_project})
    run = bench.deploy("--repo-root", str(mono))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.status["commit"] == folder_commit
    assert version(port) == "v1"
    assert bench.deploy("--repo-root", str(mono)).status["result"] == "unchanged"


# --- the commit the plan showed ------------------------------------------------------------------


def plan_of(bench: DeployBench, repo_root: Path | None = None) -> str:
    """plan.py's plan for `web` on branch main, as the deploy jobs get it (WFGEN_PLAN)."""
    args = ["--manifest", str(bench.manifest), "--services", SERVICE, "--branch", "main", "--json"]
    if repo_root is not None:
        args += ["--repo-root", str(repo_root)]
    planned = run_step("plan", *args, env=bench.env, timeout=120)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    return handoff.encode(json.loads(planned.stdout))


def rewrite_history(repo: Path, commits_back: int) -> None:
    """A force-push that drops the last `commits_back` commits, and a gc that really removes them."""
    git(repo, "reset", "-q", "--hard", f"HEAD~{commits_back}")
    (repo / "rewritten").write_text("history rewritten\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "rewritten")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")


def test_a_leg_deploys_the_commit_its_plan_showed_not_a_later_push(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    port = setup_local(bench, docker_project, web)
    planned = web.head
    plan = plan_of(bench)
    pushed = web.write_marker("v2")  # lands after the plan (or while a reviewer approves the environment)
    run = bench.deploy("--plan", plan)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.status["commit"] == planned != pushed
    assert run.status["image"].endswith(f":{planned[:12]}")
    assert version(port) == "v1"
    assert (
        inspect(docker_host, f"{docker_project}-{SERVICE}", '{{index .Config.Labels "wfgen.commit"}}')
        == planned
    )


def test_a_planned_commit_gone_from_its_repository_fails_in_one_line_and_deploys_nothing(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    port = setup_local(bench, docker_project, web)
    assert bench.deploy().returncode == 0
    running_id = inspect(docker_host, f"{docker_project}-{SERVICE}", "{{.Id}}")
    planned = web.write_marker("v2")
    plan = plan_of(bench)
    rewrite_history(web.path, 1)
    run = bench.deploy("--plan", plan)
    assert run.returncode == 1, run.stdout + run.stderr
    assert (run.status["result"], run.status["phase"]) == ("failed", "build")
    message = run.status["message"]
    assert message.startswith(
        f"commit {planned[:7]} from the plan cannot be fetched (force-pushed off main?): "
    )
    assert message.endswith("; nothing deployed") and "\n" not in message
    assert f"{SERVICE}: {message}" in run.stderr
    assert inspect(docker_host, f"{docker_project}-{SERVICE}", "{{.Id}}") == running_id
    assert version(port) == "v1"
    assert_clean_failure(bench, docker_host, docker_project)


def test_a_workflow_leg_without_its_plan_deploys_nothing(
    bench: DeployBench, web: ServiceRepo, docker_project: str
) -> None:
    setup_local(bench, docker_project, web)
    run = bench.deploy("--plan-id", "5eed5eed5eed5eed")
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.status["result"] == "failed"
    assert run.status["message"] == (
        "WFGEN_PLAN is empty: the plan job's output did not reach this leg, so the commit it showed is unknown; "
        "nothing deployed"
    )
    bad = bench.deploy("--commit", "main")
    assert bad.returncode == 2
    assert bad.status["message"] == "--commit: expected a full 40-character commit id, got 'main'"


def make_mono(root: Path, web: ServiceRepo) -> Path:
    """A repository holding `web` in services/web, one commit."""
    shutil.copytree(web.path, root / "services" / SERVICE, ignore=shutil.ignore_patterns(".git"))
    git(root.parent, "init", "-q", "-b", "main", str(root))
    for key, value in (("user.name", "t"), ("user.email", "t@wfgen.invalid"), ("commit.gpgsign", "false")):
        git(root, "config", key, value)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "monorepo")
    return root


def commit_version(mono: Path, text: str) -> str:
    (mono / "services" / SERVICE / "www" / "version").write_text(text + "\n")
    git(mono, "add", "-A")
    git(mono, "commit", "-q", "-m", f"web: {text}")
    return git(mono, "rev-parse", "HEAD")


def test_a_folder_leg_builds_the_folder_at_the_planned_commit_or_nothing(
    tmp_path: Path, bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    mono = make_mono(tmp_path / "mono", web)
    planned = git(mono, "rev-parse", "HEAD")
    port = free_port()
    table = {"path": f"services/{SERVICE}", "port": port, "container_port": 3000, "health": FAST_HEALTH}
    bench.write({SERVICE: table}, project={"name": docker_project})
    plan = plan_of(bench, mono)
    commit_version(mono, "v2")  # a push to the folder after the plan
    run = bench.deploy("--repo-root", str(mono), "--plan", plan)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.status["commit"] == planned
    assert version(port) == "v1"

    gone = commit_version(mono, "v3")
    plan = plan_of(bench, mono)
    git(mono, "reset", "-q", "--hard", "HEAD~1")  # force-pushed away; the object is still in the checkout
    commit_version(mono, "v3, reworded")
    failed = bench.deploy("--repo-root", str(mono), "--plan", plan)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert failed.status["result"] == "failed"
    assert failed.status["message"] == (
        f"commit {gone[:7]} from the plan is no longer on branch main (force-pushed?); nothing deployed"
    )
    assert version(port) == "v1"
    assert_clean_failure(bench, docker_host, docker_project)


def test_runner_build_pushes_and_pulls(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str, registry: str
) -> None:
    port = free_port()
    prefix = f"{registry}/wfgen-tests"
    bench.write(
        {SERVICE: service_table(web, port)},
        project={"name": docker_project},
        build={"where": "runner", "registry": prefix},
    )
    run = bench.deploy()
    assert run.returncode == 0, run.stdout + run.stderr
    image = f"{prefix}/{docker_project}/{SERVICE}:{web.head[:12]}"
    assert run.status["image"] == image
    assert f"pushing {image}" in run.stdout and f"pulling {image} on the target" in run.stdout
    catalog = json.loads(fetch(f"http://{registry}/v2/_catalog")[1])
    assert f"wfgen-tests/{docker_project}/{SERVICE}" in catalog["repositories"]
    assert inspect(docker_host, f"{docker_project}-{SERVICE}", "{{.Config.Image}}") == image
    assert version(port) == "v1"
    docker(docker_host, "rmi", image)  # the registry copy stays; cleanup_project removes the local tags


# --- ssh target -----------------------------------------------------------------------------------


def test_ssh_target_cold_unchanged_broken(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str, sshd: SshServer
) -> None:
    port = free_port()
    bench.env = {**bench.env, **sshd.target_env()}
    skip = {"kind", "state_dir"}  # the state dir stays in tmp_path (same machine), set by bench.write
    target = {k: v for k, v in sshd.target_config().items() if v is not None and k not in skip}
    table = service_table(web, port, deadline_s=4.0)
    bench.write({SERVICE: table}, project={"name": docker_project}, target={"kind": "ssh", **target})
    assert json.loads(bench.manifest.read_text())["target"]["kind"] == "ssh"
    cold = bench.deploy()
    assert cold.status["result"] == "deployed", cold.stdout + cold.stderr
    assert version(port) == "v1"
    again = bench.deploy()
    assert again.status["result"] == "unchanged", again.stdout + again.stderr
    web.commit_variant("broken_health")
    poller = Poller(f"http://127.0.0.1:{port}/version", expect="v1")
    poller.start()
    broken = bench.deploy()
    poller.stop()
    assert (broken.returncode, broken.status["result"], broken.status["phase"]) == (1, "failed", "health")
    assert poller.failed == 0
    assert_clean_failure(bench, docker_host, docker_project)
    audit = (bench.state_dir / "audit.log").read_text().splitlines()
    assert [line.split()[4] for line in audit] == ["deployed", "unchanged", "failed"]


@pytest.fixture
def sshd_home(tmp_path: Path) -> Iterator[SshServer]:
    server = start_sshd_with_home(tmp_path / "sshd")
    yield server
    server.stop()


def test_remote_error_text_reaches_the_status_without_home_or_user(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str, sshd_home: SshServer
) -> None:
    """The status JSON is uploaded as an artifact, which GitHub does not mask: remote stderr quoting the
    deploy user's home directory (which names the user) reaches it with `~` instead."""
    bench.env = {**bench.env, **sshd_home.target_env()}
    target = {k: v for k, v in sshd_home.target_config(state_dir="state").items() if v is not None}
    bench.write({SERVICE: service_table(web, free_port())}, project={"name": docker_project}, target=target)
    home = sshd_home.workdir / "home" / sshd_home.user
    (home / "state" / "config-salt").mkdir(parents=True)  # reading it fails, and `cat` quotes its full path
    run = bench.deploy()
    assert (run.returncode, run.status["result"]) == (1, "failed"), run.stdout + run.stderr
    assert run.status["message"] == "sh exited 1: cat: ~/state/config-salt: Is a directory"
    text = run.stdout + run.stderr + (bench.workdir / "status.json").read_text()
    assert str(home) not in text
    assert not re.search(rf"(?<!\w){re.escape(sshd_home.user)}(?!\w)", text), text


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="wfgt-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_deploy_after_a_sigkilled_one_removes_its_leftovers(
    short_tmp: Path,
    bench: DeployBench,
    web: ServiceRepo,
    docker_project: str,
    docker_host: str,
    sshd: SshServer,
) -> None:
    """A SIGKILL skips all cleanup. Once its lock is broken, the next deploy of the service removes the killed
    one's env-file (secret), login dirs, clones older than any live deploy, and its SSH key dir on the runner."""
    port = free_port()
    runner_tmp = short_tmp  # the runner's TMPDIR: the ssh control socket's path must stay short
    secret = f"s3cr3t-{os.urandom(8).hex()}"
    bench.env = {**bench.env, **sshd.target_env(), "TMPDIR": str(runner_tmp), "T_DEPLOY_TOKEN": secret}
    skip = {"kind", "state_dir"}
    target = {k: v for k, v in sshd.target_config().items() if v is not None and k not in skip}
    table = {**service_table(web, port, deadline_s=60.0), "env": ["T_DEPLOY_TOKEN"]}
    bench.write({SERVICE: table}, project={"name": docker_project}, target={"kind": "ssh", **target})
    first = bench.deploy()
    assert first.status["result"] == "deployed", first.stdout + first.stderr
    web.commit_variant("ok", delay_s=60)
    started = time.monotonic()
    proc = bench.start()
    bench.wait_for_phase("health")
    proc.kill()
    killed = bench.finish(proc, started, timeout=30)
    assert killed.status["result"] == "running"
    state = bench.state_dir
    assert files_holding(state / "env", secret) and lock_dir(bench).exists()
    assert [p.name for p in runner_tmp.iterdir()][0].startswith("wfgen-ssh-")
    login = state / "docker-config" / f"{SERVICE}-0123456789ab"
    login.mkdir(parents=True)
    (login / "config.json").write_text('{"auths": {"registry.invalid": {"auth": "c2VjcmV0"}}}\n')
    old_clone, young_clone, other_service = (
        state / "src" / name
        for name in (f"{SERVICE}-00000000000a", f"{SERVICE}-00000000000b", "web-api-00000000000c")
    )
    day_ago = time.time() - 86400
    for clone in (old_clone, young_clone, other_service):
        clone.mkdir(parents=True)
        if clone != young_clone:
            os.utime(clone, (day_ago, day_ago))
    hour_ago = time.time() - 3600  # past lock_stale_s (300 s): nobody refreshes a killed deploy's lock
    os.utime(lock_dir(bench), (hour_ago, hour_ago))
    time.sleep(lock.HEARTBEAT_S + 1)
    assert lock_dir(bench).stat().st_mtime == pytest.approx(hour_ago, abs=1)

    web.commit_variant("ok", delay_s=0)
    web.write_marker("v3")
    after = bench.deploy("--lock-wait", "10")
    assert after.status["result"] == "deployed", after.stdout + after.stderr
    # The killed deploy ran on this machine: its lock is broken as its holder's, gone (stale too, by its age).
    assert "warning: breaking the lock of pid " in after.stdout
    assert "on this host, which is no longer running" in after.stdout
    assert "removed 4 leftover(s) of interrupted deploys" in after.stdout
    assert version(port) == "v3"
    assert files_holding(state, secret) == []
    assert not login.exists() and not old_clone.exists()
    assert young_clone.exists() and other_service.exists()
    assert list(runner_tmp.iterdir()) == []
    assert_clean_failure(bench, docker_host, docker_project)


def test_script_runs_without_site_packages(tmp_path: Path) -> None:
    """-I -S: the step and its sibling modules need nothing outside the stdlib."""
    proc = run_step("deploy_service", "--help")
    assert proc.returncode == 0 and "--force-rebuild" in proc.stdout

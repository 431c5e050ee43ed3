"""Zero-downtime deploys behind the project proxy, under steady load: real Docker, real Caddy, real git.

Each test sends concurrent GETs to the public port on 127.0.0.1 for the whole deploy (tests/support/load.py:
no retries, every failure counts) and asserts every one of them was answered, by the old or the new version.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.deploys import DeployBench, DeployRun, fetch
from tests.support.docker import docker
from tests.support.fixture_service import ServiceRepo
from tests.support.load import Load, LoadResult
from tests.support.ports import free_port
from tests.support.sshd import SshServer
from tests.support.stepscripts import run_step

# One worker runs these one after another: each keeps 4 threads sending requests (paced, tests/support/load.py)
# and counts a single timeout as a failure, so two at once on a small machine could starve each other's proxy.
pytestmark = pytest.mark.xdist_group("http-load")

SERVICE = "web"
HEALTH = {"interval_s": 0.2, "timeout_s": 2.0, "deadline_s": 8.0}


def setup(
    bench: DeployBench,
    project: str,
    repo: ServiceRepo,
    *,
    proxy_table: dict[str, Any] | None = None,
    target: dict[str, Any] | None = None,
    **service: Any,
) -> int:
    """A manifest for one service on a free port; check-infrastructure has started the proxy. The port."""
    port = free_port()
    table = {"repository": repo.url, "port": port, "container_port": 3000, "health": HEALTH, **service}
    bench.write({SERVICE: table}, project={"name": project}, proxy=proxy_table or {}, target=target or {})
    check = run_step("check_infrastructure", "--manifest", str(bench.manifest), env=bench.env, timeout=180)
    assert check.returncode == 0, check.stdout + check.stderr
    return port


def container(docker_host: str, name: str, fmt: str = "{{.State.Status}}") -> str | None:
    proc = docker(docker_host, "inspect", "--format", fmt, name)
    return proc.stdout.strip() if proc.returncode == 0 else None


def names(docker_host: str, project: str) -> dict[str, str]:
    """Every container of the service: name -> state."""
    proc = docker(
        docker_host, "ps", "-a", "--filter", f"label=wfgen.service={SERVICE}",
        "--filter", f"label=wfgen.project={project}", "--format", "{{.Names}} {{.State}}",
    )  # fmt: skip
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines())


def version(port: int) -> str:
    return fetch(f"http://127.0.0.1:{port}/version")[1].strip()


def deploy_under_load(bench: DeployBench, port: int, *args: str) -> tuple[DeployRun, LoadResult]:
    with Load(port) as load:
        time.sleep(0.3)
        run = bench.deploy(*args)
        time.sleep(0.3)
    return run, load.result


@pytest.fixture
def deployed(bench: DeployBench, web: ServiceRepo, docker_project: str) -> Iterator[int]:
    """v1 deployed behind the proxy; the public port."""
    port = setup(bench, docker_project, web)
    first = bench.deploy()
    assert first.returncode == 0, first.stdout + first.stderr
    assert version(port) == "v1"
    yield port


def test_a_good_deploy_answers_every_request_and_boots_once(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str, deployed: int
) -> None:
    commit = web.write_marker("v2")
    started_at = f"{time.time():.3f}"
    run, load = deploy_under_load(bench, deployed)
    assert run.returncode == 0, run.stdout + run.stderr
    assert load.failures == [] and load.ok > 100, load.describe()
    assert set(load.bodies) == {"v1", "v2"}, load.describe()
    assert version(deployed) == "v2"
    assert run.phases == [
        "lock", "source", "build", "candidate", "health", "switch", "verify", "drain", "cleanup", "done",
    ]  # fmt: skip
    live = f"{docker_project}-{SERVICE}"
    assert container(docker_host, live, '{{index .Config.Labels "wfgen.commit"}}') == commit
    # One boot: the engine started one container of the service during the deploy, the one that serves.
    events = docker(
        docker_host, "events", "--since", started_at, "--until", f"{time.time():.3f}", "--format",
        "{{.Action}} {{.Actor.ID}}", "--filter", "type=container", "--filter", f"label=wfgen.project={docker_project}",
        "--filter", f"label=wfgen.service={SERVICE}", "--filter", "event=start",
    )  # fmt: skip
    assert events.returncode == 0, events.stderr
    assert [line.split()[1] for line in events.stdout.splitlines()] == [
        container(docker_host, live, "{{.Id}}")
    ]
    bindings = json.loads(container(docker_host, live, "{{json .HostConfig.PortBindings}}") or "{}")
    assert [b["HostIp"] for bs in bindings.values() for b in bs] == ["127.0.0.1"], "no public port of its own"
    states = names(docker_host, docker_project)
    assert states.pop(live) == "running"
    assert list(states.values()) == ["exited"], "the previous version stays, stopped, as the rollback point"
    assert "nothing went dark" in run.stdout


def test_a_candidate_that_never_gets_healthy_changes_nothing(
    bench: DeployBench, web: ServiceRepo, deployed: int, docker_project: str, docker_host: str
) -> None:
    web.commit_variant("broken_health")
    run, load = deploy_under_load(bench, deployed)
    assert run.returncode == 1 and run.status["result"] == "failed", run.stdout + run.stderr
    assert run.status["phase"] == "health"
    assert load.failures == [] and set(load.bodies) == {"v1"}, load.describe()
    states = names(docker_host, docker_project)
    assert states == {f"{docker_project}-{SERVICE}": "running"}, "the candidate is removed"


def test_a_switch_that_fails_its_check_renames_back_at_once(
    bench: DeployBench, web: ServiceRepo, deployed: int, docker_project: str, docker_host: str
) -> None:
    """The new version passes its own health gate, then dies before the check through the proxy."""
    web.write_marker("v2")
    kill = f"docker ps --filter name={docker_project}-{SERVICE}- --format '{{{{.Names}}}}' | xargs -r docker kill"
    bench.env = {**bench.env, "WFGEN_TEST_BEFORE_SWITCH": kill}
    run, load = deploy_under_load(bench, deployed)
    assert run.returncode == 1 and run.status["result"] == "rolled_back", run.stdout + run.stderr
    assert load.failures == [] and set(load.bodies) == {"v1"}, load.describe() + run.stdout
    assert version(deployed) == "v1"
    assert names(docker_host, docker_project) == {f"{docker_project}-{SERVICE}": "running"}


def test_sigint_while_the_candidate_boots_removes_it(
    bench: DeployBench, web: ServiceRepo, deployed: int, docker_project: str, docker_host: str
) -> None:
    web.commit_variant("ok", delay_s=30)
    with Load(deployed) as load:
        proc = bench.start()
        started = time.monotonic()
        bench.wait_for_phase("health")
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        run = bench.finish(proc, started, timeout=60)
    assert (run.status["result"], run.status["phase"]) == ("cancelled", "health"), run.stdout + run.stderr
    assert load.result.failures == [] and set(load.result.bodies) == {"v1"}, load.result.describe()
    assert names(docker_host, docker_project) == {f"{docker_project}-{SERVICE}": "running"}
    assert not (bench.state_dir / "locks" / SERVICE).exists()


def test_sigint_while_the_old_version_drains_keeps_the_new_one(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    port = setup(bench, docker_project, web, proxy_table={"drain_s": 30})
    assert bench.deploy().returncode == 0
    web.write_marker("v2")
    with Load(port) as load:
        proc = bench.start()
        started = time.monotonic()
        bench.wait_for_phase("drain")
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        run = bench.finish(proc, started, timeout=60)
        time.sleep(0.3)
    assert run.status["result"] == "deployed", run.stdout + run.stderr
    assert time.monotonic() - started < 25, "the cancel cut the drain short"
    assert load.result.failures == [], load.result.describe()
    assert version(port) == "v2"
    states = names(docker_host, docker_project)
    assert states.pop(f"{docker_project}-{SERVICE}") == "running"
    assert list(states.values()) == ["exited"]


def test_the_proxy_keeps_its_routes_across_a_restart(
    bench: DeployBench, web: ServiceRepo, deployed: int, docker_project: str, docker_host: str
) -> None:
    proxy = f"{docker_project}-proxy"
    assert docker(docker_host, "restart", "-t", "2", proxy).returncode == 0
    for _ in range(100):
        if version(deployed) == "v1":
            break
        time.sleep(0.1)
    assert version(deployed) == "v1"
    # A check of the infrastructure under load finds everything in place and touches nothing.
    with Load(deployed) as load:
        check = run_step(
            "check_infrastructure", "--manifest", str(bench.manifest), env=bench.env, timeout=180
        )
    assert check.returncode == 0, check.stdout
    assert f"proxy {proxy}" in check.stdout and "running, ports" in check.stdout
    assert load.result.failures == [], load.result.describe()
    web.write_marker("v2")
    run, load2 = deploy_under_load(bench, deployed)
    assert run.returncode == 0 and load2.failures == [], load2.describe()


def test_a_service_without_the_proxy_goes_dark_during_its_switch(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    """proxy = false keeps the restart cutover: the port is dark from the old container's stop on."""
    port = setup(bench, docker_project, web, proxy=False)
    assert bench.deploy().returncode == 0
    web.write_marker("v2")
    run, load = deploy_under_load(bench, port)
    assert run.returncode == 0, run.stdout + run.stderr
    assert load.failures, "the restart cutover drops requests: that is why the proxy exists"
    assert "port dark" in run.stdout
    assert container(docker_host, f"{docker_project}-proxy") is None, "no proxied service: no proxy"


def test_a_service_deployed_before_the_proxy_moves_behind_it_once(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str
) -> None:
    port = setup(bench, docker_project, web, proxy=False)
    assert bench.deploy().returncode == 0
    table = {"repository": web.url, "port": port, "container_port": 3000, "health": HEALTH}
    bench.write({SERVICE: table}, project={"name": docker_project})
    check = run_step("check_infrastructure", "--manifest", str(bench.manifest), env=bench.env, timeout=180)
    assert check.returncode == 0, check.stdout
    assert f"port {port} moves behind it on the next deploy" in check.stdout
    moved = bench.deploy()
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "moves behind the proxy" in moved.stdout and "is dark until the proxy publishes it" in moved.stdout
    assert version(port) == "v1"
    web.write_marker("v2")
    run, load = deploy_under_load(bench, port)
    assert run.returncode == 0 and load.failures == [], load.describe()
    assert version(port) == "v2"


def test_over_ssh_every_request_is_answered(
    bench: DeployBench, web: ServiceRepo, docker_project: str, docker_host: str, sshd: SshServer
) -> None:
    bench.env = {**bench.env, **sshd.target_env()}
    port = setup(bench, docker_project, web, target=sshd.target_config())
    first = bench.deploy()
    assert first.returncode == 0, first.stdout + first.stderr
    web.write_marker("v2")
    run, load = deploy_under_load(bench, port)
    assert run.returncode == 0, run.stdout + run.stderr
    assert load.failures == [] and set(load.bodies) == {"v1", "v2"}, load.describe()


def test_a_deploy_killed_between_its_renames_is_repaired_by_the_next(
    bench: DeployBench, web: ServiceRepo, deployed: int, docker_project: str, docker_host: str
) -> None:
    """A SIGKILL after the first rename leaves no container under the live name; the next deploy of the
    service gives it back to the old version before anything else, then deploys as usual."""
    live = f"{docker_project}-{SERVICE}"
    assert docker(docker_host, "rename", live, f"{live}-parked").returncode == 0
    assert fetch(f"http://127.0.0.1:{deployed}/version", timeout=8)[0] != 200
    web.write_marker("v2")
    run = bench.deploy()
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{live}-parked takes the live name {live} back from an interrupted deploy" in run.stdout
    assert version(deployed) == "v2"
    states = names(docker_host, docker_project)
    assert states.pop(live) == "running" and list(states.values()) == ["exited"], states

"""The swarm engine on the real 3-node lab (tests/support/swarm.py): deploy_service with `kind = "swarm"`.

The scenarios run in order, as one test, on one service `web` (2 replicas, on the two workers) behind the
project proxy, a global Caddy service publishing port 8080 on every node; steady load goes to every node's
port from the lab's bridge namespace, and each scenario reports its failed requests out of the total.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from generator.steps import plan, status
from generator.steps.core import config_load
from tests.support.deploys import DeployBench, DeployRun
from tests.support.fixture_service import ServiceRepo, make_service_repo
from tests.support.stepscripts import step_argv
from tests.support.swarm import WEB_PORT, Swarm
from tests.support.swarm_services import PROXY_PORT, LoadInNetns, tasks, tasks_left, wait_for

SERVICE = "web"
STACK = "shop"
TOKEN = "swarm-secret-7f3a9c"
# One worker forms the lab once per run; the lab's own tests and these share it (and its port 8080).
pytestmark = pytest.mark.xdist_group("swarm")
HEALTH_COMMAND = ["/bin/busybox", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{WEB_PORT}/health"]


@dataclass
class Lab:
    swarm: Swarm
    repo: ServiceRepo
    bench: DeployBench

    @property
    def bench_network(self) -> str:
        return str(config_load.load(self.bench.manifest).target.network)

    @property
    def name(self) -> str:
        return f"{STACK}_{SERVICE}"

    def deploy(self) -> DeployRun:
        run = self.bench.deploy()
        print(f"deploy: exit {run.returncode} in {run.seconds:.1f} s: {run.status.get('message')}")
        return run

    def running_images(self) -> list[str]:
        found = tasks(self.swarm, self.name)
        return [t["Spec"]["ContainerSpec"]["Image"] for t in found if t["Status"]["State"] == "running"]

    def answers(self) -> list[str]:
        """The body of /version through the proxy on every node, asked from inside each node."""
        return [
            self.swarm.http_get(node, f"http://{node.address}:{PROXY_PORT}/version")[1].strip()
            for node in self.swarm.nodes
        ]


@pytest.fixture(scope="module")
def lab(swarm: Swarm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("swarm-deploy")
    repo = make_service_repo(root / "repos", SERVICE, port=WEB_PORT)
    repo.write_marker("v1")
    env = {**os.environ, "DOCKER_HOST": swarm.manager_host, "API_TOKEN": TOKEN}
    bench = DeployBench(workdir=root, env=env, service=SERVICE)
    bench.write(
        {
            SERVICE: {
                "repository": repo.url, "port": PROXY_PORT, "container_port": WEB_PORT, "replicas": 2,
                "env": ["API_TOKEN"], "placement": ["node.role == worker"],
                "health": {"interval_s": 1, "timeout_s": 2, "deadline_s": 15, "command": HEALTH_COMMAND},
            }
        },
        project={"name": STACK, "deploy_timeout_minutes": 4},
        target={"kind": "swarm", "manager": "local"},
        proxy={"image": swarm.images["caddy"], "drain_s": 2},
        build={"where": "runner", "registry": f"{swarm.registry}/wfgen"},
    )  # fmt: skip
    yield Lab(swarm, repo, bench)
    swarm.docker("stack", "rm", STACK)
    # The lab's own tests come next on this worker: every node ready again, port 8080 free on each.
    wait_for(
        "every node ready", lambda: all(s[0] == "ready" for s in swarm.node_states().values()), timeout=90
    )
    wait_for("the stack's tasks to go", lambda: not tasks_left(swarm), timeout=90)


def under_load(lab: Lab) -> tuple[DeployRun, dict[str, object]]:
    load = LoadInNetns(lab.swarm, max_s=240)
    time.sleep(1)
    run = lab.deploy()
    time.sleep(2)
    return run, load.stop()


def a_first_deploy_creates_the_service_and_the_proxy_on_every_node(lab: Lab) -> None:
    run = lab.deploy()
    assert run.returncode == 0, run.stderr
    assert run.status["result"] == "deployed"
    found = [t for t in tasks(lab.swarm, lab.name) if t["Status"]["State"] == "running"]
    assert sorted(t["NodeName"] for t in found) == ["n2", "n3"]
    assert all("@sha256:" in image for image in lab.running_images())
    assert wait_for("v1 through every node's proxy", lambda: lab.answers() == ["v1"] * 3, timeout=30)


def check_infrastructure_on_a_swarm(lab: Lab) -> None:
    argv = step_argv("check_infrastructure", "--manifest", str(lab.bench.manifest))
    proc = subprocess.run(argv, env=lab.bench.env, capture_output=True, text=True, timeout=120, check=False)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = proc.stdout
    assert "✓ swarm manager — manager of an active swarm (1 manager(s), 3 node(s))" in rows
    assert "✓ swarm nodes — " in rows
    assert all(node in rows for node in ("n1 ready/active (manager)", "n2 ready/active", "n3 ready/active"))
    assert f"✓ network {lab.bench_network} — exists (attachable overlay)" in rows
    assert "✓ registry login — " in rows and "no credentials set" in rows
    assert "✓ proxy service shop_proxy — current; ports 8080 in host mode; running on n1, n2, n3" in rows


def deploying_the_same_commit_again_is_unchanged(lab: Lab) -> None:
    run = lab.deploy()
    assert (run.returncode, run.status["result"]) == (0, "unchanged"), run.stderr


def a_good_update_under_load_fails_no_request(lab: Lab) -> None:
    lab.repo.write_marker("v2")
    run, load = under_load(lab)
    print(f"good update: {load['failed']} failed / {load['ok'] + load['failed']} requests")  # type: ignore[operator]
    assert run.returncode == 0, run.stderr
    assert run.status["result"] == "deployed"
    assert load["failed"] == 0, load["failures"]
    assert set(load["bodies"]) == {"v1", "v2"}  # type: ignore[arg-type]
    assert lab.answers() == ["v2"] * 3


def status_and_plan_read_the_swarm(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", lab.swarm.manager_host)  # a local manager: this process's docker
    manifest = config_load.load(lab.bench.manifest)
    started = time.monotonic()
    document = status.gather(manifest, lab.bench.env)
    status_s = time.monotonic() - started
    (web,) = document["services"]
    found = (web["container"], web["state"], tuple(web["replicas"]), list(web["nodes"]))
    assert found == (lab.name, "running", (2, 2), ["n2", "n3"])
    # Its health probe asks 127.0.0.1:8080 of the manager, which this process is not inside in the lab.
    started = time.monotonic()
    planned = plan.assess(manifest, SERVICE, "main", False, event="workflow_dispatch",
                          repo_root=str(lab.bench.workdir), environ=lab.bench.env)  # fmt: skip
    plan_s = time.monotonic() - started
    print(f"status: {status_s:.2f} s, plan: {plan_s:.2f} s")
    (verdict,) = planned["services"]
    assert verdict["verdict"] == "unchanged", verdict


def a_version_that_never_gets_healthy_is_rolled_back_by_swarm(lab: Lab) -> None:
    lab.repo.commit_variant("broken_health")
    started = time.monotonic()
    run, load = under_load(lab)
    print(f"bad update: rolled back after {time.monotonic() - started:.1f} s (health deadline 15 s); "
          f"{load['failed']} failed / {load['ok'] + load['failed']} requests")  # type: ignore[operator]  # fmt: skip
    assert run.returncode == 1
    assert run.status["result"] == "rolled_back"
    assert "Swarm rolled the update back" in run.status["message"]
    # the task's own error, or (when Swarm already dropped it from its short history) what was seen of it
    message = run.status["message"]
    assert "unhealthy" in message or "healthcheck never passed" in message, message
    assert " on n" in message, message  # which task, and where
    assert load["failed"] == 0, load["failures"]
    assert set(load["bodies"]) == {"v2"}  # type: ignore[arg-type]
    assert lab.answers() == ["v2"] * 3


def no_env_value_is_printed_or_left_on_the_manager(lab: Lab) -> None:
    """The env-file and the stack file are removed right after `docker stack deploy` read them."""
    run = lab.deploy()  # the rolled-back commit again: Swarm rolls it back again
    assert TOKEN not in run.stdout + run.stderr
    leftovers = [p for folder in ("env", "stack") for p in (lab.bench.state_dir / folder).glob("*")]
    assert leftovers == []


def wfgen_rollback_goes_back_to_the_version_before_under_load(lab: Lab) -> None:
    load = LoadInNetns(lab.swarm, max_s=240)
    time.sleep(1)
    started = time.monotonic()
    argv = step_argv("rollback", "--manifest", str(lab.bench.manifest), "--service", SERVICE,
                     "--status-file", str(lab.bench.workdir / "rollback.json"))  # fmt: skip
    proc = subprocess.run(argv, env=lab.bench.env, capture_output=True, text=True, timeout=300, check=False)
    took = time.monotonic() - started
    time.sleep(2)
    result = load.stop()
    print(f"rollback: exit {proc.returncode} in {took:.1f} s; "
          f"{result['failed']} failed / {result['ok'] + result['failed']} requests")  # type: ignore[operator]  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = json.loads((lab.bench.workdir / "rollback.json").read_text())
    assert status["result"] == "deployed" and "rolled back to" in status["message"]
    assert result["failed"] == 0, result["failures"]
    assert lab.answers() == ["v1"] * 3


def a_worker_lost_mid_update_ends_the_deploy_within_its_bound(lab: Lab) -> None:
    """n3 dies while its task is being replaced: the deploy ends (deployed only when every desired task
    runs the new image, else failed naming the tasks and nodes) and the proxy on the other nodes answers."""
    lab.repo.commit_variant("ok")
    lab.repo.write_marker("v3")
    survivors = [node for node in lab.swarm.nodes if node.name != "n3"]
    load = LoadInNetns(lab.swarm, max_s=400, nodes=survivors)
    time.sleep(1)
    started = time.monotonic()
    proc = lab.bench.start()
    lab.bench.wait_for_phase("switch", timeout=120)
    time.sleep(2)
    lab.swarm.stop_node("n3")
    try:
        run = lab.bench.finish(proc, started, timeout=400)
        result = load.stop()
    finally:
        lab.swarm.start_node("n3")
    print(f"node lost: exit {run.returncode} in {run.seconds:.1f} s: {run.status.get('message')}; "
          f"{result['failed']} failed / {result['ok'] + result['failed']} requests")  # type: ignore[operator]  # fmt: skip
    assert run.seconds < 4 * 60  # deploy_timeout_minutes
    if run.status["result"] == "deployed":
        running = [t for t in tasks(lab.swarm, lab.name) if t["Status"]["State"] == "running"]
        assert len(running) == 2 and all(t["NodeName"] != "n3" for t in running)
    else:
        assert run.status["result"] == "failed" and "did not converge" in run.status["message"]
        assert " on n" in run.status["message"]


def test_the_swarm_engine_on_the_lab(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scenarios in order, as one test: each starts from what the one before left (a deploy, a rollback),
    so no test runner may split them between processes."""
    a_first_deploy_creates_the_service_and_the_proxy_on_every_node(lab)
    check_infrastructure_on_a_swarm(lab)
    deploying_the_same_commit_again_is_unchanged(lab)
    a_good_update_under_load_fails_no_request(lab)
    status_and_plan_read_the_swarm(lab, monkeypatch)
    a_version_that_never_gets_healthy_is_rolled_back_by_swarm(lab)
    no_env_value_is_printed_or_left_on_the_manager(lab)
    wfgen_rollback_goes_back_to_the_version_before_under_load(lab)
    a_worker_lost_mid_update_ends_the_deploy_within_its_bound(lab)

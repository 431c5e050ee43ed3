"""The rendered deploy workflow run by act (tests/support/act.py) against the swarm lab (tests/support/swarm.py).

A self-hosted runner on the manager: `manager = "local"`, the jobs' `DOCKER_HOST` the manager's socket, as on a
runner installed on a manager node. Two services behind the project proxy on every node, built on the runner
and pushed to the lab's registry: `api` (2 replicas, on the workers) and `notes` (1). Two dispatches as a user
would make them: the first deploy, then, under steady load on every node's port of both services (sent from
the lab's bridge namespace), an update where `api`'s new version goes live and `notes`' never gets healthy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from generator.manifest.validate import load_manifest
from generator.render.files import DEPLOY_WORKFLOW, render
from generator.render.output import write_files
from tests.support.act import Act, ActRun
from tests.support.fixture_service import ServiceRepo, git, init_repo, make_service_repo
from tests.support.github_api import shared_github
from tests.support.manifests import manifest_toml
from tests.support.reports import status_reports, summary_rows
from tests.support.swarm import WEB_PORT, Swarm
from tests.support.swarm_services import LoadInNetns, running, tasks_left, wait_for

pytestmark = pytest.mark.xdist_group("swarm")  # one worker forms the lab once per run: see test_swarm_deploy
STACK = "fleet"
PORTS = {"api": 8180, "notes": 8181}
DISPATCH = {"services": "all", "branch": "main", "force_rebuild": False}
HEALTH = {
    "interval_s": 1, "timeout_s": 2, "deadline_s": 15,
    "command": ["/bin/busybox", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{WEB_PORT}/health"],
}  # fmt: skip
JOBS_OK = {"prepare": "success", "check-infrastructure": "success", "deploy-service": "success",
           "deployment-summary": "success"}  # fmt: skip


@dataclass
class Lab:
    swarm: Swarm
    repos: dict[str, ServiceRepo]
    act: Act
    workflow: Path

    def dispatch_under_load(self) -> tuple[ActRun, dict[str, Any]]:
        load = LoadInNetns(self.swarm, max_s=400, ports=list(PORTS.values()))
        time.sleep(1)
        started = time.monotonic()
        run = self.act.dispatch(self.workflow, DISPATCH)
        print(f"act run: exit {run.returncode} in {time.monotonic() - started:.1f} s")
        time.sleep(2)
        return run, load.stop()

    def runs(self, status: dict[str, Any]) -> bool:
        """Every running task of the leg's service runs the digest the leg pushed (its status names the tag)."""
        found = self.swarm.docker("image", "inspect", "--format", "{{json .RepoDigests}}", status["image"])
        repo = status["image"].rsplit(":", 1)[0]
        (digest,) = [ref for ref in json.loads(found.stdout) if ref.startswith(f"{repo}@sha256:")]
        images = {
            t["Spec"]["ContainerSpec"]["Image"] for t in running(self.swarm, f"{STACK}_{status['service']}")
        }
        return images == {digest}

    def answers(self) -> dict[str, list[str]]:
        """Each service's /version through the proxy on every node, asked from inside each node."""
        return {
            name: [self.swarm.http_get(node, f"http://{node.address}:{port}/version")[1].strip()
                   for node in self.swarm.nodes]
            for name, port in PORTS.items()
        }  # fmt: skip


def manifest(swarm: Swarm, repos: dict[str, ServiceRepo], state_dir: Path) -> str:
    services = {
        name: {"repository": repo.url, "port": PORTS[name], "container_port": WEB_PORT, "health": HEALTH}
        for name, repo in repos.items()
    }
    services["api"].update(replicas=2, placement=["node.role == worker"])
    text = manifest_toml(
        services, project={"name": STACK, "branches": ["main"], "deploy_timeout_minutes": 4},
        target={"kind": "swarm", "manager": "local", "state_dir": str(state_dir)},
        proxy={"image": swarm.images["caddy"], "drain_s": 2},
    )  # fmt: skip
    return text + f'\n[build]\nwhere = "runner"\nregistry = "{swarm.registry}/wfgen"\n'


@pytest.fixture(scope="module")
def lab(swarm: Swarm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("swarm-act")
    repos = {name: make_service_repo(root / "repos", name, port=WEB_PORT) for name in PORTS}
    for name, repo in repos.items():
        repo.write_marker(f"{name} v1")
    deploy = root / "deploy"
    deploy.mkdir()
    (deploy / "services.toml").write_text(manifest(swarm, repos, root / "state"), encoding="utf-8")
    write_files(deploy, render(load_manifest(deploy / "services.toml"), source="services.toml"))
    init_repo(deploy, author="wfgen act")
    git(deploy, "add", "-A")
    git(deploy, "commit", "-q", "-m", "wfgen render")
    act = Act(deploy, root / "act", env={"DOCKER_HOST": swarm.manager_host}, timeout=600)
    yield Lab(swarm, repos, act, deploy / DEPLOY_WORKFLOW)
    swarm.docker("stack", "rm", STACK)
    # The other swarm tests come next on this worker: the stack's tasks gone, its ports free on every node.
    wait_for("the stack's tasks to go", lambda: not tasks_left(swarm), timeout=90)
    swarm.docker("network", "rm", f"{STACK}-network")


def statuses(run: ActRun) -> dict[str, dict[str, Any]]:
    return {status["service"]: status for status in status_reports(run.artifacts)}


def legs(run: ActRun) -> dict[str, str]:
    return {leg.matrix["service"]: leg.result for leg in run.legs("deploy-service")}


def the_first_dispatch_deploys_both_services_by_digest(lab: Lab) -> None:
    run = lab.act.dispatch(lab.workflow, DISPATCH)
    assert run.results() == JOBS_OK, run.report()
    checks = run.leg("check-infrastructure").summary
    assert "| ✓ | swarm manager | manager of an active swarm (1 manager(s), 3 node(s)) |" in checks, checks
    assert f"| ✓ | network {STACK}-network | created (attachable overlay) |" in checks, checks
    assert f"| ✓ | proxy service {STACK}_proxy | deployed; ports 8180, 8181 in host mode;" in checks, checks
    assert legs(run) == {"api": "success", "notes": "success"}, run.report()
    status = statuses(run)
    assert {name: s["result"] for name, s in status.items()} == {"api": "deployed", "notes": "deployed"}
    assert all(lab.runs(status[name]) for name in PORTS)
    assert len(running(lab.swarm, f"{STACK}_api")) == 2
    summary = run.leg("deployment-summary").summary
    assert summary_rows(summary) == {"api": "✅ deployed", "notes": "✅ deployed"}, summary
    expected = {name: [f"{name} v1"] * 3 for name in PORTS}
    assert wait_for("v1 through every node's proxy", lambda: lab.answers() == expected, timeout=30)


def under_load_a_good_update_deploys_and_a_never_healthy_one_is_rolled_back(lab: Lab) -> None:
    """api's new version goes live, notes' never gets healthy: its leg alone fails, and every node's proxy
    answered every request, notes with the old version throughout."""
    lab.repos["api"].write_marker("api v2")
    lab.repos["notes"].commit_variant("broken_health")
    github = shared_github()
    first, problems = len(github.deployments), len(github.problems)
    run, load = lab.dispatch_under_load()
    print(f"update under load: {load['failed']} failed / {load['ok'] + load['failed']} requests")
    assert run.results() == {**JOBS_OK, "deploy-service": "failure", "deployment-summary": "failure"}, (
        run.report()
    )
    assert legs(run) == {"api": "success", "notes": "failure"}, run.report()
    status = statuses(run)
    assert {name: s["result"] for name, s in status.items()} == {"api": "deployed", "notes": "rolled_back"}
    message = status["notes"]["message"]
    assert "Swarm rolled the update back" in message and " on n" in message, message
    # the task's own error, or (when Swarm already dropped it from its short history) what was seen of it
    assert "unhealthy" in message or "healthcheck never passed" in message, message
    assert lab.runs(status["api"])
    summary = run.leg("deployment-summary").summary
    assert summary_rows(summary) == {"api": "✅ deployed", "notes": "↩️ rolled back"}, summary
    recorded = {item["payload"]["service"]: github.states(item["id"]) for item in github.deployments[first:]}
    assert recorded == {"api": ["in_progress", "success"], "notes": ["in_progress", "failure"]}
    assert github.problems[problems:] == []
    assert load["failed"] == 0, load["failures"]
    assert set(load["bodies"]) == {"api v1", "api v2", "notes v1"}
    assert lab.answers() == {"api": ["api v2"] * 3, "notes": ["notes v1"] * 3}


def test_the_deploy_workflow_under_act_on_the_swarm(lab: Lab) -> None:
    """The dispatches in order, as one test: each starts from what the one before deployed."""
    the_first_dispatch_deploys_both_services_by_digest(lab)
    under_load_a_good_update_deploys_and_a_never_healthy_one_is_rolled_back(lab)

"""What a swarm does beyond one deploy, on the real 3-node lab (tests/support/swarm.py): release commands,
the proxy on labelled nodes (and status probing through it), and two environments on one swarm.

One service, one replica, short health timings; ports apart from the other swarm modules'. The
scenarios of a test run in order: each starts from what the one before left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from generator.manifest.resolve import resolve_manifest
from generator.manifest.validate import parse_manifest
from tests.support.deploys import DeployBench, DeployRun
from tests.support.fixture_service import ServiceRepo, git, make_service_repo
from tests.support.stepscripts import step_argv
from tests.support.swarm import WEB_PORT, Swarm
from tests.support.swarm_services import check, service, tasks, tasks_left, wait_for

# One worker forms the lab once per run; every swarm module runs there, one after the other.
pytestmark = pytest.mark.xdist_group("swarm")

SERVICE = "api"
STACK = "feat"
PORT = 8380  # the release and placement scenarios
ENV_PORT = 8480  # production's; staging's is one above
PORTS = (ENV_PORT, ENV_PORT + 1)
TOKEN = "feat-secret-41d2c7"
HEALTH = {
    "interval_s": 1, "timeout_s": 2, "deadline_s": 15,
    "command": ["/bin/busybox", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{WEB_PORT}/health"],
}  # fmt: skip
EDGE = "node.labels.edge == true"
RELEASE_OK = [
    "/bin/busybox", "sh", "-c",
    'echo "migrating with a token of ${#API_TOKEN} characters"; '
    "/bin/busybox nslookup tasks.feat_proxy >/dev/null && echo 'the overlay network answers'",
]  # fmt: skip
RELEASE_FAILS = ["/bin/busybox", "sh", "-c", "echo 'migration 0042 failed: table locked' >&2; exit 3"]


@dataclass
class Lab:
    swarm: Swarm
    repo: ServiceRepo
    bench: DeployBench

    def write(self, release: list[str]) -> None:
        self.bench.write(
            {SERVICE: {"repository": self.repo.url, "port": PORT, "container_port": WEB_PORT,
                       "env": ["API_TOKEN"], "release": release, "health": HEALTH}},
            project={"name": STACK, "deploy_timeout_minutes": 4},
            target={"kind": "swarm", "manager": "local"},
            proxy={"image": self.swarm.images["caddy"], "drain_s": 1, "placement": [EDGE]},
            build={"where": "runner", "registry": f"{self.swarm.registry}/wfgen"},
        )  # fmt: skip

    def deploy(self) -> DeployRun:
        run = self.bench.deploy()
        print(f"deploy: exit {run.returncode} in {run.seconds:.1f} s: {run.status.get('message')}")
        return run

    def answer(self, node: str, port: int = PORT) -> str:
        """/version through the proxy port of `node`, asked from inside the node ('' when none answers)."""
        address = self.swarm.node(node).address
        status, body = self.swarm.http_get(node, f"http://{address}:{port}/version")
        return body.strip() if status == 200 else ""


def remove_stacks(swarm: Swarm, *stacks: str) -> None:
    for stack in stacks:
        swarm.docker("stack", "rm", stack)
    wait_for("the stacks' tasks to go", lambda: not tasks_left(swarm), timeout=90)


@pytest.fixture(scope="module")
def lab(swarm: Swarm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("swarm-features")
    repo = make_service_repo(root / "repos", SERVICE, port=WEB_PORT)
    repo.write_marker("v1")
    env = {**os.environ, "DOCKER_HOST": swarm.manager_host, "API_TOKEN": TOKEN}
    check(swarm, "node", "update", "--label-add", "edge=true", "n2")
    yield Lab(swarm, repo, DeployBench(workdir=root, env=env, service=SERVICE))
    swarm.docker("node", "update", "--label-rm", "edge", "n2")
    remove_stacks(swarm, STACK, f"{STACK}-production", f"{STACK}-staging")


def a_release_command_runs_before_the_service_with_its_env_and_network(lab: Lab) -> None:
    lab.write(RELEASE_OK)
    run = lab.deploy()
    assert (run.returncode, run.status["result"]) == (0, "deployed"), run.stdout + run.stderr
    assert "release" in run.phases and run.phases.index("release") < run.phases.index("switch")
    assert f"migrating with a token of {len(TOKEN)} characters" in run.stdout
    assert "the overlay network answers" in run.stdout
    assert TOKEN not in run.stdout + run.stderr
    left = check(lab.swarm, "ps", "-aq", "--filter", "label=wfgen.role=release")
    assert left.split() == []  # the one-off container is gone


def the_proxy_runs_only_on_the_labelled_node(lab: Lab) -> None:
    running = [t["NodeName"] for t in tasks(lab.swarm, f"{STACK}_proxy") if t["Status"]["State"] == "running"]
    assert running == ["n2"]
    assert wait_for("v1 through n2's proxy", lambda: lab.answer("n2") == "v1", timeout=30)
    assert lab.answer("n1") == lab.answer("n3") == ""  # no proxy there: the load balancer points at n2
    argv = step_argv("check_infrastructure", "--manifest", str(lab.bench.manifest))
    proc = subprocess.run(argv, env=lab.bench.env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = f"✓ proxy service {STACK}_proxy — current; ports {PORT} in host mode; running on n2 (the nodes where {EDGE})"
    assert row in proc.stdout, proc.stdout
    # status, run from inside the manager (n1, no proxy there), probes through the node whose proxy runs
    (api,) = status_from_the_manager(lab)["services"]
    assert (api["serving"], api["health"]["ok"]) == (True, True), api


def status_from_the_manager(lab: Lab) -> dict[str, Any]:
    code = (
        "import json, os, sys\n"
        "from generator.steps import status\n"
        "from generator.steps.core import config_load\n"
        "print(json.dumps(status.gather(config_load.load(sys.argv[1]), os.environ)))\n"
    )
    argv = [
        "env",
        f"DOCKER_HOST={lab.swarm.manager_host}",
        sys.executable,
        "-c",
        code,
        str(lab.bench.manifest),
    ]
    proc = lab.swarm.exec_in("n1", argv, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def a_failing_release_command_fails_the_leg_and_updates_nothing(lab: Lab) -> None:
    before = service(lab.swarm, f"{STACK}_{SERVICE}")
    lab.repo.write_marker("v2")
    lab.write(RELEASE_FAILS)
    run = lab.deploy()
    assert (run.returncode, run.status["result"]) == (1, "failed")
    message = "release command exited with 3 (last output: migration 0042 failed: table locked)"
    assert run.status["message"] == f"{message}; running container untouched"
    assert run.status["phase"] == "release"
    assert len([line for line in run.stderr.splitlines() if message in line]) == 1, run.stderr
    after = service(lab.swarm, f"{STACK}_{SERVICE}")
    assert after["Version"] == before["Version"]  # Swarm was not asked for anything
    assert lab.answer("n2") == "v1"


def test_release_commands_and_the_proxy_on_labelled_nodes(lab: Lab) -> None:
    a_release_command_runs_before_the_service_with_its_env_and_network(lab)
    the_proxy_runs_only_on_the_labelled_node(lab)
    a_failing_release_command_fails_the_leg_and_updates_nothing(lab)


ENVIRONMENTS = """\
[project]
name = "{stack}"
deploy_timeout_minutes = 4

[target]
kind = "swarm"
manager = "local"
state_dir = "{state}"

[build]
where = "runner"
registry = "{registry}/wfgen"

[proxy]
image = "{caddy}"
drain_s = 1

[environments.production]
branches = ["main"]

[environments.staging]
branches = ["develop"]
port_offset = 1

[services.{service}]
repository = "{url}"
port = {port}
container_port = {container_port}
health = {{ interval_s = 1, timeout_s = 2, deadline_s = 15, command = {command} }}
"""


def deploy_environment(lab: Lab, text: str, environment: str, branch: str) -> DeployRun:
    resolved = resolve_manifest(parse_manifest(text), environment=environment)
    workdir = lab.bench.workdir / environment
    workdir.mkdir(exist_ok=True)
    manifest = workdir / "manifest.json"
    manifest.write_text(json.dumps(resolved, indent=2) + "\n", encoding="utf-8")
    status = workdir / "status.json"
    argv = step_argv("deploy_service", "--manifest", str(manifest), "--service", SERVICE, "--branch", branch,
                     "--status-file", str(status))  # fmt: skip
    proc = subprocess.run(argv, env=lab.bench.env, capture_output=True, text=True, timeout=300, check=False)
    data = json.loads(status.read_text()) if status.exists() else {}
    print(f"{environment}: exit {proc.returncode}: {data.get('message')}")
    return DeployRun(proc.returncode, proc.stdout, proc.stderr, 0.0, data)


def resolves(lab: Lab, network: str, image: str, name: str) -> bool:
    """Whether `name` resolves for a container on `network` (a one-off on the manager)."""
    argv = ["run", "--rm", "--network", network, image, "/bin/busybox", "nslookup", name]
    return lab.swarm.docker(*argv, timeout=120).returncode == 0


def test_two_environments_on_one_swarm_have_their_own_names_ports_and_network(
    lab: Lab, tmp_path: Path
) -> None:
    main_marker = (lab.repo.path / "www" / "version").read_text().strip()
    git(lab.repo.path, "checkout", "-q", "-b", "develop")
    lab.repo.write_marker("staging")
    git(lab.repo.path, "checkout", "-q", "main")
    text = ENVIRONMENTS.format(
        stack=STACK, state=tmp_path / "state", registry=lab.swarm.registry, caddy=lab.swarm.images["caddy"],
        service=SERVICE, url=lab.repo.url, port=ENV_PORT, container_port=WEB_PORT,
        command=json.dumps(HEALTH["command"]),
    )  # fmt: skip
    for environment, branch in (("production", "main"), ("staging", "develop")):
        run = deploy_environment(lab, text, environment, branch)
        assert (run.returncode, run.status.get("result")) == (0, "deployed"), run.stdout + run.stderr
    production, staging = (
        service(lab.swarm, f"{STACK}-{env}_{SERVICE}") for env in ("production", "staging")
    )
    networks = [s["Spec"]["TaskTemplate"]["Networks"][0]["Target"] for s in (production, staging)]
    names = [check(lab.swarm, "network", "inspect", "--format", "{{.Name}}", n).strip() for n in networks]
    assert names == [f"{STACK}-production-network", f"{STACK}-staging-network"]
    answers = [main_marker, "staging"]  # each environment's own proxy port, on any node
    assert wait_for(
        "each environment's proxy", lambda: [lab.answer("n1", p) for p in PORTS] == answers, timeout=30
    )
    image = production["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert resolves(lab, names[1], image, f"tasks.{STACK}-staging_{SERVICE}")
    assert not resolves(lab, names[1], image, f"tasks.{STACK}-production_{SERVICE}")

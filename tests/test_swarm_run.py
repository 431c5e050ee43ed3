"""`wfgen deploy`, `status` and `plan` on the real 3-node swarm lab (tests/support/swarm.py), the CLI typed as a
user would, in a git repository with a services.toml of `kind = "swarm"`:

- `manager = "local"`: the user is on the manager host (the CLI runs in the manager's network namespace) and
  its docker CLI reaches the manager's engine through DOCKER_HOST;
- `manager = "ssh"`: a CI runner on the nodes' network (the lab's bridge namespace) reaches the manager over a
  real sshd that runs in the manager's namespace, whose sessions' docker CLI talks to the manager's engine.

These share the lab with tests/test_swarm_deploy.py and tests/test_swarm_lab.py, on one worker.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fixture_service import git
from tests.support.sshd import SshServer, force_setup, start_sshd
from tests.support.swarm import Swarm
from tests.support.swarm_project import SwarmProject, make_project

pytestmark = pytest.mark.xdist_group("swarm")
TOKEN = "swarm-run-token-5e1d0b"
LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] \S+ [\w.-]+: \S.*$")
SSH_PORT = 2222  # in the manager's namespace, where nothing else listens on it


@pytest.fixture
def local_project(swarm: Swarm, tmp_path: Path) -> Iterator[SwarmProject]:
    services = {"api": {"port": 8091, "replicas": 2, "env": ["API_TOKEN"]}, "web": {"port": 8092}}
    project = make_project(
        swarm, tmp_path / "shop", "shoplocal", services, target={"manager": "local"},
        netns=swarm.manager.netns, env={"DOCKER_HOST": swarm.manager_host, "API_TOKEN": TOKEN},
    )  # fmt: skip
    yield project
    project.remove()


def test_wfgen_deploy_all_on_a_local_manager(local_project: SwarmProject) -> None:
    project = local_project
    started = time.monotonic()
    first = project.wfgen("deploy", "all", "main")
    first_s = time.monotonic() - started
    assert first.returncode == 0, first.stdout + first.stderr
    for line in first.stdout.splitlines():
        assert LINE.match(line), f"not a progress line: {line!r}"
    out = first.stdout
    assert "✓ swarm manager — manager of an active swarm (1 manager(s), 3 node(s))" in out
    assert "✓ proxy service shoplocal_proxy — deployed; ports 8091, 8092 in host mode" in out
    assert re.search(r"✅ api: deployed [0-9a-f]{7} in \d+ s", out)
    assert re.search(r"✅ web: deployed [0-9a-f]{7} in \d+ s", out)
    assert "📋 summary: ✅ 2/2 services deployed" in out and "Parallel speedup: " in out
    run = json.loads((project.root / ".wfgen" / "runs" / "latest" / "run.json").read_text())
    legs = {name: json.loads(Path(item["status_path"]).read_text()) for name, item in run["services"].items()}
    assert {name: leg["result"] for name, leg in legs.items()} == {"api": "deployed", "web": "deployed"}
    assert legs["web"]["started_at"] < legs["api"]["finished_at"]  # in parallel, not one after the other
    assert legs["api"]["started_at"] < legs["web"]["finished_at"]
    api_log = Path(run["services"]["api"]["log_path"]).read_text()
    assert "updating the Swarm service shoplocal_api to " in api_log and "@sha256:" in api_log
    assert re.search(r"api: 2/2 task\(s\) run the new image on n\d, n\d after", api_log), api_log
    assert "1/1 task(s) run the new image on n" in Path(run["services"]["web"]["log_path"]).read_text()
    assert project.answers("api") == ["api v1"] * 3 and project.answers("web") == ["web v1"] * 3
    assert git(project.root, "status", "--porcelain") == ""  # the run folder stays out of the user's repo

    started = time.monotonic()
    again = project.wfgen("deploy", "all", "main")
    again_s = time.monotonic() - started
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(r"♻️ api: unchanged [0-9a-f]{7}", again.stdout)
    assert re.search(r"♻️ web: unchanged [0-9a-f]{7}", again.stdout)
    assert "📋 summary: ✅ 2/2 services deployed (2 unchanged)" in again.stdout

    shown = project.wfgen("status")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "Status on the swarm manager at local Docker" in shown.stdout
    assert re.search(r"api +running 2/2 on n\d, n\d +[0-9a-f]{7} .+@sha256:\w+ +20\d\d-", shown.stdout)
    assert re.search(r"web +running 1/1 on n\d +[0-9a-f]{7} .+ ✅ HTTP 200 on /health", shown.stdout)
    assert re.search(r"api:[0-9a-f]{12} +built .+ ← running", shown.stdout), shown.stdout
    assert "✅ 2/2 services serving" in shown.stdout

    project.commit("web", "web v2")
    planned = project.wfgen("plan", "all", "main", "--json")
    assert planned.returncode == 0, planned.stderr
    verdicts = {item["service"]: item["verdict"] for item in json.loads(planned.stdout)["services"]}
    assert verdicts == {"api": "unchanged", "web": "deploy"}
    assert TOKEN not in "".join(p.stdout + p.stderr for p in (first, again, shown, planned))
    assert project.left_on_disk() == []
    print(f"local manager: first deploy {first_s:.1f} s, unchanged {again_s:.1f} s")


@pytest.fixture
def manager_sshd(swarm: Swarm, tmp_path: Path) -> Iterator[SshServer]:
    """A real sshd on the manager (in its namespace, on its address), reached from the lab's bridge. Its
    sessions' docker CLI reaches the manager's engine (DOCKER_HOST stands in for the default socket), and
    every command line a session runs is recorded in commands.log."""
    server = start_sshd(
        tmp_path / "sshd", docker_host=swarm.manager_host, netns=(swarm.manager.netns, swarm.bridge_netns),
        host=swarm.manager.address, port=SSH_PORT,
    )  # fmt: skip
    force_setup(server, f"echo $SSH_ORIGINAL_COMMAND >> {server.workdir / 'commands.log'}")
    yield server
    server.stop()


@pytest.fixture
def ssh_project(swarm: Swarm, tmp_path: Path, manager_sshd: SshServer) -> Iterator[SwarmProject]:
    # The runner's own engine builds and pushes: a worker's, so the manager gets the image from the registry.
    runner_engine = swarm.workers[-1].docker_host
    project = make_project(
        swarm, tmp_path / "shop", "shopssh", {"web": {"port": 8093, "env": ["API_TOKEN"]}},
        target={"manager": "ssh", **manager_sshd.target_config(), "kind": "swarm"}, netns=swarm.bridge_netns,
        env={"DOCKER_HOST": runner_engine, "API_TOKEN": TOKEN, **manager_sshd.target_env()},
    )  # fmt: skip
    yield project
    project.remove()


def test_wfgen_deploy_through_a_manager_over_ssh(ssh_project: SwarmProject, manager_sshd: SshServer) -> None:
    project = ssh_project
    started = time.monotonic()
    done = project.wfgen("deploy", "web", "main")
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "infrastructure: checking $VPS_USER@$VPS_HOST:2222" in out
    for row in ("✓ target reachable — $VPS_USER@$VPS_HOST:2222",
                "✓ swarm manager — manager of an active swarm (1 manager(s), 3 node(s))",
                "✓ swarm nodes — n1 ready/active (manager), n2 ready/active, n3 ready/active",
                "✓ network shopssh-net — created (attachable overlay)",
                "✓ proxy service shopssh_proxy — deployed; ports 8093 in host mode"):  # fmt: skip
        assert row in out, out
    assert re.search(r"✅ web: deployed [0-9a-f]{7} in \d+ s", out)
    assert project.answers("web") == ["web v1"] * 3
    log = (project.root / ".wfgen" / "runs" / "latest" / "web.log").read_text()
    assert "on the target" in log and "1/1 task(s) run the new image on n" in log

    shown = project.wfgen("status")  # its health probe runs on the manager, through its sshd
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert re.search(r"web +running 1/1 on n\d .+ ✅ HTTP 200 on /health", shown.stdout)
    # The env value went to the manager on stdin, into a 0600 file removed right after `docker stack deploy`:
    # in no command line the manager ran, no output, and no file left.
    commands = (manager_sshd.workdir / "commands.log").read_text()
    assert "docker stack deploy --with-registry-auth" in commands
    assert TOKEN not in commands
    assert TOKEN not in done.stdout + done.stderr + shown.stdout + log
    assert project.left_on_disk() == []
    print(f"ssh manager: deploy {took:.1f} s")

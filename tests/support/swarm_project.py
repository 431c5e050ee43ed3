"""A user's project for the swarm lab (tests/support/swarm.py): a real git repository with services.toml and
one folder per service, deployed with the `wfgen` CLI as a user runs it, from a chosen machine of the lab.

Where the CLI runs is a network namespace: the manager's (a user on the manager host, `manager = "local"`), or
the lab's bridge (a CI runner on the nodes' network, reaching the manager over ssh). Its docker CLI talks to
a lab daemon through that daemon's socket (`DOCKER_HOST`), as a user's would through the default one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.fixture_service import BUSYBOX, git
from tests.support.manifests import toml_table
from tests.support.swarm import WEB_PORT, Swarm
from tests.support.swarm_services import tasks_left, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
# A shell and wget from busybox: the default health check (wget or curl through /bin/sh) works as in a
# typical image, with no health.command.
DOCKERFILE = f"""\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
EXPOSE {WEB_PORT}
CMD ["httpd", "-f", "-p", "{WEB_PORT}", "-h", "/www"]
"""
HEALTH = {"interval_s": 1, "timeout_s": 2, "deadline_s": 20}


@dataclass
class SwarmProject:
    swarm: Swarm
    root: Path
    name: str
    netns: str  # where the CLI runs
    env: dict[str, str]  # what the user's shell holds: DOCKER_HOST, secrets, ssh target variables
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.root.parent / f"{self.name}-state"

    def wfgen(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`wfgen ARGS` in the project folder, inside `netns`, stdout a pipe (one line per change)."""
        path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        argv = ["ip", "netns", "exec", self.netns, sys.executable, "-m", "generator", *args]
        proc = subprocess.run(
            argv, cwd=self.root, env={**os.environ, "PYTHONPATH": path, **self.env}, capture_output=True,
            text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        print(f"$ wfgen {' '.join(args)}  (exit {proc.returncode})\n{proc.stdout}{proc.stderr}")
        return proc

    def answers(self, service: str) -> list[str]:
        """/version of `service` through the proxy on every node, asked from inside each node."""
        port = self.ports[service]
        return [
            self.swarm.http_get(node, f"http://{node.address}:{port}/version")[1].strip()
            for node in self.swarm.nodes
        ]

    def commit(self, service: str, marker: str) -> None:
        (self.root / service / "www" / "version").write_text(f"{marker}\n")
        git(self.root, "commit", "-q", "-am", f"{service}: {marker}")

    def left_on_disk(self) -> list[Path]:
        """Env-files and stack files still in the state folder."""
        return [path for folder in ("env", "stack") for path in (self.state_dir / folder).glob("*")]

    def remove(self) -> None:
        """The stack and its network, waiting until no task is left on any node (ports free again)."""
        self.swarm.docker("stack", "rm", self.name)
        wait_for("the stack's tasks to go", lambda: not tasks_left(self.swarm), timeout=90)
        network = f"{self.name}-net"
        wait_for(f"{network} removed", lambda: self._network_gone(network), timeout=30, every=1)

    def _network_gone(self, network: str) -> bool:
        proc = self.swarm.docker("network", "rm", network)
        return proc.returncode == 0 or "not found" in proc.stderr


def make_project(
    swarm: Swarm,
    root: Path,
    name: str,
    services: Mapping[str, Mapping[str, Any]],
    *,
    target: Mapping[str, Any],
    netns: str,
    env: Mapping[str, str],
) -> SwarmProject:
    """services: {name: keys of services.<name> (port and replicas, ...)}; each gets a folder with a
    Dockerfile serving /version ("<name> v1") and /health, and `path` pointing at it."""
    root.mkdir(parents=True)
    project = SwarmProject(swarm, root, name, netns, dict(env))
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    sections = [
        toml_table("project", {"name": name, "branches": ["main"], "deploy_timeout_minutes": 4}),
        toml_table("target", {"kind": "swarm", "network": f"{name}-net",
                              "state_dir": str(project.state_dir), **target}),
        toml_table("build", {"where": "runner", "registry": f"{swarm.registry}/{name}"}),
        toml_table("proxy", {"image": swarm.images["caddy"], "drain_s": 1}),
    ]  # fmt: skip
    for service, keys in services.items():
        folder = root / service
        (folder / "www").mkdir(parents=True)
        shutil.copy2(BUSYBOX, folder / "busybox")
        (folder / "Dockerfile").write_text(DOCKERFILE)
        (folder / "www" / "version").write_text(f"{service} v1\n")
        (folder / "www" / "health").write_text("ok\n")
        table = {"path": service, "container_port": WEB_PORT, "health": HEALTH, **keys}
        sections.append(toml_table(f"services.{service}", table))
        project.ports[service] = int(keys["port"])
    (root / "services.toml").write_text("\n\n".join("\n".join(s) for s in sections) + "\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "two services on a swarm")
    return project

"""A fleet of real fixture services behind one services.toml, for `wfgen deploy` tests and the benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.docker import docker
from tests.support.fixture_service import ServiceRepo, make_service_repo
from tests.support.manifests import TEST_PROXY, toml_table
from tests.support.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINER_PORT = 3000
# Every fleet service's health settings: fast probes, so a deploy waits for the app's boot, not the interval.
FLEET_HEALTH = {"interval_s": 0.25, "timeout_s": 2.0, "deadline_s": 20.0}
FIXTURE_KEYS = ("variant", "delay_s", "build_s")  # of the fixture service; other keys go to services.toml


@dataclass
class Fleet:
    """services.toml in `root`, a git repo per service, a private network and state dir on the engine."""

    root: Path
    project: str
    docker_host: str
    repos: dict[str, ServiceRepo] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # more keys of services.<name>

    @property
    def manifest(self) -> Path:
        return self.root / "services.toml"

    @property
    def network(self) -> str:
        return f"{self.project}-net"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"  # short: the proxy's admin socket lives in it

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for `wfgen deploy`: this checkout importable, the test engine as DOCKER_HOST."""
        path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        return {**os.environ, "DOCKER_HOST": self.docker_host, "PYTHONPATH": path, **extra}

    def wfgen(self, *args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess[str]:
        """`wfgen ARGS` as a real subprocess in the fleet folder (stdout is a pipe: not a terminal)."""
        return subprocess.run(
            [sys.executable, "-m", "generator", *args],
            cwd=self.root, env=self.env(**extra), capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def health(self, service: str, path: str = "/health", timeout: float = 2.0) -> int | None:
        """HTTP status of the service on its host port, or None when nothing answers."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.ports[service]}{path}", timeout=timeout
            ) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return None

    def last_run(self) -> dict[str, Any]:
        latest = self.root / ".wfgen" / "runs" / "latest"
        return json.loads((latest.resolve() / "run.json").read_text(encoding="utf-8"))


def write_manifest(
    fleet: Fleet, *, max_parallel: int, project: Mapping[str, Any] | None = None, proxied: bool = True
) -> None:
    sections = [
        toml_table("project", {"name": fleet.project, "branches": ["main", "develop"],
                               "max_parallel": max_parallel, "lock_wait_s": 30, **(project or {})}),
        toml_table("target", {"kind": "local", "network": fleet.network, "state_dir": str(fleet.state_dir)}),
        toml_table("infrastructure", {"networks": [fleet.network]}),
        toml_table("proxy", TEST_PROXY),
    ]  # fmt: skip
    for name, repo in fleet.repos.items():
        service = {"repository": repo.url, "port": fleet.ports[name], "container_port": CONTAINER_PORT}
        service["proxy"] = proxied
        settings = fleet.settings.get(name, {})
        service.update({key: value for key, value in settings.items() if key != "health"})
        service["health"] = {**FLEET_HEALTH, **settings.get("health", {})}
        sections.append(toml_table(f"services.{name}", service))
    fleet.manifest.write_text("\n\n".join("\n".join(s) for s in sections) + "\n", encoding="utf-8")


def make_fleet(
    root: Path,
    project: str,
    docker_host: str,
    services: Mapping[str, Mapping[str, Any]],
    *,
    max_parallel: int = 6,
    project_settings: Mapping[str, Any] | None = None,
    create_network: bool = True,
    proxied: bool = True,
) -> Fleet:
    """services: {name: spec}; a spec holds the fixture's "variant", "delay_s" and "build_s", and other keys
    of services.<name> ("depends_on"; "health" is merged into the fleet's fast health settings). Every
    service gets a free host port."""
    root.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(root=root, project=project, docker_host=docker_host)
    for name, spec in services.items():
        fleet.repos[name] = make_service_repo(
            root / "repos", name, variant=spec.get("variant", "ok"), port=CONTAINER_PORT,
            delay_s=float(spec.get("delay_s", 0.0)), build_s=float(spec.get("build_s", 0.0)),
        )  # fmt: skip
        fleet.ports[name] = free_port()
        fleet.settings[name] = {key: value for key, value in spec.items() if key not in FIXTURE_KEYS}
    write_manifest(fleet, max_parallel=max_parallel, project=project_settings, proxied=proxied)
    if create_network:
        docker(docker_host, "network", "create", fleet.network, timeout=60, check=True)
    return fleet


def max_overlap(statuses: list[dict[str, Any]]) -> int:
    """Most legs whose [started_at, finished_at] overlap at one instant (ends sort before starts)."""
    edges: list[tuple[str, int]] = []
    for status in statuses:
        edges += [(status["started_at"], 1), (status["finished_at"], -1)]
    current = peak = 0
    for _, delta in sorted(edges):
        current += delta
        peak = max(peak, current)
    return peak


def wait_until(predicate: Any, timeout: float, interval: float = 0.2) -> bool:
    """Poll `predicate()` until it is truthy or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())

"""The speed-up this machine allows a deploy of N services: legs that do only the Docker work no deploy tool
can skip, sequential against parallel. `parallel_deploy.py` runs it beside wfgen, on the same fleet.

A floor leg, in a thread of this process (no interpreter to start, no lock, no git, no status file): build
the service's image (from cache, as a forced rebuild of unchanged code is), start the new container on the
fleet's network with its port published, probe its health at the manifest's interval, rename it into
place, drain, stop and remove the old one. Everything runs on the same engine and with the same builder as
wfgen's legs, so what parallel deploys lose here to the machine (cores, the engine's own work per
container) is lost by any tool.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from generator.steps.core.transport import LocalTarget
from generator.steps.engine.builds import Builder, builder
from tests.support.docker import docker_env
from tests.support.fleet import CONTAINER_PORT, Fleet

HEALTH_INTERVAL_S = 0.25  # the fleet manifest's health.interval_s
HEALTH_DEADLINE_S = 20.0
DRAIN_S = 0.5  # the tests' proxy drain_s
TIMEOUT_S = 120


def busy_seconds() -> float:
    """CPU-seconds this machine has spent busy since boot, all cores (Linux's /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()[1:]
    except OSError:
        return float("nan")
    ticks = [int(value) for value in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class _Engine(LocalTarget):
    """This machine's docker CLI, talking to the fleet's engine: what wfgen's builder probe asks."""

    def __init__(self, env: dict[str, str]):
        self.env = env

    def _command(
        self, argv: list[str], env: dict[str, str] | None
    ) -> tuple[list[str], dict[str, str] | None]:
        return list(argv), {**self.env, **(env or {})}


class FloorFleet:
    """Floor legs for the services of `fleet`; containers and images are named after its project."""

    def __init__(self, fleet: Fleet):
        self.fleet = fleet
        self.env = docker_env(fleet.docker_host)
        with _Engine(self.env) as engine:
            self.builder = builder(engine)

    def docker(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["docker", *args], env={**self.env, **(env or {})}, capture_output=True, text=True,
            timeout=TIMEOUT_S, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"docker {args[0]} exited {done.returncode}: {done.stderr.strip()[-500:]}")
        return done.stdout.strip()

    def build(self, service: str, image: str) -> None:
        context = str(self.fleet.repos[service].path)
        if self.builder is Builder.BUILDX:
            self.docker("buildx", "build", "--load", "-q", "-t", image, context)
        else:
            buildkit = "1" if self.builder is Builder.BUILDKIT else "0"
            self.docker("build", "-q", "-t", image, context, env={"DOCKER_BUILDKIT": buildkit})

    def leg(self, service: str) -> float:
        """One floor leg; its seconds."""
        started = time.monotonic()
        name = f"{self.fleet.project}-floor-{service}"
        image = f"{self.fleet.project}-floor/{service}:current"
        self.build(service, image)
        self.docker(
            "run", "-d", "--init", "--name", f"{name}-next", "--network", self.fleet.network,
            "-p", f"127.0.0.1::{CONTAINER_PORT}", image,
        )  # fmt: skip
        port = self.docker("port", f"{name}-next", f"{CONTAINER_PORT}/tcp").splitlines()[0].rsplit(":", 1)[1]
        wait_healthy(f"http://127.0.0.1:{port}/health")
        had_old = subprocess.run(
            ["docker", "rename", name, f"{name}-old"], env=self.env, capture_output=True, timeout=TIMEOUT_S,
            check=False,
        ).returncode == 0  # fmt: skip
        self.docker("rename", f"{name}-next", name)
        if had_old:
            time.sleep(DRAIN_S)
            self.docker("stop", "-t", "10", f"{name}-old")
            self.docker("rm", f"{name}-old")
        return time.monotonic() - started

    def deploy(self, parallel: bool) -> dict[str, float]:
        """Every service's floor leg, one after another or all at once; figures shaped like wfgen's."""
        services = list(self.fleet.repos)
        cpu, started = busy_seconds(), time.monotonic()
        with ThreadPoolExecutor(max_workers=len(services) if parallel else 1) as pool:
            legs = list(pool.map(self.leg, services))
        wall = time.monotonic() - started
        count = len(services)
        return {
            "wall": wall, "total": wall, "sum": sum(legs), "slowest": max(legs),
            "overhead": (wall - max(legs)) / count, "cpu": (busy_seconds() - cpu) / count,
        }  # fmt: skip


def wait_healthy(url: str) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + HEALTH_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            with opener.open(url, timeout=2.0) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(HEALTH_INTERVAL_S)
    raise RuntimeError(f"{url} not healthy after {HEALTH_DEADLINE_S:g} s")

"""The speed-up this machine allows a deploy of N services: legs that do only the Docker work of a container
swap, sequential against parallel. `parallel_deploy.py` runs them beside wfgen, on the same fleet.

A floor leg, in a thread of this process: build the service's image (from cache, as a forced rebuild of
unchanged code is), start the new container on the fleet's network with its port published, probe its
health as wfgen does and at the manifest's interval, rename it into place, drain, stop and remove the old
one. It skips what wfgen's legs also do (start an interpreter, take the lock, fetch the commit, check the
name after the switch, write status files), so its ratio is a generous ceiling: what parallel legs lose
here (cores, the engine's own work per container) any tool loses.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from benchmarks.machine_cpu import CpuWatch
from generator.steps.core import config
from generator.steps.core.transport import CommandResult, LocalTarget
from generator.steps.engine.builds import Builder, builder
from generator.steps.engine.cutover import wait_healthy
from tests.support.docker import docker_env
from tests.support.fleet import CONTAINER_PORT, FLEET_HEALTH, Fleet
from tests.support.manifests import TEST_PROXY

HEALTH = config.Health(path="/health", start_grace_s=0.0, **FLEET_HEALTH)
TIMEOUT_S = 120


def failure(service: str, command: str, result: CommandResult) -> RuntimeError:
    detail = result.stderr.strip()[-500:]
    return RuntimeError(f"{service}: docker {command} exited {result.returncode}: {detail}")


class Engine(LocalTarget):
    """This machine's docker CLI, talking to the fleet's engine: what wfgen's builder probe and health
    probes run on."""

    def __init__(self, env: dict[str, str]):
        self.env = env

    def _command(
        self, argv: list[str], env: dict[str, str] | None
    ) -> tuple[list[str], dict[str, str] | None]:
        return list(argv), {**self.env, **(env or {})}


class FloorFleet:
    """Floor legs for the services of `fleet`; containers and images are named after its project, so the
    fleet's clean-up removes them."""

    def __init__(self, fleet: Fleet):
        self.fleet = fleet
        self.engine = Engine(docker_env(fleet.docker_host))
        self.builder = builder(self.engine)

    def docker(self, service: str, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
        """stdout of `docker args`; a failure names the service and the command when `check`."""
        result = self.engine.run(["docker", *args], timeout=TIMEOUT_S, env=env)
        if check and not result.ok:
            raise failure(service, args[0], result)
        return result.stdout.strip()

    def build(self, service: str, image: str) -> None:
        """The service's image with the builder wfgen picks on this engine."""
        context = str(self.fleet.repos[service].path)
        if self.builder is Builder.BUILDX:
            self.docker(service, "buildx", "build", "--load", "-q", "-t", image, context)
        else:
            buildkit = "1" if self.builder is Builder.BUILDKIT else "0"
            self.docker(service, "build", "-q", "-t", image, context, env={"DOCKER_BUILDKIT": buildkit})

    def leg(self, service: str) -> float:
        """One floor leg; its seconds. Like wfgen's, it first removes what a failed run may have left."""
        started = time.monotonic()
        name = f"{self.fleet.project}-floor-{service}"
        image = f"{self.fleet.project}-floor/{service}:current"
        self.build(service, image)
        self.docker(service, "rm", "-f", f"{name}-next", check=False)
        self.docker(
            service, "run", "-d", "--init", "--name", f"{name}-next", "--network", self.fleet.network,
            "-p", f"127.0.0.1::{CONTAINER_PORT}", image,
        )  # fmt: skip
        shown = self.docker(service, "port", f"{name}-next", f"{CONTAINER_PORT}/tcp")
        port = shown.splitlines()[0].rsplit(":", 1)[-1] if shown else ""
        if not port.isdigit():
            raise RuntimeError(f"{service}: docker port showed {shown!r}")
        wait_healthy(self.engine, f"http://127.0.0.1:{port}{HEALTH.path}", HEALTH)
        if self.swap(service, name):
            time.sleep(float(TEST_PROXY["drain_s"]))
            self.docker(service, "stop", "-t", "10", f"{name}-old")
            self.docker(service, "rm", f"{name}-old")
        return time.monotonic() - started

    def swap(self, service: str, name: str) -> bool:
        """Rename the candidate into place; whether a container held the name before."""
        self.docker(service, "rm", "-f", f"{name}-old", check=False)
        moved = self.engine.run(["docker", "rename", name, f"{name}-old"], timeout=TIMEOUT_S)
        if not moved.ok and "no such container" not in moved.stderr.lower():
            raise failure(service, "rename", moved)
        self.docker(service, "rename", f"{name}-next", name)
        return moved.ok

    def deploy(self, parallel: bool) -> dict[str, float]:
        """Every service's floor leg, one after another or all at once; figures shaped like wfgen's."""
        services = list(self.fleet.repos)
        started = time.monotonic()
        with CpuWatch() as cpu, ThreadPoolExecutor(max_workers=len(services) if parallel else 1) as pool:
            legs = list(pool.map(self.leg, services))
        wall = time.monotonic() - started
        count = len(services)
        return {
            "wall": wall, "total": wall, "sum": sum(legs), "slowest": max(legs),
            "overhead": (wall - max(legs)) / count, "cpu": cpu.busy_s / count, "saturated": cpu.saturated_s,
        }  # fmt: skip

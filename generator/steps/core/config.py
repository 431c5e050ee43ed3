"""The resolved manifest (docs/design.md) as one typed, read-only view: frozen dataclasses, one per table,
with no defaults. `config_load.load()` reads the file, validates it once and fills them.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from . import steplib
from .names import did_you_mean


@dataclass(frozen=True)
class Project:
    name: str
    branches: tuple[str, ...]
    max_parallel: int
    runs_on: str
    keep_images: int
    lock_wait_s: float
    lock_stale_s: float
    deploy_timeout_minutes: int
    deploy_on_push: bool
    github_deployments: bool
    wfgen_install: str
    environment: str | None  # [environments.<name>] this copy of the fleet is; None without environments


@dataclass(frozen=True)
class Target:
    kind: Literal["ssh", "local", "swarm"]
    manager: Literal["ssh", "local"] | None  # with kind 'swarm': how the manager's docker CLI is reached
    host_env: str | None
    user_env: str | None
    ssh_key_env: str | None
    known_hosts_env: str | None
    insecure_ignore_host_key: bool
    port: int | None
    network: str
    state_dir: str
    environment: str | None
    connect_timeout_s: int


@dataclass(frozen=True)
class Build:
    where: Literal["target", "runner"]
    registry: str | None
    registry_user_env: str | None
    registry_password_env: str | None

    def push_registry(self) -> str | None:
        """The registry images go through (built here, pushed, pulled on the target), or None: built there."""
        return self.registry if self.where == "runner" else None


@dataclass(frozen=True)
class TcpEndpoint:
    host: str
    port: int


@dataclass(frozen=True)
class Infrastructure:
    networks: tuple[str, ...]
    min_free_disk_mb: int
    tcp: tuple[TcpEndpoint, ...]
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Health:
    path: str
    interval_s: float
    timeout_s: float
    deadline_s: float
    start_grace_s: float


@dataclass(frozen=True)
class Swarm:
    """A service's settings on a swarm (`Service.swarm`, None on one host)."""

    replicas: int
    placement: tuple[str, ...]
    health_command: tuple[str, ...] | Literal["image"] | None


@dataclass(frozen=True)
class Service:
    name: str
    repository: str | None
    clone_url: str | None
    path: str | None
    ref: str | None
    dockerfile: str
    build_target: str | None  # the stage of a multi-stage Dockerfile; None: the last one
    context: str
    port: int
    container_port: int
    env: tuple[str, ...]  # names whose values come from secrets
    vars: Mapping[str, str]  # plain values, written in the manifest: NAME -> value
    health: Health
    proxy: bool
    domain: str | None
    depends_on: tuple[str, ...]
    paths: tuple[str, ...]
    release: tuple[str, ...] | None  # the release command, exec form; None: no release phase
    release_timeout_s: float
    swarm: Swarm | None

    def health_url(self, port: int, host: str = "127.0.0.1") -> str:
        """The health check URL on a host port, asked from the target (of itself, by default)."""
        return f"http://{host}:{port}{self.health.path}"


@dataclass(frozen=True)
class Proxy:
    image: str
    drain_s: float
    http_port: int
    https_port: int
    tls: Literal["acme", "internal"]
    placement: tuple[str, ...]  # on a swarm: the nodes the proxy runs on (empty: every node)
    container: str


@dataclass(frozen=True)
class Manifest:
    format: int
    source: str
    project: Project
    target: Target
    build: Build
    infrastructure: Infrastructure
    proxy: Proxy
    services: Mapping[str, Service]

    def service(self, name: str | None) -> Service:
        """The service a step was asked for (--service / WFGEN_SERVICE); UsageError when none or unknown."""
        if not name:
            raise steplib.UsageError("no service: pass --service or set WFGEN_SERVICE")
        if name not in self.services:
            hint = did_you_mean(name, self.services)
            raise steplib.UsageError(f"unknown service {name!r}{hint}; known: {', '.join(self.services)}")
        return self.services[name]

    def dependencies(self) -> dict[str, tuple[str, ...]]:
        """Each service's `depends_on`, in manifest order: the graph its depths and waves come from."""
        return {name: service.depends_on for name, service in self.services.items()}

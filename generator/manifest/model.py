"""The manifest schema: pydantic models for services.toml. `wfgen schema` prints their JSON Schema."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from generator.distribution import FOREIGN_NAME, installed, requirement_name
from generator.steps.core.lock import HEARTBEAT_S, MIN_STALE_S
from generator.steps.core.steplib import GIT_REF_HINT, is_safe_git_ref

MAX_SERVICES = 256  # GitHub's limit of jobs a matrix can generate

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOCKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_OWNER_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_URL_SCHEMES = ("https://", "ssh://", "file://", "git@")
_REGISTRY = re.compile(r"^[a-z0-9][a-z0-9.-]*(:[0-9]{1,5})?(/[a-z0-9._-]+)*$")
# A DNS host name: dot-separated labels of letters, digits and inner hyphens; at least two labels.
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)
_HTTP_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$")


def check_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            "must be lowercase letters, digits and '-', start with a letter or digit, at most 63 characters"
        )
    return value


def check_env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError("must be an environment variable name such as VPS_HOST (letters, digits, '_')")
    if value.upper().startswith("WFGEN_"):
        raise ValueError("names starting with WFGEN_ are reserved for wfgen's own settings")
    return value


def check_docker_name(value: str) -> str:
    if not _DOCKER_NAME.fullmatch(value):
        raise ValueError("must be a Docker network name (letters, digits, '_', '.', '-')")
    return value


def check_git_ref(value: str) -> str:
    if not is_safe_git_ref(value):
        raise ValueError(f"is not a safe git branch name ({GIT_REF_HINT})")
    return value


def check_lock_stale(value: float) -> float:
    if value < MIN_STALE_S:
        raise ValueError(
            f"must be at least {MIN_STALE_S:g} s: a running deploy refreshes its lock every "
            f"{HEARTBEAT_S:g} s, and a few slow refreshes must not let another deploy break it"
        )
    return value


def check_port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("must be between 1 and 65535")
    return value


def check_repository(value: str) -> str:
    shaped = _OWNER_REPO.fullmatch(value) or value.startswith(_URL_SCHEMES)
    if not shaped or any(c.isspace() for c in value):
        raise ValueError(
            "must be 'owner/name' on GitHub or a git URL (https://, ssh://, file://, git@host:path)"
        )
    return value


def check_relative_path(value: str) -> str:
    path = PurePosixPath(value)
    if value == "" or path.is_absolute() or ".." in path.parts or "\\" in value:
        raise ValueError("must be a relative path inside the repository (no '..', no leading '/')")
    return value


def check_registry(value: str) -> str:
    if not _REGISTRY.fullmatch(value):
        raise ValueError("must be a registry prefix such as ghcr.io/owner (lowercase, no scheme)")
    return value


def check_health_path(value: str) -> str:
    if not _HTTP_PATH.fullmatch(value):
        raise ValueError("must be an HTTP path starting with '/', without spaces")
    return value


def check_wfgen_install(value: str) -> str:
    if requirement_name(value) == FOREIGN_NAME:
        raise ValueError(
            f"must not install '{FOREIGN_NAME}': on PyPI that name is an unrelated package; "
            f"leave wfgen_install unset to pin {installed().requirement}, the wfgen that renders"
        )
    return value


def check_domain(value: str) -> str:
    if not _DOMAIN.fullmatch(value):
        raise ValueError("must be a lowercase host name such as 'chat.example.com' (no scheme, port or path)")
    return value


def check_release(value: list[str]) -> list[str]:
    if any(not part for part in value):
        raise ValueError("must not contain an empty string")
    if any("\0" in part for part in value):
        raise ValueError("must not contain a NUL character")
    return value


# A Swarm placement constraint: `node.<attribute> == value` or `!=`; attributes as `docker service create
# --constraint` takes them (https://docs.docker.com/reference/cli/docker/service/create/#constraint).
_CONSTRAINT = re.compile(
    r"(node\.(id|hostname|role|platform\.os|platform\.arch|labels\.[A-Za-z0-9][A-Za-z0-9._-]*)"
    r"|engine\.labels\.[A-Za-z0-9][A-Za-z0-9._-]*)"
    r" *(==|!=) *[A-Za-z0-9][A-Za-z0-9._:/-]*"
)


def check_constraint(value: str) -> str:
    if not _CONSTRAINT.fullmatch(value.strip()):
        raise ValueError(
            "must be a Swarm constraint such as 'node.labels.tier == api' or 'node.role != manager'"
        )
    return value.strip()


def check_var_value(value: str) -> str:
    if any(char in value for char in "\n\r\0"):
        raise ValueError("must be one line: no line break or NUL character")
    return value


# Folders every user of the host can write to: another user could create the state folder there first.
SHARED_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock")


def check_state_dir(value: str) -> str:
    path = PurePosixPath(value)
    if any(char in value for char in "\n\r\0\\"):
        raise ValueError("must be a folder path on one line (no line break, NUL or backslash)")
    if ".." in path.parts:
        raise ValueError("must not contain '..': a folder in the target user's home such as '.wfgen', or an "
                         "absolute path")  # fmt: skip
    if value.startswith("~") and not (value == "~" or value.startswith("~/")):
        raise ValueError("'~name' is another user's home: use a path relative to the target user's home")
    for shared in map(PurePosixPath, SHARED_FOLDERS):
        if path == shared or path.parent == shared:
            raise ValueError(
                f"must not be in {shared}, which every user can write to (another user could create it "
                "first); use a folder in the target user's home such as '.wfgen'"
            )
    return value


def check_tcp(value: str) -> str:
    host, sep, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535 or " " in host:
        raise ValueError("must be 'host:port', e.g. '127.0.0.1:5432' or '[::1]:6379'")
    return value


Name = Annotated[str, AfterValidator(check_name)]
EnvName = Annotated[str, AfterValidator(check_env_name)]
DockerName = Annotated[str, AfterValidator(check_docker_name)]
GitRef = Annotated[str, AfterValidator(check_git_ref)]
Port = Annotated[int, AfterValidator(check_port)]
VarValue = Annotated[str, AfterValidator(check_var_value)]
Seconds = Annotated[float, Field(gt=0, le=86400)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Project(StrictModel):
    name: Name = Field(
        description="Used in image names (<name>/<service>) and container names (<name>-<service>)."
    )
    branches: list[GitRef] = Field(
        default=["main"], min_length=1, description="Dispatch choices; first is default."
    )
    max_parallel: int = Field(default=6, ge=1, le=MAX_SERVICES, description="Deploy legs running at once.")
    runs_on: str = Field(
        default="ubuntu-latest", min_length=1, description="GitHub runner label for every job."
    )
    keep_images: int = Field(default=5, ge=2, le=100, description="Images kept per service on the target.")
    lock_wait_s: float = Field(
        default=600.0, ge=0, le=86400, description="How long a deploy waits for its lock."
    )
    lock_stale_s: Annotated[float, AfterValidator(check_lock_stale)] = Field(
        default=300.0,
        le=604800,
        json_schema_extra={"minimum": MIN_STALE_S},
        description="A lock nobody refreshed for this long is broken (its deploy died or lost the host).",
    )
    deploy_timeout_minutes: int = Field(
        default=30,
        ge=1,
        le=360,
        description="How long one deploy may take before it cancels itself; its job gets a few minutes more.",
    )
    deploy_on_push: bool = Field(
        default=False,
        description="Also deploy on a push to one of the branches: only the services whose commit or "
        "configuration differs from what runs on the target.",
    )
    github_deployments: bool = Field(
        default=True,
        description="Record a GitHub deployment per deploy leg and rollback: the service, its commit, its "
        "URL. false: none, and no job gets 'deployments: write'.",
    )
    wfgen_install: Annotated[str, Field(min_length=1), AfterValidator(check_wfgen_install)] | None = Field(
        default=None,
        description="What the check workflow pip-installs: a requirement, or '.' for this checkout. "
        "Unset: '<name>==<version>' of the wfgen that renders.",
    )


# [target] keys only an ssh target uses: setting one with kind = "local" is a mistake worth a line.
SSH_ONLY = ("host_env", "user_env", "ssh_key_env", "known_hosts_env", "insecure_ignore_host_key", "port")


class Target(StrictModel):
    kind: Literal["ssh", "local", "swarm"] = Field(
        default="ssh", description="'ssh' to a VPS, 'local' Docker, or 'swarm': a Docker Swarm's manager."
    )
    manager: Literal["ssh", "local"] | None = Field(
        default=None,
        description="With kind = 'swarm': reach the manager over SSH (the ssh keys below; default) or use "
        "this machine's Docker engine, itself a manager ('local').",
    )
    host_env: EnvName = Field(default="VPS_HOST", description="Env var / secret holding the SSH host.")
    user_env: EnvName = Field(default="VPS_USER", description="Env var / secret holding the SSH user.")
    ssh_key_env: EnvName = Field(
        default="VPS_SSH_KEY", description="Env var / secret holding the private key."
    )
    known_hosts_env: EnvName = Field(
        default="VPS_KNOWN_HOSTS", description="Env var / secret: known_hosts line(s)."
    )
    insecure_ignore_host_key: bool = Field(
        default=False, description="Skip host key pinning (not recommended)."
    )
    port: Port = Field(default=22, description="SSH port.")
    network: DockerName | None = Field(default=None, description="Docker network services join.")
    state_dir: Annotated[str, AfterValidator(check_state_dir)] = Field(
        default=".wfgen",
        min_length=1,
        description="Locks, audit log, env-files on the target: relative to the target user's home, or "
        "absolute; created 0700, refused when another user owns it or can write to it.",
    )
    environment: str | None = Field(
        default=None, min_length=1, description="GitHub environment of deploy jobs."
    )
    connect_timeout_s: int = Field(default=10, ge=1, le=300, description="SSH connect timeout.")


class Build(StrictModel):
    where: Literal["target", "runner"] = Field(
        default="target", description="Build on the target or the runner."
    )
    registry: Annotated[str, AfterValidator(check_registry)] | None = Field(
        default=None, description="Registry prefix images are pushed to when where = 'runner'."
    )
    registry_user_env: EnvName | None = Field(default=None, description="Env var / secret: registry user.")
    registry_password_env: EnvName | None = Field(
        default=None, description="Env var / secret: registry password."
    )


class Infrastructure(StrictModel):
    networks: list[DockerName] = Field(default=[], description="Docker networks that must exist.")
    min_free_disk_mb: int = Field(default=0, ge=0, description="Free disk the target must have.")
    tcp: list[Annotated[str, AfterValidator(check_tcp)]] = Field(
        default=[], description="host:port that must answer."
    )
    secrets: list[EnvName] = Field(default=[], description="Secrets that must be set (names).")


class Health(StrictModel):
    path: Annotated[str, AfterValidator(check_health_path)] = Field(default="/health")
    interval_s: Seconds = Field(default=1.0, description="Pause between probes.")
    timeout_s: Seconds = Field(default=5.0, description="Per-request timeout.")
    deadline_s: Seconds = Field(default=60.0, description="Give up after this long.")
    start_grace_s: float = Field(default=0.0, ge=0, le=3600, description="Wait before the first probe.")
    command: (
        Annotated[list[str], Field(min_length=1), AfterValidator(check_release)] | Literal["image"] | None
    ) = Field(
        default=None,
        description="On a swarm: the healthcheck command run inside each task (through /bin/sh); 'image' "
        "keeps the image's HEALTHCHECK. Default: wget or curl of path.",
    )

    @model_validator(mode="after")
    def _fits_deadline(self) -> Health:
        if self.start_grace_s >= self.deadline_s:
            raise ValueError("start_grace_s must be shorter than deadline_s")
        return self


class Proxy(StrictModel):
    image: str | None = Field(
        default=None,
        min_length=1,
        description="Caddy image of the project proxy (default: the official one in templates/proxy.toml).",
    )
    drain_s: float = Field(
        default=10.0, ge=0, le=3600, description="How long the old version finishes in-flight requests."
    )
    http_port: Port = Field(
        default=80, description="Where domains are served over HTTP (redirects to HTTPS)."
    )
    https_port: Port = Field(default=443, description="Where domains are served over HTTPS.")
    tls: Literal["acme", "internal"] = Field(
        default="acme",
        description="Certificates for domains: 'acme' (public CAs) or 'internal' (Caddy's own CA).",
    )
    placement: list[Annotated[str, AfterValidator(check_constraint)]] = Field(
        default=[],
        description="On a swarm: the nodes the proxy runs on, as placement constraints such as "
        "'node.labels.edge == true' (default: every node).",
    )


class Service(StrictModel):
    repository: Annotated[str, AfterValidator(check_repository)] | None = Field(default=None)
    path: Annotated[str, AfterValidator(check_relative_path)] | None = Field(default=None)
    ref: GitRef | None = Field(default=None, description="Branch to deploy instead of the dispatched one.")
    dockerfile: Annotated[str, AfterValidator(check_relative_path)] = Field(default="Dockerfile")
    build_target: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")] | None = Field(
        default=None, description="Build stage of a multi-stage Dockerfile (docker build --target)."
    )
    context: str = Field(default=".", description="Build context inside the source.")
    port: Port = Field(description="Host port the service answers on.")
    container_port: Port | None = Field(
        default=None, description="Port inside the container (default: port)."
    )
    env: list[EnvName] = Field(
        default=[], description="Env vars passed into the container (values from secrets)."
    )
    vars: dict[EnvName, VarValue] = Field(
        default={},
        description="Plain, non-secret env vars passed into the container: NAME = 'value' "
        "(shown by status; secrets belong in env).",
    )
    health: Health = Field(default_factory=Health)
    proxy: bool = Field(
        default=True,
        description="Behind the project proxy (no dark window); false: its port is dark during a switch.",
    )
    domain: Annotated[str, AfterValidator(check_domain)] | None = Field(
        default=None, description="Also serve on proxy.http_port/https_port for this host name (HTTPS)."
    )
    depends_on: list[Name] = Field(
        default=[],
        description="Services deployed before this one; it is skipped when one of them fails.",
    )
    paths: list[Annotated[str, AfterValidator(check_relative_path)]] = Field(
        default=[],
        description="More paths of the repository whose changes redeploy this folder service (shared code).",
    )
    release: Annotated[list[str], Field(min_length=1), AfterValidator(check_release)] | None = Field(
        default=None,
        description="Run once per deploy in a one-off container of the new image (same env and network), "
        "before the new version starts, e.g. database migrations; exec form, no shell. A failure fails the "
        "deploy and the old version keeps serving.",
    )
    release_timeout_s: Seconds = Field(
        default=300.0, description="How long the release command may run before the deploy fails."
    )
    replicas: int | None = Field(
        default=None, ge=1, le=100, description="On a swarm: how many tasks run the service (default 1)."
    )
    placement: list[Annotated[str, AfterValidator(check_constraint)]] = Field(
        default=[],
        description="On a swarm: placement constraints, e.g. 'node.labels.tier == api'.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Service:
        if (self.repository is None) == (self.path is None):
            raise ValueError("set exactly one of 'repository' or 'path'")
        if self.domain is not None and not self.proxy:
            raise ValueError("a domain is served by the proxy: it needs proxy = true")
        if self.context != "." and (
            self.context.startswith("/") or ".." in PurePosixPath(self.context).parts
        ):
            raise ValueError("context must be a relative path inside the source")
        return self


class Environment(StrictModel):
    """One copy of the fleet: `[environments.<name>]`. Names on the target include the environment's name."""

    branches: list[GitRef] = Field(
        min_length=1, description="Branches that deploy here; the first is the default of --env."
    )
    github_environment: Annotated[str, Field(min_length=1)] | None = Field(
        default=None,
        description="GitHub environment of this one's jobs: protection rules, its own secrets "
        "(default: the environment's name).",
    )
    target: Target | None = Field(
        default=None, description="[target] keys this environment sets differently, e.g. host_env."
    )
    port_offset: int = Field(
        default=0, ge=0, le=64511, description="Added to every service port: two copies on one host."
    )
    vars: dict[Name, dict[EnvName, VarValue]] = Field(
        default={},
        description="Per service, plain env vars this environment sets differently or adds: "
        "[environments.<env>.vars.<service>] NAME = 'value'.",
    )


class Manifest(StrictModel):
    """services.toml"""

    project: Project
    target: Target = Field(default_factory=Target)
    build: Build = Field(default_factory=Build)
    infrastructure: Infrastructure = Field(default_factory=Infrastructure)
    proxy: Proxy = Field(default_factory=Proxy)
    services: dict[Name, Service] = Field(min_length=1, max_length=MAX_SERVICES)
    environments: dict[Name, Environment] = Field(
        default={}, description="Staging, production, ...: one manifest, deployed to each from its branches."
    )

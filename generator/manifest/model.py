"""The manifest schema: pydantic models for services.toml, rooted at Manifest. `wfgen schema` prints their
JSON Schema. The field types are in fields.py, a service's tables in service.py, the target's in target.py."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from generator.manifest.fields import (
    EnvName,
    GitRef,
    Name,
    StrictModel,
    VarValue,
    check_lock_stale,
    check_wfgen_install,
)
from generator.manifest.service import Service
from generator.manifest.target import Build, Infrastructure, Proxy, Target
from generator.steps.core.lock import MIN_STALE_S

MAX_SERVICES = 256  # GitHub's limit of jobs a matrix can generate


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

"""The manifest schema of one service: [services.<name>] and its [services.<name>.health]."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from generator.manifest.fields import (
    EnvName,
    GitRef,
    Name,
    Port,
    Seconds,
    StrictModel,
    VarValue,
    check_constraint,
    check_domain,
    check_health_path,
    check_relative_path,
    check_release,
    check_repository,
)


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

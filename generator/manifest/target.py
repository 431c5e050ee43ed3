"""The manifest schema's tables of where and how the fleet deploys: [target], [build], [infrastructure] and
[proxy]."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from generator.manifest.fields import (
    DockerName,
    EnvName,
    Port,
    StrictModel,
    check_constraint,
    check_registry,
    check_state_dir,
    check_tcp,
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

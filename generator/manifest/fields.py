"""The manifest schema's field types: each check_* validates one kind of value (its ValueError is the message
the user sees), and the Annotated types below attach them to the pydantic models' fields."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from generator.distribution import FOREIGN_NAME, installed, requirement_name
from generator.steps.core.lock import HEARTBEAT_S, MIN_STALE_S
from generator.steps.core.names import GIT_REF_HINT, is_safe_git_ref

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

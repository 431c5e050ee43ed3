"""Which secrets each job's env receives, as `${{ secrets.NAME }}` expressions: the target's, gated by
environment; the registry's for every leg; a service's own only for its own leg; the checked ones as flags."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from generator.errors import WfgenError
from generator.steps.core.steplib import secret_flag

# The job env of the deploy leg sets these itself; a manifest env name must not shadow them.
RESERVED_ENV_PREFIX = "WFGEN_"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def secret_ref(name: str) -> str | None:
    """`secrets.NAME`, or `github.token`; None for the GITHUB_* variables the runner sets itself."""
    if not _ENV_NAME.fullmatch(name):
        raise WfgenError(f"{name!r}: not a valid environment variable name")
    if name.startswith(RESERVED_ENV_PREFIX):
        raise WfgenError(f"{name}: names starting with {RESERVED_ENV_PREFIX} are reserved for wfgen")
    if name == "GITHUB_TOKEN":
        return "github.token"  # the job's own token, scoped by the job's permissions
    if name.startswith("GITHUB_"):  # the runner sets GITHUB_* itself; no secret may use the prefix
        return None
    return f"secrets.{name}"


def secret_env(names: Iterable[str | None]) -> dict[str, str]:
    """`NAME: ${{ secrets.NAME }}` for each distinct name, in first-seen order."""
    env: dict[str, str] = {}
    for name in names:
        if name is None or name in env:
            continue
        ref = secret_ref(name)
        if ref is not None:
            env[name] = "${{ " + ref + " }}"
    return env


TARGET_SECRETS = ("host_env", "user_env", "ssh_key_env", "known_hosts_env")


def target_env(
    resolved: dict[str, Any], environments: dict[str, dict[str, Any]], subject: str, shared: list[str | None]
) -> dict[str, str]:
    """The target's secrets. With environments, a secret only some of them name reaches a job only when
    `subject` (an expression) is one of those: staging's jobs never receive production's SSH key. A name a
    service or the registry also uses is not gated: they need it in every environment."""
    copies = environments or {"": resolved}
    users: dict[str, list[str]] = {}
    for name, copy in copies.items():
        for key in TARGET_SECRETS:
            secret = copy["target"][key]
            if secret and name not in users.setdefault(secret, []):
                users[secret].append(name)
    also_used = {*shared, *(secret for service in resolved["services"].values() for secret in service["env"])}
    env = secret_env(users)
    for secret, names in users.items():
        if secret in env and len(names) < len(copies) and secret not in also_used:
            quoted = json.dumps(names, separators=(",", ":"))  # environment names are [a-z0-9-]
            ref = env[secret].removeprefix("${{ ").removesuffix(" }}")
            env[secret] = f"${{{{ contains(fromJSON('{quoted}'), {subject}) && {ref} || '' }}}}"
    return env


def check_env(target: dict[str, str], checked: list[str]) -> dict[str, str]:
    """The target's secrets, which the check uses; for the ones it only checks, whether they are set."""
    env = dict(target)
    for name in checked:
        ref = secret_ref(name)
        if ref is not None:
            env[secret_flag(name)] = "${{ " + ref + " != '' }}"
    return env


def deploy_env(
    resolved: dict[str, Any],
    target: dict[str, str],
    every_leg: list[str | None],
    subject: str = "matrix.service",
) -> dict[str, str]:
    """Secrets of a deploy leg: the target's (see target_env) and registry ones for all, a service's own only
    for its own leg (the service `subject` names)."""
    env = {**target, **{name: ref for name, ref in secret_env(every_leg).items() if name not in target}}
    users: dict[str, list[str]] = {}
    for name, service in resolved["services"].items():
        for secret in service["env"]:
            if secret not in env:
                users.setdefault(secret, []).append(name)
    everyone = list(resolved["services"])
    for secret, services in users.items():
        ref = secret_ref(secret)
        if ref is None:
            continue
        if services == everyone:
            env[secret] = "${{ " + ref + " }}"
        else:  # service names are [a-z0-9-]: no quoting issue
            names = json.dumps(services, separators=(",", ":"))
            env[secret] = f"${{{{ contains(fromJSON('{names}'), {subject}) && {ref} || '' }}}}"
    return env

"""Compose services that run once (seed jobs, migrations) rather than serve: wfgen does not deploy them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.init.compose_file import names

_SERVES = ("ports", "expose", "healthcheck")


def one_off_reason(name: str, services: Mapping[str, Any]) -> str | None:
    """Why the compose service `name` looks like a job that ends, or None when it looks long-running."""
    spec = services[name]
    restart = str(spec.get("restart", ""))
    serves = any(spec.get(key) for key in _SERVES)
    if restart in {"no", "False", "false"}:
        return 'restart "no": it runs once'
    for other, other_spec in services.items():
        depends = other_spec.get("depends_on") if isinstance(other_spec, Mapping) else None
        options = depends.get(name) if isinstance(depends, Mapping) else None
        if isinstance(options, Mapping) and options.get("condition") == "service_completed_successfully":
            return f"{other} waits for it to complete: it runs once"
    if restart.startswith("on-failure") and spec.get("command") and not serves:
        return "restart on-failure with its own command and no port: it runs once"
    if spec.get("profiles") and not serves:
        return f"profiles {names(spec['profiles'])} and no port: a job run on demand"
    return None


def release_hint(name: str, services: Mapping[str, Any], built: list[str]) -> str:
    """A pointer to `release` when the job builds what a deployed service builds (a migration, a seed)."""
    build = services[name].get("build")
    for other in built:
        if (
            other != name
            and services[other].get("build") == build
            and one_off_reason(other, services) is None
        ):
            return (f"; it builds what {other} builds: to run its command before each deploy of {other}, "
                    f"set services.{other}.release")  # fmt: skip
    return ""

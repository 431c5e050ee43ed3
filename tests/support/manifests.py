"""Build resolved manifests (docs/design.md) for step-script tests, through the real parser and resolver."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from generator.manifest.resolve import resolve_manifest
from generator.manifest.validate import parse_manifest
from generator.steps.core import config, config_load

# The proxy of every test manifest: the FROM-scratch Caddy image the tests build (tests/support/caddy.py),
# and a short drain so a deploy does not wait the production default of 10 s.
TEST_PROXY = {"image": "wfgen-test-caddy:current", "drain_s": 0.5}
FLEET = ("auth-service", "user-service", "chat-service", "event-service", "shared-service", "splitz-service")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def toml_table(header: str, table: Mapping[str, Any]) -> list[str]:
    """`[header]` with its scalar keys, then its sub-tables (one level of nesting, e.g. `health`)."""
    lines = [f"[{header}]"]
    scalars = {key: value for key, value in table.items() if not isinstance(value, Mapping)}
    lines += [f"{key} = {toml_value(value)}" for key, value in scalars.items()]
    for key, value in table.items():
        if isinstance(value, Mapping):
            lines += ["", *toml_table(f"{header}.{key}", value)]
    return lines


def manifest_toml(
    services: Mapping[str, Mapping[str, Any]],
    *,
    project: Mapping[str, Any] | None = None,
    target: Mapping[str, Any] | None = None,
    infrastructure: Mapping[str, Any] | None = None,
    proxy: Mapping[str, Any] | None = None,
) -> str:
    """services.toml text: project `letzgo` on main/develop/staging, local target, the given services."""
    project_table = {"name": "letzgo", "branches": ["main", "develop", "staging"], **(project or {})}
    target_table = {"kind": "local", **(target or {})}
    sections = [toml_table("project", project_table), toml_table("target", target_table)]
    if infrastructure:
        sections.append(toml_table("infrastructure", infrastructure))
    sections.append(toml_table("proxy", {**TEST_PROXY, **(proxy or {})}))
    sections += [toml_table(f"services.{name}", service) for name, service in services.items()]
    return "\n\n".join("\n".join(section) for section in sections) + "\n"


def fleet_services(names: Sequence[str] = FLEET, base_port: int = 3000) -> dict[str, dict[str, Any]]:
    """The write-up's six services, each from its own GitHub repository on consecutive ports."""
    return {name: {"repository": f"letzgo/{name}", "port": base_port + i} for i, name in enumerate(names)}


def resolved_manifest(toml_text: str) -> dict[str, Any]:
    return resolve_manifest(parse_manifest(toml_text))


def resolved_view(toml_text: str) -> config.Manifest:
    """What a step sees of the manifest: through the real parser, resolver and config_load.parse."""
    return config_load.parse(resolved_manifest(toml_text), "manifest.json")


def target_view(target: Mapping[str, Any]) -> config.Target:
    """The resolved `target` of a manifest whose [target] table is `target` (one path service beside it)."""
    return resolved_view(manifest_toml({"web": {"path": "web", "port": 8080}}, target=target)).target


def write_resolved_manifest(directory: Path, toml_text: str) -> Path:
    """Write `manifest.json` the way `wfgen render` lays it out, and return its path."""
    path = directory / "manifest.json"
    path.write_text(json.dumps(resolved_manifest(toml_text), indent=2) + "\n", encoding="utf-8")
    return path

"""Read one key of a compose service (ports, environment, env_file, healthcheck, build) into plain values.

Each reader returns what it understood and notes on what it did not; values of variables are never kept."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from generator.init.draft import HealthDraft, is_env_name, probe_of
from generator.init.env_file import env_names_in_file, is_plain_value

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_NUMBER = re.compile(r"^\d{1,5}$")
_STAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Published:
    container: int
    host: int | None  # None: compose picks a random host port
    host_ip: str | None = None


def duration_s(value: Any) -> float | None:
    """'1m30s' -> 90.0, '500ms' -> 0.5; None for anything else."""
    text = str(value).strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def _port(text: str) -> int | None:
    return int(text) if _NUMBER.match(text) and 1 <= int(text) <= 65535 else None


def read_port(entry: Any) -> Published | str:
    """One `ports` entry, short ("8080:80", "127.0.0.1:8080:80/tcp", "80") or long syntax; a note if not."""
    if isinstance(entry, Mapping):
        return _long_port(entry)
    text = str(entry).strip()
    shown = text
    text, _, protocol = text.partition("/")
    if protocol and protocol != "tcp":
        return f"{shown}: {protocol} ports are not health-checked over HTTP"
    host_ip = None
    if text.startswith("["):
        host_ip, _, text = text[1:].partition("]")
        text = text.removeprefix(":")
    parts = text.split(":")
    if len(parts) == 3 and host_ip is None:
        host_ip = parts.pop(0)
    if len(parts) > 2 or not parts:
        return f"{shown}: not a port mapping wfgen understands"
    if any("-" in part for part in parts):
        return f"{shown}: port ranges are not mapped (one port per service)"
    container = _port(parts[-1])
    host = _port(parts[0]) if len(parts) == 2 and parts[0] else None
    if container is None or (len(parts) == 2 and parts[0] and host is None):
        return f"{shown}: not a port mapping wfgen understands (variables are not expanded)"
    return Published(container, host, host_ip or None)


def _long_port(entry: Mapping[str, Any]) -> Published | str:
    target, published = str(entry.get("target", "")), str(entry.get("published", "") or "")
    shown = f"target {target}" + (f", published {published}" if published else "")
    if str(entry.get("protocol", "tcp")) != "tcp":
        return f"{shown}: {entry.get('protocol')} ports are not health-checked over HTTP"
    if "-" in published or "-" in target:
        return f"{shown}: port ranges are not mapped (one port per service)"
    container, host = _port(target), _port(published) if published else None
    if container is None or (published and host is None):
        return f"{shown}: not a port mapping wfgen understands (variables are not expanded)"
    host_ip = entry.get("host_ip")
    return Published(container, host, str(host_ip) if host_ip else None)


def read_environment(value: Any) -> tuple[list[str], dict[str, str], list[str]]:
    """`environment` as a list ("KEY=VALUE", "KEY") or a mapping: (secret names, plain values, notes).

    A value goes into the plain values only when init_env.is_plain_value says it is configuration;
    every other one stays behind and its name becomes a secret name."""
    if isinstance(value, Mapping):
        items = [(str(key), None if item is None else _text(item)) for key, item in value.items()]
    elif isinstance(value, list):
        items = [_item(str(entry)) for entry in value]
    else:
        items = []
    secret: list[str] = []
    plain: dict[str, str] = {}
    for name, text in items:
        if text is not None and is_env_name(name) and is_plain_value(name, text):
            plain[name] = text
        elif name not in secret:
            secret.append(name)
    return secret, plain, []


def _item(entry: str) -> tuple[str, str | None]:
    name, equals, text = entry.partition("=")
    return name.strip(), text if equals else None


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def env_file_names(value: Any, paths: Mapping[str, Path]) -> tuple[list[str], list[str]]:
    """Names from the files `env_file` lists (a path, a list, or {path, required}); (names, notes).
    Only the names of `NAME=...` entries are read; values and other lines are skipped, never echoed."""
    entries = value if isinstance(value, list) else [value]
    names: list[str] = []
    notes: list[str] = []
    for entry in entries:
        relative = str(entry.get("path", "")) if isinstance(entry, Mapping) else str(entry)
        required = not isinstance(entry, Mapping) or entry.get("required", True) is not False
        try:
            text = paths[relative].read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            if required:
                notes.append(f"env_file {relative}: cannot read it; add its variable names to env by hand")
            continue
        names += env_names_in_file(text)
    return names, notes


def usable_env(names: list[str]) -> tuple[list[str], list[str]]:
    """(secret names wfgen accepts, in order without repeats; notes on the others)."""
    kept: list[str] = []
    notes: list[str] = []
    for name in names:
        if name in kept:
            continue
        if is_env_name(name):
            kept.append(name)
        else:
            notes.append(f"environment {name}: not a name wfgen can pass from a secret")
    return kept, notes


def read_healthcheck(value: Any) -> tuple[HealthDraft, list[str]]:
    """Health path and timings from a compose healthcheck whose test probes a local HTTP URL."""
    if not isinstance(value, Mapping):
        return HealthDraft(), []
    if value.get("disable") is True:
        return HealthDraft(), ["healthcheck: disabled in compose; wfgen probes /health"]
    test = value.get("test")
    if isinstance(test, list):
        words = [str(word) for word in test]
        if words and words[0] == "NONE":
            return HealthDraft(), ["healthcheck: NONE in compose; wfgen probes /health"]
        command = " ".join(words[1:] if words and words[0] in {"CMD", "CMD-SHELL"} else words)
    else:
        command = str(test or "")
    health = HealthDraft(
        interval_s=_seconds(value.get("interval")),
        timeout_s=_seconds(value.get("timeout")),
        start_grace_s=_seconds(value.get("start_period")),
        retries=value.get("retries") if isinstance(value.get("retries"), int) else None,
    )
    probe = probe_of(command)
    if probe is not None:
        health.path, health.container_port = probe
    return health, []


def _seconds(value: Any) -> float | None:
    return duration_s(value) if value is not None else None


@dataclass(frozen=True)
class Build:
    context: str
    dockerfile: str | None
    target: str | None
    notes: list[str]


def read_build(value: Any) -> Build:
    """Context, dockerfile and target (stage) of `build` as a path or a mapping, and notes."""
    if not isinstance(value, Mapping):
        return Build(str(value), None, None, [])
    mapped = {"context", "dockerfile", "target"}
    notes = [f"build.{key}: not mapped" for key in value if key not in mapped]
    dockerfile = value.get("dockerfile")
    if dockerfile is not None:
        path = PurePosixPath(str(dockerfile))
        if path.is_absolute() or ".." in path.parts:
            notes.append("build.dockerfile: outside the build context; the manifest uses Dockerfile")
            dockerfile = None
    target = str(value["target"]) if value.get("target") is not None else None
    if target is not None and not _STAGE.match(target):
        notes.append("build.target: not a stage name wfgen can pass (variables are not expanded)")
        target = None
    context = str(value.get("context", "."))
    return Build(context, None if dockerfile is None else str(dockerfile), target, notes)

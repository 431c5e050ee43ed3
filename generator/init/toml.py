"""A ProjectDraft -> the commented text of services.toml; the same draft gives the same bytes."""

from __future__ import annotations

import json
import re

from generator.init.draft import HealthDraft, ProjectDraft, ServiceDraft

DEFAULT_DEADLINE_S = 60.0
DEFAULT_RETRIES = 3  # Docker's default number of failed probes before a container is unhealthy
MAX_SECONDS = 86400.0
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
VARS_RULE = (
    "# vars: compose environment values copied as they are; never one from an env_file, one whose name or\n"
    "# shape says credential (PASSWORD, SECRET, TOKEN, KEY, AUTH, ..., a URL with a password, a long random\n"
    "# string) or one written ${VAR}: those are names in env, their values come from secrets"
)


def manifest_text(draft: ProjectDraft) -> str:
    lines = [
        f"# services.toml written by 'wfgen init {draft.source}'.",
        "# Check it with 'wfgen validate'; 'wfgen schema' lists every key and its default.",
        *_comments(draft.notes),
        *([VARS_RULE] if any(service.vars for service in draft.services) else []),
        "",
        "[project]",
        f"name = {_string(draft.name)}",
        'branches = ["main"]                      # dispatch choices; the first is the default',
        "",
        "[target]",
        'kind = "ssh"',
        'host_env = "VPS_HOST"                    # names of secrets, never their values',
        'user_env = "VPS_USER"',
        'ssh_key_env = "VPS_SSH_KEY"',
        'known_hosts_env = "VPS_KNOWN_HOSTS"      # ssh-keyscan output, checked against the host',
        "",
        "[infrastructure]                         # checked before any deploy starts",
        *_comments(draft.infrastructure_notes),
        f"tcp = {_array(draft.tcp)}",
        f"secrets = {_array(draft.secrets)}",
    ]
    for service in draft.services:
        lines += ["", *_service(service)]
    return "\n".join(lines) + "\n"


def _service(service: ServiceDraft) -> list[str]:
    lines = [f"[services.{service.name}]", f"# from {service.origin}", *_comments(service.notes)]
    lines.append(f"path = {_string(service.path)}")
    if service.dockerfile != "Dockerfile":
        lines.append(f"dockerfile = {_string(service.dockerfile)}")
    if service.build_target is not None:
        lines.append(f"build_target = {_string(service.build_target)}")
    lines.append(f"port = {service.port}")
    if service.container_port is not None:
        lines.append(f"container_port = {service.container_port}")
    if service.env:
        lines.append(f"env = {_array(service.env)}")
    if service.vars:
        lines.append(f"vars = {_table(service.vars)}")
    if service.depends_on:
        lines.append(f"depends_on = {_array(service.depends_on)}")
    every = service.health.interval_s or 0.0
    if every > PROBE_EVERY_MAX_S:
        probe = _number(PROBE_EVERY_MAX_S)
        lines.append(f"# compose checks every {_number(every)} s; a deploy probes every {probe} s, so it "
                     "switches as soon as the new version answers")  # fmt: skip
    return [*lines, f"health = {_health(service.health)}"]


# A deploy waits for the candidate's health check: compose's interval is for a service that runs already.
PROBE_EVERY_MAX_S = 2.0


def _health(health: HealthDraft) -> str:
    fields = {"path": _string(health.path or "/health")}
    interval = _positive(health.interval_s)
    timeout = _positive(health.timeout_s)
    grace = health.start_grace_s if health.start_grace_s and health.start_grace_s < MAX_SECONDS else None
    if interval is not None:
        fields["interval_s"] = _number(min(interval, PROBE_EVERY_MAX_S))
    if timeout is not None:
        fields["timeout_s"] = _number(timeout)
    if grace is not None:
        fields["start_grace_s"] = _number(grace)
    if interval is not None or grace is not None:
        fields["deadline_s"] = _number(_deadline(health, interval, timeout, grace))
    return "{ " + ", ".join(f"{key} = {value}" for key, value in fields.items()) + " }"


def _deadline(
    health: HealthDraft, interval: float | None, timeout: float | None, grace: float | None
) -> float:
    """As long as compose would wait before calling the container unhealthy, and at least a minute."""
    retries = health.retries if health.retries and health.retries > 0 else DEFAULT_RETRIES
    waited = (grace or 0.0) + retries * ((interval or 0.0) + (timeout or 0.0))
    return min(max(DEFAULT_DEADLINE_S, waited, (grace or 0.0) + DEFAULT_DEADLINE_S), MAX_SECONDS)


def _positive(value: float | None) -> float | None:
    return value if value is not None and 0 < value <= MAX_SECONDS else None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(round(value, 3))


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _array(items: list[str]) -> str:
    return "[" + ", ".join(_string(item) for item in items) + "]"


def _table(values: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{_key(name)} = {_string(value)}" for name, value in values.items()) + " }"


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else _string(name)


def _comments(notes: list[str]) -> list[str]:
    return [f"# {' '.join(note.split())}" for note in notes]

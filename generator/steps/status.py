"""What runs on the target now, for `wfgen status`: per service the live container (commit, image, since
when), one health probe from the target, the last deploys from the audit log, and the images kept on the
target with the one a rollback would go to. Looks, never touches: one `docker` call per kind of fact for every
service at once, the audit log read once, the health probes in one command.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts (no job runs it yet).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from .core import config, runconfig, steplib
from .core.audit import AuditEntry, audit_path, read_audit, rollback_commit, service_deploys
from .core.target import open_target
from .core.transport import CommandFailed, Target, TargetError
from .engine import changes, images
from .engine.cutover import is_ok
from .engine.probe import http_probes
from .engine.proxy import live_name
from .engine.running import Running

DEPLOYS_SHOWN = 3
_DOCKER_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$")


class Unreachable(Exception):
    """The target cannot say what runs (cannot be reached, or its Docker does not answer); one line."""


@dataclass(frozen=True)
class Health:
    """One probe of the health URL on the public port, from the target, as a deploy's probes."""

    path: str
    port: int
    status: int | None  # the HTTP status; None when nothing answered within timeout_s
    timeout_s: float
    seconds: float  # how long the probes took (they run at once)

    @property
    def ok(self) -> bool:
        return is_ok(self.status)


@dataclass(frozen=True)
class Version:
    """One image of the service kept on the target."""

    image: str
    image_id: str
    commit: str | None
    branch: str | None
    created: str | None
    running: bool  # the live container was started from it
    rollback: bool  # a rollback would go to it: the version deployed before the one that runs


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    container: str  # its live name
    state: str  # docker's word (running, exited, restarting, created, paused, dead), or absent
    commit: str | None
    image: str | None
    started_at: str | None
    finished_at: str | None
    exit_code: int | None
    vars: dict[str, str]  # the plain values (services.<name>.vars) the live container was given
    health: Health | None  # None when not probed: nothing runs
    deploys: tuple[AuditEntry, ...]  # newest first
    versions: tuple[Version, ...]  # newest first
    problem: str | None  # why it does not serve; None when it runs and answers
    replicas: tuple[int, int] | None = None  # on a swarm: tasks running, desired
    nodes: tuple[str, ...] = ()  # on a swarm: the nodes its running tasks are on

    def as_json(self) -> dict[str, Any]:
        health = self.health and {**asdict(self.health), "ok": self.health.ok}
        return {
            **asdict(self), "serving": self.problem is None, "health": health,
            "deploys": [entry.as_json() for entry in self.deploys[:DEPLOYS_SHOWN]],
            "versions": [asdict(version) for version in self.versions],
        }  # fmt: skip


def utc(text: str | None) -> str | None:
    """Docker's nanosecond UTC time to the second (`2026-11-29T14:23:15Z`); None for its zero time."""
    found = _DOCKER_TIME.match(text or "")
    if found is None or found.group(1).startswith("0001-"):
        return None
    return f"{found.group(1)}Z"


def probe(target: Target, services: Sequence[config.Service], host: str) -> dict[str, Health]:
    """One probe of each service's health URL on its public port of `host` (as the target reaches it), all
    at once, as a deploy probes."""
    started = time.monotonic()
    found = http_probes(target, [(s.health_url(s.port, host), s.health.timeout_s) for s in services])
    took = round(time.monotonic() - started, 3)
    return {
        s.name: Health(s.health.path, s.port, status, s.health.timeout_s, took)
        for s, status in zip(services, found, strict=True)
    }


def versions(
    kept: Sequence[images.KeptImage], now: Running | None, deploys: Sequence[AuditEntry]
) -> tuple[Version, ...]:
    """The service's kept images, newest first, marked: the one the live container runs, the rollback one."""
    previous = rollback_commit(now.commit if now else None, deploys, images.kept_refs(kept))
    found: list[Version] = []
    marked = False
    for row in kept:
        commit = row.labels.get("wfgen.commit") or None
        rollback = not marked and row.tagged and commit is not None and commit == previous
        marked |= rollback
        # One host: the container's image id; a swarm: the service's repo@sha256 among the image's digests.
        running = now is not None and (row.ident == now.image_id or now.image in row.digests)
        found.append(Version(row.ref, row.ident, commit, row.labels.get("wfgen.branch") or None,
                             utc(row.built), running, rollback))  # fmt: skip
    return tuple(found)


def problem(now: Running | None, health: Health | None, deploys: Sequence[AuditEntry]) -> str | None:
    """Why the service does not serve, in a few words; None when it runs and answers its health check."""
    if now is None:
        return "no container (removed?)" if deploys else "never deployed"
    if now.state in {"exited", "dead"}:
        return f"stopped (exit code {now.exit_code})"
    if now.state == "restarting":
        return f"restarting (last exit code {now.exit_code})"
    if not now.running:
        return now.state or "not running"
    if health is None or health.ok:
        return None
    if health.status is None:
        return f"no answer on {health.path} within {health.timeout_s:g} s"
    return f"{health.path} answers HTTP {health.status}"


def service_status(
    manifest: config.Manifest,
    service: config.Service,
    now: Running | None,
    health: Health | None,
    kept: Sequence[images.KeptImage],
    deploys: Sequence[AuditEntry],
) -> ServiceStatus:
    """One service's facts, put together; deploys newest first."""
    return ServiceStatus(
        service=service.name,
        container=(now.name if now and now.name else live_name(manifest, service)),
        state=(now.state or "unknown") if now else "absent",
        commit=now.commit if now else None,
        image=now.image if now else None,
        started_at=utc(now.started_at) if now else None,
        finished_at=utc(now.finished_at) if now and not now.running else None,
        exit_code=now.exit_code if now and not now.running else None,
        vars=runconfig.vars_of(now.labels) if now else {},
        health=health,
        deploys=tuple(deploys),
        versions=versions(kept, now, deploys),
        problem=problem(now, health, deploys),
        replicas=now.replicas if now else None,
        nodes=now.nodes if now else (),
    )


def gather(manifest: config.Manifest, environ: Mapping[str, str]) -> dict[str, Any]:
    """The status document: every service of the manifest, in manifest order. Unreachable when the target
    cannot say; a UsageError for a target the environment does not describe (a missing variable)."""
    names = list(manifest.services)
    with open_target(manifest.target, environ) as target:
        try:
            # Reaches the target (ssh: the shared connection, and $HOME) before anything runs in parallel,
            # so an unreachable one fails once, not once per thread.
            log_path = audit_path(target, manifest.target.state_dir)
            with ThreadPoolExecutor(max_workers=3) as pool:
                live = pool.submit(changes.running_versions, target, manifest, names)
                kept = pool.submit(images.project_images, target, manifest.project.name)
                audit = pool.submit(read_audit, target, log_path)
                now = live.result()
                running = [manifest.services[name] for name in names if name in now and now[name].running]
                host = changes.probe_host(target, manifest) if running else None
                health = probe(target, running, host or "127.0.0.1")  # no proxy runs: nothing answers there
                entries, note = audit.result()
                kept_images = kept.result()
        except (TargetError, CommandFailed, OSError) as exc:
            raise Unreachable(target.redact(str(exc))) from None
        statuses = []
        for name in names:
            deploys = service_deploys(entries, name)
            rows = [row for row in kept_images if row.labels.get("wfgen.service") == name]
            status = service_status(manifest, manifest.services[name], now.get(name), health.get(name),
                                    rows, deploys)  # fmt: skip
            statuses.append(status.as_json())
        document = {"checked_at": steplib.now_iso(), "services": statuses, "notes": [note] if note else []}
        redacted: dict[str, Any] = _redacted(document, target)
        return redacted


def _redacted(value: Any, target: Target) -> Any:
    """Who deployed may be the target's user (a secret), and a note may name its home: their names instead."""
    if isinstance(value, str):
        return target.redact(value)
    if isinstance(value, list):
        return [_redacted(item, target) for item in value]
    if isinstance(value, dict):
        # Plain values are written in the committed manifest: shown as they are, even one that happens to
        # equal the target's user or home (redacting it would pass a plain value off as a secret).
        return {key: item if key == "vars" else _redacted(item, target) for key, item in value.items()}
    return value

"""`wfgen status`: what runs on the target now, asked in place through the status step; a table or JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from generator.errors import ExitCode, WfgenError
from generator.local.dryrun import describe_target
from generator.local.interrupts import Interrupts
from generator.manifest.loading import load
from generator.steps import status
from generator.steps.core.report_text import format_table
from generator.steps.core.steplib import UsageError, parse_iso
from generator.steps.deployment_summary import format_duration
from generator.steps.engine.changes import short

HEADERS = ("service", "state", "commit", "image", "since", "health")


class StatusError(WfgenError):
    """The environment does not describe the target (exit 2)."""


@dataclass(frozen=True)
class StatusOptions:
    manifest: Path
    as_json: bool = False
    environment: str | None = None  # --env; None: the first


def show_status(options: StatusOptions, stream: TextIO, errors: TextIO) -> int:
    """Print the status; FAILED when a service does not run and answer, or the target cannot say."""
    view = load(options.manifest, options.environment).view
    environ = dict(os.environ)
    where = describe_target(view, environ)
    # Ctrl-C reaches the docker and ssh children too: their failure is the interrupt, not the target's.
    with Interrupts() as interrupts:
        try:
            document = {
                "target": where,
                "environment": view.project.environment,
                **status.gather(view, environ),
            }
        except UsageError as exc:
            raise StatusError(f"status: {exc}") from None
        except status.Unreachable as exc:
            problem = str(exc)
        else:
            problem = ""
    if interrupts.requested:
        raise KeyboardInterrupt
    if problem:
        print(f"status: cannot read what runs on {where}: {problem}", file=errors)
        return ExitCode.FAILED
    idle = not_serving(document["services"])
    if options.as_json:
        print(json.dumps(document, indent=2), file=stream)
        if idle:
            print(f"status: not serving: {idle}", file=errors)
    else:
        print(text(document), end="", file=stream)
    return ExitCode.FAILED if idle else ExitCode.OK


def not_serving(services: Sequence[Mapping[str, Any]]) -> str:
    """`web: stopped (exit code 0); worker: never deployed`, or "" when every service serves."""
    return "; ".join(f"{item['service']}: {item['problem']}" for item in services if not item["serving"])


def text(document: Mapping[str, Any]) -> str:
    now = parse_iso(document["checked_at"])
    services = document["services"]
    lines = [f"Status on {document['target']} at {clock(document['checked_at'])}; nothing is touched.", ""]
    lines += format_table([row(item, now.timestamp()) for item in services], HEADERS)
    for item in services:
        lines += ["", *details(item)]
    lines.append("")
    lines += [f"note: {note}" for note in document["notes"]]
    idle = not_serving(services)
    count = sum(not item["serving"] for item in services)
    lines.append(
        f"❌ {count} of {len(services)} services not serving: {idle}"
        if idle
        else f"✅ {len(services)}/{len(services)} services serving"
    )
    return "\n".join(lines) + "\n"


def row(item: Mapping[str, Any], now: float) -> tuple[str, ...]:
    since = item["started_at"] if item["state"] == "running" else item["finished_at"]
    return (
        item["service"],
        state(item),
        short(item["commit"]),
        item["image"] or "-",
        f"{clock(since)} ({ago(since, now)})" if since else "-",
        health(item),  # last: an icon is two columns wide but one character, and would shift what follows
    )


def state(item: Mapping[str, Any]) -> str:
    """`running`, or on a swarm `running 2/2 on n2, n3`: its tasks and where they run."""
    if not item.get("replicas"):
        return str(item["state"])
    running, desired = item["replicas"]
    where = f" on {', '.join(item['nodes'])}" if item["nodes"] else ""
    return f"{item['state']} {running}/{desired}{where}"


def health(item: Mapping[str, Any]) -> str:
    """The probe's answer, or why there was none to ask for."""
    probe = item["health"]
    icon = "✅" if item["serving"] else "❌"
    if probe is None:
        return f"{icon} {item['problem']}" if item["problem"] else "-"
    if probe["status"] is None:
        return f"{icon} no answer on {probe['path']} within {probe['timeout_s']:g} s"
    return f"{icon} HTTP {probe['status']} on {probe['path']} ({probe['seconds']:.2f} s)"


def details(item: Mapping[str, Any]) -> list[str]:
    """The service's last deploys and its kept images, under its name (and why it does not serve)."""
    lines = [f"{item['service']} ({item['container']})" + (f": {item['problem']}" if item["problem"] else "")]
    if item["vars"]:
        lines.append("  vars (plain values from the manifest; secrets are never shown):")
        lines += [f"    {name}={shown(value)}" for name, value in item["vars"].items()]
    deploys = [
        (clock(entry["at"]), what(entry), format_duration(entry["duration_s"]), short(entry["commit"]),
         entry["who"], f"run {entry['run']}" if entry["run"] else "")
        for entry in item["deploys"]
    ]  # fmt: skip
    lines += indented("last deploys", deploys, "none in the audit log")
    versions = [
        (
            short(version["commit"]),
            version["image"],
            f"built {clock(version['created'])}",
            mark(item, version),
        )
        for version in item["versions"]
    ]
    lines += indented("images on the target, newest first", versions, "none")
    return lines


def shown(value: str) -> str:
    """A value as it is, or JSON-quoted when it holds a character a terminal would act on."""
    return value if value.isprintable() else json.dumps(value)


def what(entry: Mapping[str, Any]) -> str:
    """`deployed`, or `deployed (rollback)` for a rollback's line."""
    result, action = str(entry["result"]), str(entry["action"])
    return result if action == "deploy" else f"{result} ({action})"


def mark(item: Mapping[str, Any], version: Mapping[str, Any]) -> str:
    if version["running"]:
        return "← running" if item["state"] == "running" else f"← live, {item['state']}"
    return "← rollback" if version["rollback"] else ""


def indented(title: str, rows: Sequence[Sequence[str]], empty: str) -> list[str]:
    if not rows:
        return [f"  {title}: {empty}"]
    return [f"  {title}:", *(f"    {line}" for line in format_table(rows))]


def clock(iso: str | None) -> str:
    """`2026-11-29 14:23:15Z`."""
    return iso.replace("T", " ") if iso else "-"


def ago(iso: str, now: float) -> str:
    seconds = max(0, int(now - parse_iso(iso).timestamp()))
    if seconds < 120:
        return f"{seconds} s ago"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min ago"
    hours = minutes // 60
    return f"{hours} h {minutes % 60} min ago" if hours < 48 else f"{hours // 24} d {hours % 24} h ago"

"""Who holds a deploy lock: the holder's name and run, this machine's identity, whether a holder provably no
longer runs, and a lock's owner file as read back (stdlib only, vendored with the step scripts)."""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import steplib


def holder_name(environ: Mapping[str, str] = os.environ) -> str:
    """Who deploys: in Actions whoever started this attempt (a re-run's own actor; GitHub sets both),
    else the local user."""
    for name in ("GITHUB_TRIGGERING_ACTOR", "GITHUB_ACTOR"):
        actor = environ.get(name, "").strip()
        if actor:
            return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def run_id(environ: Mapping[str, str] = os.environ) -> str | None:
    return environ.get("GITHUB_RUN_ID") or environ.get("WFGEN_RUN_ID") or None


def host_identity() -> str | None:
    """The kernel boot and pid namespace this process runs in: processes with the same identity see the same
    pids. A container has a pid namespace of its own; a reboot, a new boot id. None without /proc (macOS):
    a holder there is never judged dead early."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        pid_namespace = str(Path("/proc/self/ns/pid").readlink())
    except (OSError, UnicodeDecodeError):
        return None
    return f"{boot} {pid_namespace}" if boot and pid_namespace else None


def process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks after boot, /proc/<pid>/stat field 22); None when no such
    process runs (gone, or a zombie that has exited)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # the command name in (...) may hold spaces and ')'
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def holder_gone(owner: Mapping[str, Any], here: str | None, hostname: str) -> bool:
    """True only when the owner file's holder provably no longer runs: it ran on this machine (same host
    identity and hostname) and its pid is gone or now belongs to a process that started at another time."""
    pid, started = owner.get("pid"), owner.get("pid_start")
    if here is None or owner.get("host_id") != here or owner.get("host") != hostname:
        return False
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or not isinstance(started, str):
        return False
    return process_start(pid) != started


@dataclass
class Holder:
    """What the owner file of a lock we do not hold says."""

    who: str
    since: str
    run: str | None
    age_s: float
    mtime: str
    owner: dict[str, Any] = field(default_factory=dict)
    gone: bool = False  # it ran on this machine and no longer runs
    text: str = ""  # the owner file as read

    def describe(self) -> str:
        run = f" (run {self.run})" if self.run else ""
        return f"{self.who} since {self.since}{run}"

    @property
    def pid(self) -> str:
        pid = self.owner.get("pid")
        return str(pid) if isinstance(pid, int) else "?"


def _local_clock(iso: str | None) -> str:
    if not iso:
        return "?"
    try:
        return steplib.parse_iso(iso).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return "?"


def parse_holder(lines: list[str]) -> Holder:
    now_text, mtime_text = (line.strip() for line in (lines + ["0", "0"])[:2])
    now = int(now_text) if now_text.isdigit() else 0
    mtime = int(mtime_text) if mtime_text.isdigit() else 0
    try:
        owner: dict[str, Any] = json.loads(lines[2]) if len(lines) > 2 else {}
    except json.JSONDecodeError:
        owner = {}
    if not isinstance(owner, dict):
        owner = {}
    who = f"{owner.get('holder', '?')}@{owner.get('host', '?')}" if owner else "an unknown holder"
    age = float(now - mtime) if mtime else 0.0
    since = _local_clock(owner.get("since"))
    gone = holder_gone(owner, host_identity(), socket.gethostname())
    run = owner.get("run_id")
    text = lines[2] if len(lines) > 2 else ""
    return Holder(who, since, run, age, mtime_text, owner=owner, gone=gone, text=text)

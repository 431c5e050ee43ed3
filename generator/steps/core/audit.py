"""The audit log on the target, `<state_dir>/audit.log`: one line per deploy or rollback, appended when it
ends, read back by `wfgen status`, by a rollback choosing where to go, and by prune (docs/design.md).

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass

from .holder import holder_name, run_id
from .transport import Target

AUDIT_LINES = 5000  # the newest lines of the audit log are read; a deploy older than those is not seen
ACTIONS = ("deploy", "rollback")
# Print the audit log's newest lines; nothing while there is no log yet. `tail` where the target has it.
_READ_AUDIT = (
    'f=$1; [ -e "$f" ] || exit 0; '
    'if command -v tail >/dev/null 2>&1; then exec tail -n "$2" -- "$f"; fi; exec cat -- "$f"'
)


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log: `<when> <who> <service> <commit> <result> <seconds>s [run=<id>] [action=…]`.

    Fields after the sixth are `key=value`, so a later one can be added without breaking a reader that splits
    on blanks. Lines written before the run was recorded have no `run=`; before rollbacks, no `action=`."""

    at: str  # UTC, ISO 8601 to the second
    who: str  # the GitHub actor, or the local user
    service: str
    commit: str | None
    result: str
    duration_s: float | None
    run: str | None  # GITHUB_RUN_ID in a workflow, the `wfgen deploy` run id locally
    action: str = "deploy"  # or "rollback": a `deployed` rollback counts as a deploy of its commit

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def _word(text: str) -> str:
    """One field of the line: blanks would shift every field after it."""
    return "_".join(text.split()) or "?"


def audit_line(
    service: str,
    commit: str | None,
    result: str,
    duration_s: float,
    environ: Mapping[str, str] = os.environ,
    *,
    action: str = "deploy",
) -> str:
    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    run = run_id(environ)
    tail = (f" run={_word(run)}" if run else "") + f" action={_word(action)}"
    who = _word(holder_name(environ))
    return f"{when} {who} {service} {commit or '-'} {result} {duration_s:.1f}s{tail}"


def parse_audit_line(line: str) -> AuditEntry | None:
    """The entry a line records, or None for a line that is not one (cut short, or not wfgen's)."""
    fields = line.split()
    if len(fields) < 6 or not fields[5].endswith("s"):
        return None
    at, who, service, commit, result, duration = fields[:6]
    extra = dict(field.partition("=")[::2] for field in fields[6:] if "=" in field)
    try:
        seconds: float | None = float(duration[:-1])
    except ValueError:
        seconds = None
    return AuditEntry(
        at, who, service, None if commit == "-" else commit, result, seconds, extra.get("run"),
        extra.get("action") or "deploy",
    )  # fmt: skip


def append_audit(target: Target, state_dir: str, line: str) -> None:
    """One line per deploy in <state_dir>/audit.log on the target (O_APPEND keeps concurrent lines whole)."""
    path = audit_path(target, state_dir)
    script = 'mkdir -p -- "$(dirname -- "$2")" && printf "%s\\n" "$1" >> "$2"'
    target.run(["sh", "-c", script, "sh", line, path], timeout=60)


def audit_path(target: Target, state_dir: str) -> str:
    return target.home_path(f"{state_dir.rstrip('/')}/audit.log")


def read_audit(target: Target, path: str) -> tuple[list[AuditEntry], str | None]:
    """The audit log's entries, oldest first, and a note when it cannot be read (the rest still can)."""
    result = target.run(["sh", "-c", _READ_AUDIT, "sh", path, str(AUDIT_LINES)], timeout=60)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        return [], f"the audit log cannot be read: {detail}"
    lines = result.stdout.splitlines()[-AUDIT_LINES:]
    return [entry for entry in map(parse_audit_line, lines) if entry is not None], None


def service_deploys(entries: Sequence[AuditEntry], service: str) -> list[AuditEntry]:
    """One service's entries, newest first."""
    return [entry for entry in reversed(entries) if entry.service == service]


def rollback_commit(running: str | None, deploys: Sequence[AuditEntry], kept: Collection[str]) -> str | None:
    """Where a rollback would go: the newest `deployed` entry (deploy or rollback) of another commit than the
    running one whose image is still kept. `deploys` newest first; `kept` the commits of the kept images."""
    if running is None:
        return None
    for entry in deploys:
        if entry.result == "deployed" and entry.commit and entry.commit != running and entry.commit in kept:
            return entry.commit
    return None

"""Helpers shared by the step scripts: manifest option, options from env, log lines, outputs, status files.

Stdlib only: these files are vendored into `.github/wfgen/` and run with a bare `python3`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import enum
import json
import math
import os
import secrets
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .names import SERVICE_NAME


class Exit(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


class UsageError(Exception):
    """Bad input to a step: reported as one line on stderr, exit 2."""


# The deploy job's timeout-minutes is this much above deploy_timeout_minutes, the deploy's own deadline: time
# for the checkout before the step and for the step's cleanup after its deadline. Nothing of a live deploy is
# older. (Here, not in deployment.py, so that `wfgen render` reads it without the deploy code.)
JOB_MARGIN_MINUTES = 5
# WFGEN_SECRET_SET_<NAME> tells check_infrastructure whether secret NAME is set; it never sees the value.
SECRET_SET_PREFIX = "WFGEN_SECRET_SET_"


def secret_flag(name: str) -> str:
    """The variable that tells the check whether secret `name` is set, so the check never holds its value."""
    return SECRET_SET_PREFIX + name


RESULTS_OK = frozenset({"deployed", "unchanged"})
RESULTS_FINAL = frozenset({"deployed", "unchanged", "failed", "rolled_back", "cancelled", "skipped"})


def default_manifest_path() -> Path:
    """manifest.json beside the job entry scripts, one folder above the steps package (.github/wfgen/)."""
    return Path(__file__).resolve().parents[2] / "manifest.json"


def add_manifest_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--manifest",
        default=os.environ.get("WFGEN_MANIFEST") or str(default_manifest_path()),
        help="resolved manifest JSON written by 'wfgen render' (env WFGEN_MANIFEST)",
    )


def env_default(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def parse_bool(text: str | bool | None, *, what: str) -> bool:
    if isinstance(text, bool):
        return text
    if text is None or text.strip() == "":
        return False
    lowered = text.strip().lower()
    if lowered in {"true", "1", "yes", "on"}:
        return True
    if lowered in {"false", "0", "no", "off"}:
        return False
    raise UsageError(f"{what}: expected true or false, got {text!r}")


def log_subject(service: str | None, default: str) -> str:
    """What a step's lines start with before its --service is known valid: the name when it is well formed,
    else `default`. A raw value never starts a line: one holding a line break could emit a workflow command
    (`::add-mask::`); the error message names it with repr()."""
    return service if service and SERVICE_NAME.fullmatch(service) else default


def clock() -> str:
    return dt.datetime.now().strftime("%H:%M:%S")


# What every log line, error line and status message passes through before it leaves the step: status JSON
# files are uploaded as artifacts, which GitHub does not mask. Installed with `redacting()`.
_REDACTIONS: list[Callable[[str], str]] = []


def redact(text: str) -> str:
    """`text` with every secret value known to this step replaced by the name of its variable."""
    for redaction in _REDACTIONS:
        text = redaction(text)
    return text


@contextlib.contextmanager
def redacting(*redactions: Callable[[str], str]) -> Iterator[None]:
    """Within the block, log(), error(), quote() and StatusFile messages are redacted by these too."""
    _REDACTIONS.extend(redactions)
    try:
        yield
    finally:
        for redaction in redactions:
            _REDACTIONS.remove(redaction)


def hide_values(values: Mapping[str, str]) -> Callable[[str], str]:
    """A redaction replacing each non-empty value (longest first) by `$NAME`, wherever it occurs."""
    pairs = sorted(((value, name) for name, value in values.items() if value), key=lambda pair: -len(pair[0]))

    def hide(text: str) -> str:
        for value, name in pairs:
            text = text.replace(value, f"${name}")
        return text

    return hide


def log(service: str, message: str) -> None:
    print(f"[{clock()}] {service}: {redact(message)}", flush=True)


def quote(line: str) -> None:
    """One line of a tool's own output (a build, a container's log), indented under the log line."""
    print(f"    | {redact(line)}", flush=True)


def error(subject: str, message: str) -> None:
    print(f"{subject}: {redact(message)}", file=sys.stderr, flush=True)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def write_github_output(values: Mapping[str, str], path: str | None = None) -> None:
    """Append `name<<DELIM ... DELIM` blocks to $GITHUB_OUTPUT; the delimiter never occurs in a value."""
    target = path if path is not None else os.environ.get("GITHUB_OUTPUT")
    if not target:
        return
    with Path(target).open("a", encoding="utf-8") as handle:
        for name, value in values.items():
            delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
            while delimiter in value:
                delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
            handle.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A status file, or None when it is missing or unreadable (a leg that never reported)."""
    try:
        with Path(path).open(encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError, RecursionError):  # ValueError: bad JSON, UTF-8, or a number of 4300+ digits
        return None
    return data if isinstance(data, dict) else None


def status_record(service: str, branch: str, **fields: Any) -> dict[str, Any]:
    """A status JSON with every key of docs/design.md; the runner writes one for a leg it never started."""
    record: dict[str, Any] = {
        "service": service,
        "result": "running",
        "phase": "lock",
        "branch": branch,
        "started_at": None,
        "finished_at": None,
        "duration_s": None,
        "commit": None,
        "image": None,
        "previous_image": None,
        "message": "",
        "log_path": None,
        "plan_id": None,
        "phases": [],
    }
    unknown = sorted(fields.keys() - record.keys())
    if unknown:
        raise TypeError(f"not a status key: {', '.join(unknown)}")
    return {**record, **fields}


def as_seconds(value: Any) -> float | None:
    """A duration from a status file: a finite, non-negative number, else None (not bool, not a string)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an int of hundreds of digits
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class StatusFile:
    """The per-service status JSON, rewritten atomically at every phase change."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        service: str,
        branch: str,
        log_path: str | None = None,
        plan_id: str | None = None,
    ):
        self.path = Path(path)
        started = now_iso()
        first = [{"phase": "lock", "at": started}]
        self.data = status_record(
            service, branch, started_at=started, message="starting", log_path=log_path, phases=first,
            plan_id=plan_id,
        )  # fmt: skip
        self._save()

    def update(self, *, phase: str | None = None, **fields: Any) -> None:
        if phase is not None and phase != self.data["phase"]:
            self.data["phase"] = phase
            self.data["phases"].append({"phase": phase, "at": now_iso()})
        if "message" in fields:
            fields["message"] = redact(fields["message"])
        self.data.update(fields)
        self._save()

    def finish(self, result: str, message: str, **fields: Any) -> None:
        finished = now_iso()
        elapsed = (parse_iso(finished) - parse_iso(self.data["started_at"])).total_seconds()
        self.data.update(fields)
        self.data.update(
            result=result, message=redact(message), finished_at=finished, duration_s=round(elapsed, 3)
        )
        if result in RESULTS_OK:
            self.data["phase"] = "done"
            self.data["phases"].append({"phase": "done", "at": finished})
        self._save()

    def _save(self) -> None:
        write_json_atomic(self.path, self.data)


def safe_stdio() -> None:
    """Never crash on a non-UTF-8 console (LANG=C under `python -I`): unprintable characters become '?'."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and (stream.encoding or "").lower().replace("-", "") != "utf8":
            reconfigure(errors="replace")


# Names of one deploy's scratch files and folders, which a later deploy's sweep (leftovers.py) recognises.


def scratch_name(service: str) -> str:
    """`<service>-<12 hex>`: the name of one deploy's env-file, login dir or clone under the state dir."""
    return f"{service}-{secrets.token_hex(6)}"


def runner_prefix(kind: str) -> str:
    """Prefix of a temporary dir on the runner (`ssh`, `docker`), naming this process so a sweep can tell."""
    return f"wfgen-{kind}-{os.getpid()}-"

"""The deploy report over the legs' status files: one row per selected service, the verdict, the speedup."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import steplib
from .report_text import RESULT_ICONS, UNKNOWN_ICON, result_icon

MAX_DEPTH = 3
MAX_FILES = 2000
COLUMNS = ("Service", "Result", "Duration", "Image / commit", "Message")
WORDS = {"rolled_back": "rolled back", "queued": "never started"}


@dataclass
class Row:
    service: str
    status: dict[str, Any] | None
    note: str = ""
    not_started: bool = False  # the infrastructure check failed, so no leg ran

    @property
    def result(self) -> str | None:
        if self.status is None:
            return None
        value = self.status.get("result")
        return value if isinstance(value, str) else repr(value)

    @property
    def ok(self) -> bool:
        return self.result in steplib.RESULTS_OK

    @property
    def label(self) -> tuple[str, str]:
        """(icon, words): `✅ deployed`; a leg still `running` in its last report did not finish."""
        result = self.result
        if result is None:
            if self.not_started:
                return (RESULT_ICONS["skipped"], "not started")
            return (UNKNOWN_ICON, "no report")
        if result == "running":
            return (RESULT_ICONS["failed"], "did not finish")
        if result not in RESULT_ICONS:
            return (UNKNOWN_ICON, f"unknown result {result!r}")
        return (result_icon(result), WORDS.get(result, result))

    def field(self, key: str) -> Any:
        return None if self.status is None else self.status.get(key)

    def time(self, key: str) -> dt.datetime | None:
        return timestamp(self.field(key))

    @property
    def duration(self) -> float | None:
        reported = steplib.as_seconds(self.field("duration_s"))
        if reported is not None:
            return reported
        started, finished = self.time("started_at"), self.time("finished_at")
        return (finished - started).total_seconds() if started and finished else None

    @property
    def message(self) -> str:
        text = self.note or str(self.field("message") or "")
        if self.result == "running":
            text = f"stopped during {self.field('phase')}: {text}"
        return text

    @property
    def short_commit(self) -> str:
        return short_commit(self.field("commit"))

    def cells(self) -> tuple[str, str, str, str, str]:
        """The table row as plain text (COLUMNS); each renderer escapes or trims it for its medium."""
        image = self.field("image")
        image_commit = " · ".join(part for part in (str(image) if image else "", self.short_commit) if part)
        return (self.service, " ".join(self.label), format_duration(self.duration), image_commit or "—",
                self.message)  # fmt: skip


@dataclass(frozen=True)
class Report:
    """What the job summary and `wfgen deploy` show: one row per selected service, the legs' timing."""

    rows: list[Row]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(row.ok for row in self.rows)

    @property
    def figures(self) -> tuple[float, float, float] | None:
        return speedup(self.rows)


def short_commit(commit: object) -> str:
    return commit[:7] if isinstance(commit, str) else ""


def find_status_files(root: Path) -> dict[str, tuple[Path, dict[str, Any] | None]]:
    """`*.json` under root (artifact downloads nest a folder per leg), keyed by service; newest start wins."""
    found: dict[str, tuple[Path, dict[str, Any] | None]] = {}
    seen = 0
    for folder, dirs, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        dirs[:] = sorted(dirs) if depth < MAX_DEPTH else []
        for name in sorted(files):
            if not name.endswith(".json") or seen >= MAX_FILES:
                continue
            seen += 1
            path = Path(folder, name)
            data = load_status(path)
            service = data["service"] if data and isinstance(data.get("service"), str) else path.stem
            if service not in found or _newer(data, found[service][1]):
                found[service] = (path, data)
    if seen >= MAX_FILES:
        steplib.error("deployment-summary", f"{root}: stopped after {MAX_FILES} status files")
    return found


def this_plan(status: dict[str, Any] | None, plan_id: str) -> bool:
    """False for the report of another plan: an earlier attempt of the run, before "Re-run all jobs"."""
    return status is None or status.get("plan_id") in (None, plan_id)


def load_status(path: Path) -> dict[str, Any] | None:
    """A status file, or None when it is missing, unreadable, or not a status (no `result`)."""
    data = steplib.read_json(path)
    return data if data is not None and "result" in data else None


def _newer(candidate: dict[str, Any] | None, current: dict[str, Any] | None) -> bool:
    if candidate is None:
        return False
    if current is None:
        return True
    return str(candidate.get("started_at") or "") > str(current.get("started_at") or "")


def build_rows(
    selected: list[str] | None, found: dict[str, Any], order: list[str], check_result: str | None = None
) -> list[Row]:
    names = selected if selected is not None else list(found)
    rank = {name: i for i, name in enumerate(order)}
    names = sorted(names, key=lambda name: (rank.get(name, len(rank)), names.index(name)))
    rows = []
    for name in names:
        if check_result not in (None, "", "success"):  # no leg ran; a file from an earlier run is not news
            rows.append(Row(name, None, f"infrastructure check: {check_result}", not_started=True))
        elif name not in found:
            rows.append(Row(name, None, "no status file"))
        else:
            path, data = found[name]
            rows.append(Row(name, data, "" if data is not None else f"unreadable status file {path.name}"))
    return rows


def build_report(
    selected: list[str] | None, found: dict[str, Any], order: list[str], check_result: str | None = None
) -> Report:
    """The report over status files: `found` maps a service to (path, status dict or None)."""
    return Report(build_rows(selected, found, order, check_result))


def speedup(rows: list[Row]) -> tuple[float, float, float] | None:
    """(speedup, sum of leg durations, wall time) over the legs that reported both start and finish."""
    legs = [(row.time("started_at"), row.time("finished_at"), row.duration) for row in rows]
    timed = [(start, end, took) for start, end, took in legs if start and end and took is not None]
    if not timed:
        return None
    total = sum(took for _, _, took in timed)
    wall = (max(end for _, end, _ in timed) - min(start for start, _, _ in timed)).total_seconds()
    return (total / wall if wall > 0 else 1.0), total, wall


def verdict(rows: list[Row]) -> str:
    total, failed = len(rows), sum(not row.ok for row in rows)
    noun = "service" if total == 1 else "services"
    if not rows:
        return "❔ no deployment reports found"
    if all(row.not_started for row in rows):
        return f"❌ infrastructure check failed: none of {total} {noun} deployed"
    if failed:
        skipped = sum(row.result == "skipped" for row in rows)
        if skipped == failed:
            return f"❌ {skipped} of {total} {noun} skipped"
        extra = f", {skipped} skipped" if skipped else ""
        return f"❌ {failed - skipped} of {total} {noun} failed{extra}"
    unchanged = sum(row.result == "unchanged" for row in rows)
    return f"✅ {total}/{total} {noun} deployed" + (f" ({unchanged} unchanged)" if unchanged else "")


def format_duration(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.1f} s"


def speedup_line(figures: tuple[float, float, float] | None) -> str:
    if figures is None:
        return "Parallel speedup: n/a (no leg reported both a start and a finish)"
    ratio, total, wall = figures
    return f"Parallel speedup: {ratio:.1f}× (sum of leg durations {total:.1f} s / wall time {wall:.1f} s)"


def timestamp(value: Any) -> dt.datetime | None:
    """A status timestamp; naive ones are taken as UTC so legs can be compared."""
    try:
        stamp = steplib.parse_iso(value)
    except (TypeError, ValueError, AttributeError):
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)

"""The legs on a time axis: a mermaid gantt for the job summary, text bars for a terminal."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from .report import Row, timestamp
from .report_text import format_table

TIMELINE_WIDTH = 40


@dataclass(frozen=True)
class Span:
    """One leg on the timeline: from its start to its finish (or last phase change)."""

    service: str
    start: dt.datetime
    end: dt.datetime
    ok: bool


def spans(rows: list[Row]) -> list[Span]:
    found = []
    for row in rows:
        start = row.time("started_at")
        if start is not None:
            end = row.time("finished_at") or _last_phase(row) or start
            found.append(Span(row.service, start, max(end, start), row.ok))
    return found


def gantt(legs: list[Span]) -> list[str]:
    lines = ["```mermaid", "gantt", "    title Deploy legs", "    dateFormat x", "    axisFormat %H:%M:%S"]
    lines.append("    todayMarker off")
    for index, leg in enumerate(legs):
        start_ms, end_ms = int(leg.start.timestamp() * 1000), int(leg.end.timestamp() * 1000)
        name = re.sub(r"[^A-Za-z0-9_. -]", "_", leg.service)
        tag = "" if leg.ok else "crit, "
        lines += [
            f"    section {name}",
            f"    {name} :{tag}leg{index}, {start_ms}, {max(end_ms, start_ms + 1)}",
        ]
    return [*lines, "```"]


def text_timeline(legs: list[Span], width: int = TIMELINE_WIDTH) -> list[str]:
    """The gantt for a terminal: one bar per leg on a shared time axis (`#` for a leg that failed)."""
    if not legs:
        return []
    origin, last = min(leg.start for leg in legs), max(leg.end for leg in legs)
    total = max((last - origin).total_seconds(), 1e-9)
    rows = []
    for leg in legs:
        first = int((leg.start - origin).total_seconds() / total * width)
        stop = max(first + 1, round((leg.end - origin).total_seconds() / total * width))
        bar = "·" * first + ("█" if leg.ok else "#") * (min(stop, width) - first)
        rows.append((leg.service, f"|{bar.ljust(width, '·')}|"))
    return [f"Timeline: 0 s to {total:.1f} s", *format_table(rows)]


def _last_phase(row: Row) -> dt.datetime | None:
    phases = row.field("phases")
    if not isinstance(phases, list) or not phases or not isinstance(phases[-1], dict):
        return None
    return timestamp(phases[-1].get("at"))

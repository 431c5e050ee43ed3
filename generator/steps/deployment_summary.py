"""Collect the per-service status files into one report: verdict, table, timeline, parallel speedup."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core import config, handoff, steplib

MAX_DEPTH = 3
MAX_FILES = 2000
TERMINAL_MESSAGE = 120  # characters of a failed leg's message in the terminal table
TIMELINE_WIDTH = 40
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
                return (steplib.RESULT_ICONS["skipped"], "not started")
            return (steplib.UNKNOWN_ICON, "no report")
        if result == "running":
            return (steplib.RESULT_ICONS["failed"], "did not finish")
        if result not in steplib.RESULT_ICONS:
            return (steplib.UNKNOWN_ICON, f"unknown result {result!r}")
        return (steplib.result_icon(result), WORDS.get(result, result))

    def field(self, key: str) -> Any:
        return None if self.status is None else self.status.get(key)

    def time(self, key: str) -> dt.datetime | None:
        return _timestamp(self.field(key))

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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deployment_summary.py", description=__doc__)
    parser.add_argument(
        "--status-dir",
        default=steplib.env_default("WFGEN_STATUS_DIR", "wfgen-status"),
        help="folder holding <service>.json status files, searched recursively (env WFGEN_STATUS_DIR)",
    )
    parser.add_argument(
        "--services",
        default=steplib.env_default("WFGEN_SELECTED"),
        help="JSON list of selected services, from prepare; default: every status file (env WFGEN_SELECTED)",
    )
    parser.add_argument(
        "--check-result",
        default=steplib.env_default("WFGEN_CHECK_RESULT"),
        help="result of the check-infrastructure job: success, failure, ... (env WFGEN_CHECK_RESULT)",
    )
    parser.add_argument(
        "--plan",
        default=steplib.env_default("WFGEN_PLAN"),
        help="the run's plan JSON: a service it gave no deploy job is unchanged (env WFGEN_PLAN)",
    )
    parser.add_argument("--output", help="also write the Markdown report to this file")
    steplib.add_manifest_option(parser)
    return parser.parse_args(argv)


def parse_selected(text: str | None) -> list[str] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise steplib.UsageError(f"--services/WFGEN_SELECTED must be a JSON list of names, got {text[:80]!r}")
    return list(dict.fromkeys(value))


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
    return [f"Timeline: 0 s to {total:.1f} s", *steplib.format_table(rows)]


def _last_phase(row: Row) -> dt.datetime | None:
    phases = row.field("phases")
    if not isinstance(phases, list) or not phases or not isinstance(phases[-1], dict):
        return None
    return _timestamp(phases[-1].get("at"))


def _timestamp(value: Any) -> dt.datetime | None:
    """A status timestamp; naive ones are taken as UTC so legs can be compared."""
    try:
        stamp = steplib.parse_iso(value)
    except (TypeError, ValueError, AttributeError):
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def markdown(report: Report) -> str:
    """The job summary: verdict, table, mermaid gantt, speedup. Every cell is escaped: legs wrote them."""
    rows = report.rows
    lines = [f"## {verdict(rows)}", ""]
    if rows:
        lines += ["| " + " | ".join(COLUMNS) + " |", "| --- | --- | ---: | --- | --- |"]
        for row in rows:
            service, result, duration, _, message = (steplib.markdown_cell(text) for text in row.cells())
            image = row.field("image")
            image_cell = [f"`{steplib.markdown_cell(str(image))}`" if image else ""]
            image_cell.append(steplib.markdown_cell(row.short_commit))
            image_commit = " · ".join(part for part in image_cell if part) or "—"
            lines.append(f"| {service} | {result} | {duration} | {image_commit} | {message} |")
        lines.append("")
        legs = spans(rows)
        if legs:
            lines += [*gantt(legs), ""]
    lines.append(speedup_line(report.figures))
    return "\n".join(lines) + "\n"


def terminal_rows(report: Report) -> list[tuple[str, str, str, str, str]]:
    """(icon, service, result, duration, commit + first line of a failure) for a terminal table."""
    table = []
    for row in report.rows:
        first_line = row.message.splitlines()[0] if row.message.strip() else ""
        extra = "" if row.ok else first_line[:TERMINAL_MESSAGE]
        icon, words = row.label
        table.append((icon, row.service, words, format_duration(row.duration), " ".join(
            part for part in (row.short_commit, extra) if part)))  # fmt: skip
    return table


def plain_text(report: Report) -> str:
    """The same report for a log or a terminal: verdict, table, text timeline, speedup."""
    rows = terminal_rows(report)
    table, icons = [row[1:] for row in rows], [row[0] for row in rows]
    lines = [verdict(report.rows)]
    lines += [f"{icon} {line}" for icon, line in zip(icons, steplib.format_table(table), strict=True)]
    lines += text_timeline(spans(report.rows))
    return "\n".join([*lines, speedup_line(report.figures)]) + "\n"


def run(args: argparse.Namespace) -> int:
    selected = parse_selected(args.services)
    manifest = config.load(args.manifest)
    root = Path(args.status_dir)
    found: dict[str, Any] = {}
    if root.is_dir():
        found = find_status_files(root)
    else:
        steplib.error("deployment-summary", f"{root}: status folder not found; no leg reported")
    document = None
    try:
        document = handoff.decode(args.plan) if args.plan else None
    except steplib.UsageError as exc:  # the report still helps: said, then left out
        steplib.error("deployment-summary", f"{exc}; services without a deploy job show no report")
    if document:
        found = {name: item for name, item in found.items() if this_plan(item[1], document["id"])}
        for name, status in handoff.without_legs(document).items():
            found.setdefault(name, (Path(f"{name}.json"), status))
    report = build_report(selected, found, list(manifest.services), args.check_result)
    text = markdown(report)
    in_job = steplib.append_step_summary(text)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    print(plain_text(report), end="" if in_job else "\n", flush=True)
    if not in_job:
        print(text, end="", flush=True)
    return steplib.Exit.OK if report.ok else steplib.Exit.FAILED


def main(argv: list[str] | None = None) -> int:
    steplib.safe_stdio()
    args = parse_args(argv)
    try:
        return run(args)
    except steplib.UsageError as exc:
        steplib.error("deployment-summary", str(exc))
        return steplib.Exit.USAGE


if __name__ == "__main__":
    raise SystemExit(main())

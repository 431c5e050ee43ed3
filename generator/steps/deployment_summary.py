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

from . import steplib

MAX_DEPTH = 3
MAX_FILES = 2000
MESSAGE_LIMIT = 300
LABELS = {
    "deployed": ("✅", "deployed"),
    "unchanged": ("♻️", "unchanged"),
    "failed": ("❌", "failed"),
    "rolled_back": ("↩️", "rolled back"),
    "cancelled": ("🛑", "cancelled"),
    "running": ("❌", "did not finish"),
    "skipped": ("⏭️", "skipped"),
    "queued": ("⏳", "never started"),
    None: ("❔", "no report"),
}


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
        if self.status is None and self.not_started:
            return ("⏭️", "not started")
        return LABELS.get(self.result, ("❔", f"unknown result {self.result!r}"))

    def field(self, key: str) -> Any:
        return None if self.status is None else self.status.get(key)

    def time(self, key: str) -> dt.datetime | None:
        return _timestamp(self.field(key))

    @property
    def duration(self) -> float | None:
        value = self.field("duration_s")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
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
        commit = self.field("commit")
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
            data = steplib.read_json(path)
            if data is not None and "result" not in data:
                data = None
            service = data["service"] if data and isinstance(data.get("service"), str) else path.stem
            if service not in found or _newer(data, found[service][1]):
                found[service] = (path, data)
    if seen >= MAX_FILES:
        steplib.error("deployment-summary", f"{root}: stopped after {MAX_FILES} status files")
    return found


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
        if name not in found:
            if check_result not in (None, "", "success"):
                rows.append(Row(name, None, f"infrastructure check: {check_result}", not_started=True))
            else:
                rows.append(Row(name, None, "no status file"))
            continue
        path, data = found[name]
        rows.append(Row(name, data, "" if data is not None else f"unreadable status file {path.name}"))
    return rows


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
        return f"❌ {failed} of {total} {noun} failed"
    unchanged = sum(row.result == "unchanged" for row in rows)
    return f"✅ {total}/{total} {noun} deployed" + (f" ({unchanged} unchanged)" if unchanged else "")


def cell(text: str) -> str:
    text = text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return text.replace("\r\n", "\n").replace("\n", "<br>")


def image_cell(row: Row) -> str:
    parts = [f"`{cell(str(row.field('image')))}`" if row.field("image") else "", row.short_commit]
    return " · ".join(part for part in parts if part) or "—"


def format_duration(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.1f} s"


def speedup_line(figures: tuple[float, float, float] | None) -> str:
    if figures is None:
        return "Parallel speedup: n/a (no leg reported both a start and a finish)"
    ratio, total, wall = figures
    return f"Parallel speedup: {ratio:.1f}× (sum of leg durations {total:.1f} s / wall time {wall:.1f} s)"


def gantt(rows: list[Row]) -> list[str]:
    lines = ["```mermaid", "gantt", "    title Deploy legs", "    dateFormat x", "    axisFormat %H:%M:%S"]
    lines.append("    todayMarker off")
    for index, row in enumerate(rows):
        start = row.time("started_at")
        if start is None:
            continue
        end = row.time("finished_at") or _last_phase(row) or start
        start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        name = re.sub(r"[^A-Za-z0-9_. -]", "_", row.service)
        tag = "" if row.ok else "crit, "
        lines += [
            f"    section {name}",
            f"    {name} :{tag}leg{index}, {start_ms}, {max(end_ms, start_ms + 1)}",
        ]
    return [*lines, "```"]


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


def markdown(rows: list[Row], figures: tuple[float, float, float] | None) -> str:
    lines = [f"## {verdict(rows)}", ""]
    if rows:
        lines += [
            "| Service | Result | Duration | Image / commit | Message |",
            "| --- | --- | ---: | --- | --- |",
        ]
        for row in rows:
            emoji, word = row.label
            lines.append(
                f"| {cell(row.service)} | {emoji} {word} | {format_duration(row.duration)} "
                f"| {image_cell(row)} | {cell(row.message)} |"
            )
        lines.append("")
        if any(row.time("started_at") for row in rows):
            lines += [*gantt(rows), ""]
    lines.append(speedup_line(figures))
    return "\n".join(lines) + "\n"


def plain_text(rows: list[Row], figures: tuple[float, float, float] | None) -> str:
    table = []
    for row in rows:
        first_line = row.message.splitlines()[0] if row.message.strip() else ""
        extra = "" if row.ok else first_line[:120]
        table.append((row.service, row.label[1], format_duration(row.duration), row.short_commit, extra))
    widths = [max((len(line[i]) for line in table), default=0) for i in range(5)]
    lines = [verdict(rows)]
    for row, line in zip(rows, table, strict=True):
        text = "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        lines.append(f"{row.label[0]} {text}".rstrip())
    return "\n".join([*lines, speedup_line(figures)]) + "\n"


def run(args: argparse.Namespace) -> int:
    selected = parse_selected(args.services)
    manifest = steplib.load_manifest(args.manifest)
    root = Path(args.status_dir)
    if not root.is_dir():
        steplib.error("deployment-summary", f"{root}: status folder not found; no leg reported")
    found = find_status_files(root) if root.is_dir() else {}
    rows = build_rows(selected, found, list(manifest.get("services", {})), args.check_result)
    figures = speedup(rows)
    report = markdown(rows, figures)
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        with Path(summary_path).open("a", encoding="utf-8") as handle:
            handle.write(report)
    if args.output:
        Path(args.output).write_text(report, encoding="utf-8")
    print(plain_text(rows, figures), end="" if summary_path else "\n", flush=True)
    if not summary_path:
        print(report, end="", flush=True)
    return steplib.Exit.OK if rows and all(row.ok for row in rows) else steplib.Exit.FAILED


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

"""Collect the per-service status files into one report: verdict, table, timeline, parallel speedup."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .core import config_load, handoff, steplib
from .core import github_badges as github
from .core.report import (  # also what the local runner and `wfgen status` import from here
    COLUMNS,
    Report,
    Row,
    build_report,
    find_status_files,
    format_duration,
    load_status,
    short_commit,
    speedup_line,
    this_plan,
    verdict,
)
from .core.report_text import append_step_summary, format_table, markdown_cell
from .core.timeline import gantt, spans, text_timeline

TERMINAL_MESSAGE = 120  # characters of a failed leg's message in the terminal table

__all__ = [
    "COLUMNS", "Report", "Row", "build_report", "format_duration", "load_status",
    "main", "markdown", "plain_text", "short_commit", "spans", "speedup_line", "text_timeline", "verdict",
]  # fmt: skip


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


def markdown(report: Report) -> str:
    """The job summary: verdict, table, mermaid gantt, speedup. Every cell is escaped: legs wrote them. With
    GitHub deployments, each service links to its environment's deployments and a column shows its state."""
    rows = report.rows
    lines = [f"## {verdict(rows)}", ""]
    if rows:
        recorded = any(github.record(row.field("github")) for row in rows)
        columns = (*COLUMNS, "GitHub") if recorded else COLUMNS
        align = "| --- | --- | ---: | --- | --- |" + (" --- |" if recorded else "")
        lines += ["| " + " | ".join(columns) + " |", align]
        for row in rows:
            service, result, duration, _, message = (markdown_cell(text) for text in row.cells())
            image = row.field("image")
            image_cell = [f"`{markdown_cell(str(image))}`" if image else ""]
            image_cell.append(markdown_cell(row.short_commit))
            image_commit = " · ".join(part for part in image_cell if part) or "—"
            cells = [service, result, duration, image_commit, message]
            if recorded:
                record = github.record(row.field("github"))
                cells[0] = github.linked(service, record)
                cells.append(github.badge(record))
            lines.append("| " + " | ".join(cells) + " |")
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
    lines += [f"{icon} {line}" for icon, line in zip(icons, format_table(table), strict=True)]
    lines += text_timeline(spans(report.rows))
    return "\n".join([*lines, speedup_line(report.figures)]) + "\n"


def run(args: argparse.Namespace) -> int:
    selected = parse_selected(args.services)
    manifest = config_load.load(args.manifest)
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
    in_job = append_step_summary(text)
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

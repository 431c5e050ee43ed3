"""Progress output of `wfgen deploy`: a rich live table on a terminal, timestamped lines otherwise."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from generator.local.legs import Event, Leg
from generator.local.runlog import display_path, failed_with_logs, tail
from generator.steps.core.report_text import result_icon
from generator.steps.core.steplib import RESULTS_OK, clock
from generator.steps.deployment_summary import (
    COLUMNS,
    Report,
    format_duration,
    plain_text,
    short_commit,
    spans,
    speedup_line,
    text_timeline,
    verdict,
)

REFRESH_S = 1.0
_CLOCK = re.compile(r"^\[\d\d:\d\d:\d\d\] ")  # a step's own timestamp on a line we relay


def describe_result(leg: Leg) -> str:
    """`deployed 9f1c2ab in 33 s`, `failed at health after 12 s: candidate never healthy`."""
    duration = leg.duration()
    took = f"{duration:.0f} s" if duration is not None else None
    commit = short_commit(leg.status.get("commit")) or "-"
    if leg.result in RESULTS_OK:
        return f"{leg.result} {commit} in {took}"
    if leg.result in ("skipped", "cancelled") and leg.started is None:
        return f"{leg.result}: {leg.message}"
    where = f" at {leg.phase}" if leg.phase not in ("queued", "done") else ""
    after = f" after {took}" if took else ""
    return f"{leg.result}{where}{after}: {leg.message}"


def brief(leg: Leg) -> str:
    """The table cell: `deployed 9f1c2ab`, `failed at health`; the full message goes to the summary."""
    if leg.result in RESULTS_OK:
        return f"{leg.result} {short_commit(leg.status.get('commit')) or '-'}"
    if leg.result == "queued" and leg.waiting:
        return waiting_text(leg)
    if leg.phase in ("queued", "done") or leg.result == "running":
        return leg.result
    return f"{leg.result} at {leg.phase}"


def waiting_text(leg: Leg) -> str:
    """`waiting for auth-service`: a queued leg whose dependencies have not ended yet."""
    return "waiting for " + ", ".join(leg.waiting)


def progress_text(legs: list[Leg]) -> str:
    return f"Progress: {sum(1 for leg in legs if leg.finished)}/{len(legs)} completed"


class Reporter:
    """Quiet: nothing while running; the summary at the end, as a table (terminal) or lines."""

    def __init__(self, stream: TextIO, *, terminal: bool):
        self.stream = stream
        self.terminal = terminal

    def note(self, icon: str, subject: str, message: str) -> None:
        """One stage line, e.g. the prepare result."""

    def block(self, subject: str, text: str) -> None:
        """Multi-line output of a step, e.g. the infrastructure table."""

    def begin(self, legs: list[Leg]) -> None:
        """The deploy stage starts."""

    def event(self, event: Event, legs: list[Leg]) -> None:
        """A leg started, changed phase or ended."""

    def tick(self, legs: list[Leg]) -> None:
        """Called every poll (~0.2 s)."""

    def end(self) -> None:
        """The deploy stage is over."""

    def summary(self, report: Report, record: dict[str, Any], base: Path) -> None:
        """The job's summary (deployment_summary's report), then where the logs are and failed logs' tails."""
        if self.terminal:
            rich_summary(Console(file=self.stream), report, record, base)
        else:
            plain_summary(self.stream, report, record, base)


class LineReporter(Reporter):
    """Not a terminal: `[14:23:45] ✅ auth-service: deployed 9f1c2ab in 33 s`, one line per change."""

    def line(self, icon: str, subject: str, message: str) -> None:
        print(f"[{clock()}] {icon} {subject}: {message}", file=self.stream, flush=True)

    def note(self, icon: str, subject: str, message: str) -> None:
        self.line(icon, subject, message)

    def block(self, subject: str, text: str) -> None:
        for row in text.splitlines():
            if row.strip():
                self.line("🔍", subject, _CLOCK.sub("", row.rstrip()))  # one timestamp per line is enough

    def event(self, event: Event, legs: list[Leg]) -> None:
        leg = event.leg
        if event.kind == "start":
            self.line("🚀", leg.service, f"started (log {display_path(leg.log_path, Path.cwd())})")
        elif event.kind == "phase":
            self.line("🔄", leg.service, leg.phase)
        elif event.kind == "wait":
            self.line(result_icon("queued"), leg.service, waiting_text(leg))
        else:
            self.line(result_icon(leg.result), leg.service, describe_result(leg))
            self.line("📊", "Progress", progress_text(legs).removeprefix("Progress: "))


class LiveReporter(Reporter):
    """A terminal: a table redrawn about once a second, stage lines printed above it."""

    def __init__(self, stream: TextIO):
        super().__init__(stream, terminal=True)
        self.console = Console(file=stream)
        self.live: Live | None = None
        self._drawn = 0.0

    def note(self, icon: str, subject: str, message: str) -> None:
        # Messages come from steps and logs: '[...]' in them is text, never rich markup.
        self.console.print(
            f"[dim]{clock()}[/] {icon} [bold]{escape(subject)}[/]: {escape(message)}", highlight=False
        )

    def block(self, subject: str, text: str) -> None:
        self.console.print(Text(text.rstrip("\n")))

    def begin(self, legs: list[Leg]) -> None:
        self.live = Live(self._render(legs), console=self.console, auto_refresh=False, transient=False)
        self.live.start(refresh=True)
        self._drawn = time.monotonic()

    def event(self, event: Event, legs: list[Leg]) -> None:
        self._draw(legs)

    def tick(self, legs: list[Leg]) -> None:
        if time.monotonic() - self._drawn >= REFRESH_S:
            self._draw(legs)

    def end(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _draw(self, legs: list[Leg]) -> None:
        if self.live is not None:
            self.live.update(self._render(legs), refresh=True)
            self._drawn = time.monotonic()

    @staticmethod
    def _render(legs: list[Leg]) -> Group:
        table = Table(title="wfgen deploy", title_justify="left")
        for column in ("service", "phase", "elapsed", "result"):
            table.add_column(column)
        now = time.monotonic()
        for leg in legs:
            elapsed = leg.elapsed(now)
            table.add_row(
                leg.service,
                leg.phase,
                format_duration(elapsed),
                Text(f"{result_icon(leg.result)} {brief(leg)}"),
            )
        return Group(table, Text(progress_text(legs), style="bold"))


def rich_summary(console: Console, report: Report, record: dict[str, Any], base: Path) -> None:
    table = Table(title=verdict(report.rows), title_justify="left")
    for column in COLUMNS:
        table.add_column(column)
    for row in report.rows:
        table.add_row(*(Text(cell) for cell in row.cells()))
    console.print(table)
    timeline = text_timeline(spans(report.rows))
    if timeline:
        console.print(Text("\n".join(timeline)))
    console.print(Text(speedup_line(report.figures), style="bold"))
    for name, item in failed_with_logs(record):
        reason = escape(str(item["message"] or item["result"]))
        console.print(f"[bold red]── {escape(name)}[/]: {reason} (last lines of its log)", highlight=False)
        console.print(Text("\n".join(tail(Path(item["log_path"])))))
    console.print(Text(run_line(record, base)), highlight=False)


def plain_summary(stream: TextIO, report: Report, record: dict[str, Any], base: Path) -> None:
    def line(icon: str, subject: str, message: str) -> None:
        print(f"[{clock()}] {icon} {subject}: {message}", file=stream, flush=True)

    for row in plain_text(report).splitlines():
        line("📋", "summary", row)
    for name, item in failed_with_logs(record):
        for row in tail(Path(item["log_path"])):
            line("📄", name, f"| {row}")
    line("⏱️", "summary", run_line(record, base))


def run_line(record: dict[str, Any], base: Path) -> str:
    folder = display_path(Path(record["run_dir"]), base) if record.get("run_dir") else record["run_id"]
    return f"Run {record['run_id']} took {format_duration(record['wall_s'])}; logs and summary.md in {folder}"


def make_reporter(stream: TextIO, *, mode: str) -> Reporter:
    """mode: "auto" (live table on a terminal, lines otherwise), "quiet" (summary only), "json" (nothing)."""
    terminal = stream.isatty()
    if mode == "auto":
        return LiveReporter(stream) if terminal else LineReporter(stream, terminal=False)
    return Reporter(stream, terminal=terminal)

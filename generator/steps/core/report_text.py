"""How steps show results: result icons, Markdown table cells, plain-text tables, and the job summary.

Stdlib only: vendored with the step scripts; steplib names all of these too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

RESULT_ICONS = {
    "deployed": "✅",
    "unchanged": "♻️",
    "failed": "❌",
    "rolled_back": "↩️",
    "cancelled": "🛑",
    "skipped": "⏭️",
    "queued": "⏳",
    "running": "🔄",
}
UNKNOWN_ICON = "❔"
CELL_LIMIT = 300


def result_icon(result: object) -> str:
    return RESULT_ICONS.get(result, UNKNOWN_ICON) if isinstance(result, str) else UNKNOWN_ICON


def markdown_cell(text: str, limit: int = CELL_LIMIT) -> str:
    """Text for one Markdown table cell (or heading): no HTML, no column break, one line, at most `limit`."""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def format_table(rows: Sequence[Sequence[str]], headers: Sequence[str] = ()) -> list[str]:
    """Plain-text columns, left-aligned, two spaces apart, no trailing blanks: the plan and summary tables."""
    table = [tuple(row) for row in ([headers] if headers else []) + list(rows)]
    if not table:
        return []
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]


def append_step_summary(text: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Append Markdown to the job summary ($GITHUB_STEP_SUMMARY); False when there is none (not in a job)."""
    path = environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(text)
    return True

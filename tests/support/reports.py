"""What a workflow run leaves behind, read back: the legs' status reports, the plan's and the summary's table."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

# A service's cell is its name, or its name linked to its GitHub deployment: `[api](https://…)`.
_ROW = re.compile(r"^\| \[?([\w-]+)(?:\]\([^)\s]+\))? \| (\S+ \w+(?: \w+)?) \|", re.MULTILINE)


def status_reports(artifacts: Path) -> list[dict[str, Any]]:
    """The status JSON each leg uploaded (artifacts `wfgen-status-<service>`), by artifact name."""
    return [json.loads(path.read_text()) for path in sorted(artifacts.glob("wfgen-status-*/*.json"))]


def summary_rows(markdown: str) -> dict[str, str]:
    """service -> "<emoji> <result>" from the Markdown table of the deployment summary (after any plan)."""
    heading = re.search(r"^## ", markdown, re.MULTILINE)
    assert heading, markdown
    return {match.group(1): match.group(2) for match in _ROW.finditer(markdown[heading.start() :])}


def plan_rows(markdown: str) -> dict[str, str]:
    """service -> "<emoji> <verdict>" from the plan's table, up to the next heading (the target checks)."""
    heading = "### Deployment plan\n"
    start = markdown.find(heading)
    assert start >= 0, markdown
    table = re.split(r"^#", markdown[start + len(heading) :], maxsplit=1, flags=re.MULTILINE)[0]
    return {match.group(1): match.group(2) for match in _ROW.finditer(table)}


def github_cells(markdown: str) -> dict[str, str]:
    """service cell as written (its name, or its name linked to its deployments page) -> its GitHub badge, from
    the deployment summary's table."""
    table = markdown[markdown.index("| Service |") :].split("\n\n", 1)[0].splitlines()
    assert table[0].endswith("| GitHub |"), table[0]
    return {cells[0]: cells[-1] for cells in (row.strip("| ").split(" | ") for row in table[2:])}

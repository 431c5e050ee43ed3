"""A service's GitHub deployment in the job summary: its name linked to the environment's deployments page,
and its state as an emoji badge (no image host: the summary loads nothing from elsewhere)."""

from __future__ import annotations

import re
from typing import Any

BADGES = {
    "success": "🟢 active",
    "inactive": "⚪ inactive",
    "failure": "🔴 failure",
    "error": "🔴 error",
    "in_progress": "🟡 in progress",
}
SAFE_URL = re.compile(r"https?://[A-Za-z0-9._~:/%@!$&'*+,;=-]+")  # no space, bracket or parenthesis


def record(value: Any) -> dict[str, Any] | None:
    """The `github` entry of a status file (id, environment, state, url), or None when there is none."""
    if isinstance(value, dict) and isinstance(value.get("id"), int) and isinstance(value.get("state"), str):
        return value
    return None


def linked(cell: str, deployment: dict[str, Any] | None) -> str:
    """An escaped table cell, linked to the deployments page when its URL is plainly a URL."""
    url = deployment.get("url") if deployment else None
    return f"[{cell}]({url})" if isinstance(url, str) and SAFE_URL.fullmatch(url) else cell


def badge(deployment: dict[str, Any] | None) -> str:
    if deployment is None:
        return "—"  # a skipped leg, one that never started, or a call that failed (its warning says why)
    state = str(deployment["state"])
    return BADGES.get(state, "⚫ " + re.sub(r"[^a-z_]", "", state)[:20])

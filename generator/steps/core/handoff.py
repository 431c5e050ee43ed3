"""The plan as the later jobs get it (`WFGEN_PLAN`): names, commits and numbers, hex-encoded.

GitHub drops a job output that contains the value of any secret. A plan in plain JSON says "deploy", and
"deploy" is a common VPS_USER: the output would vanish and the later waves would lose their dependency check.
Hex holds only 0-9a-f, so no such word can appear in it. The full table, reasons and commit subjects stay in
the plan job's own summary.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from . import steplib
from .names import is_commit

# What the later jobs read of each service: the gate its `needs`, the summary its `running` commit, the leg
# its `desired` one (it deploys exactly what the plan showed, not what the branch points to by then).
FIELDS = ("service", "running", "desired", "needs")
WHAT = "WFGEN_PLAN: not the plan of this run (hex-encoded JSON written by plan.py)"


def encode(document: Mapping[str, Any]) -> str:
    services = [{key: item[key] for key in FIELDS} for item in document["services"]]
    slim = {
        "id": document["id"],
        "branch": document["branch"],
        "legs": document["legs"],
        "services": services,
    }
    return json.dumps(slim, separators=(",", ":")).encode().hex()


def decode(text: str) -> dict[str, Any]:
    """The plan passed on; UsageError (one line) when it is not one."""
    try:
        document = json.loads(bytes.fromhex(text.strip()).decode())
        ok = isinstance(document, dict) and isinstance(document["id"], str)
        ok = ok and isinstance(document["legs"], list) and isinstance(document["branch"], str)
        ok = ok and all(
            isinstance(item, dict)
            and isinstance(item["service"], str)
            and isinstance(item["needs"], list)
            and (item["desired"] is None or is_commit(item["desired"]))
            for item in document["services"]
        )
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise steplib.UsageError(WHAT)
    return dict(document)


def without_legs(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A status report for each service the plan gave no deploy job (a push where it runs already)."""
    reports = {}
    for item in document["services"]:
        name, running = item["service"], item["running"]
        if name in document["legs"]:
            continue
        message = f"{running[:7] if running else '-'} runs already; no deploy job"
        reports[name] = steplib.status_record(
            name, document["branch"], result="unchanged", phase="done", commit=running, message=message,
            plan_id=document["id"],
        )  # fmt: skip
    return reports

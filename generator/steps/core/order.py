"""The order `depends_on` asks for: each service's depth, the waves of the workflow, and whether a
dependency's result lets a service deploy.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts. The manifest is validated to be
acyclic before anything here runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .steplib import RESULTS_OK, UsageError, read_json


def depths(graph: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """0 for a service with no dependencies, else one more than its deepest dependency."""
    found: dict[str, int] = {}

    def depth(name: str, seen: tuple[str, ...]) -> int:
        if name in found:
            return found[name]
        if name in seen:
            raise ValueError("dependency cycle: " + " -> ".join([*seen, name]))
        needs = list(graph.get(name, ()))
        found[name] = 1 + max((depth(dep, (*seen, name)) for dep in needs), default=-1)
        return found[name]

    for name in graph:
        depth(name, ())
    return found


def waves(graph: Mapping[str, Iterable[str]], selected: Iterable[str] | None = None) -> list[list[str]]:
    """The services by depth, in graph order within a wave: one list per depth of the whole graph, so a
    wave keeps its number when a selection leaves it empty."""
    depth = depths(graph)
    chosen = set(graph if selected is None else selected)
    count = max(depth.values(), default=-1) + 1
    return [[name for name in graph if depth[name] == level and name in chosen] for level in range(count)]


def unmet(needs: Iterable[str], results: Mapping[str, str | None]) -> list[tuple[str, str]]:
    """(dependency, why) for each of `needs` that is not met; a dependency absent from `results` was not
    selected and is taken as it runs."""
    problems = []
    for name in needs:
        if name not in results:
            continue
        result = results[name]
        if result not in RESULTS_OK:  # deployed or unchanged: anything else skips its dependents
            problems.append((name, result or "missing"))
    return problems


def describe_unmet(problems: list[tuple[str, str]]) -> str:
    """'dependency auth-service failed', 'dependencies a failed, b skipped'."""
    noun = "dependency" if len(problems) == 1 else "dependencies"
    return f"{noun} " + ", ".join(
        f"{name} {'ended without a report' if why == 'missing' else why.replace('_', ' ')}"
        for name, why in problems
    )


def dependency_results(plan: Mapping[str, Any], service: str, folder: Path) -> dict[str, str | None]:
    """The results of `service`'s selected dependencies, from the plan (`unchanged` when the plan gave a
    dependency no deploy job) and this run's reports of the earlier waves in `folder`: a report of another
    plan (an earlier attempt, before "Re-run all jobs") does not count."""
    item = next((entry for entry in plan["services"] if entry["service"] == service), None)
    if item is None:
        raise UsageError(f"WFGEN_PLAN: {service!r} is not in the plan of this run")
    results: dict[str, str | None] = {}
    for name in item["needs"]:
        if name not in plan["legs"]:
            results[name] = "unchanged"
            continue
        status = read_json(folder / f"{name}.json")
        ours = status is not None and status.get("service") == name and status.get("plan_id") == plan["id"]
        found = status.get("result") if ours and status else None
        results[name] = found if isinstance(found, str) else None
    return results

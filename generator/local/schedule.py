"""Which queued deploy legs start now: `depends_on` order, greedy, within max_parallel.

A leg starts as soon as every selected service it depends on has ended `deployed` or `unchanged`, not when
a whole wave has; it never starts, and ends `skipped`, once one of them ended any other way. Dependencies
that are not selected in the run do not hold a leg back: it deploys against whatever runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from generator.steps.core.order import depths, describe_unmet, unmet
from generator.steps.core.steplib import RESULTS_FINAL

Needs = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Decision:
    """What to do with the queued legs now."""

    start: list[str]  # in leg order, at most the free slots
    skip: dict[str, str]  # never to start: service -> "dependency auth-service failed"
    waiting: dict[str, tuple[str, ...]]  # queued behind dependencies that have not ended yet


def selected_needs(names: Iterable[str], graph: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    """Each selected service's dependencies among the selected ones; ValueError on a cycle (it would wait
    for ever)."""
    chosen = list(names)
    needs = {name: tuple(dep for dep in graph.get(name, ()) if dep in chosen) for name in chosen}
    depths(needs)
    return needs


def decide(results: Mapping[str, str], needs: Needs, free: int) -> Decision:
    """`results`: every leg of the run in start order, with its result now (queued, running or final);
    a dependency absent from it was not selected."""
    results = dict(results)
    skip: dict[str, str] = {}
    changed = True
    while changed:  # transitive in one call: c is skipped as soon as b is, whatever the leg order
        changed = False
        for name in [name for name, result in results.items() if result == "queued"]:
            ended = [dep for dep in needs.get(name, ()) if results.get(dep) in RESULTS_FINAL]
            problems = unmet(ended, results)
            if problems:
                skip[name], results[name], changed = describe_unmet(problems), "skipped", True
    ready: list[str] = []
    waiting: dict[str, tuple[str, ...]] = {}
    for name in [name for name, result in results.items() if result == "queued"]:
        pending = tuple(
            dep for dep in needs.get(name, ()) if dep in results and results[dep] not in RESULTS_FINAL
        )
        if pending:
            waiting[name] = pending
        else:
            ready.append(name)
    return Decision(ready[: max(0, free)], skip, waiting)

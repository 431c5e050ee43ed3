from __future__ import annotations

import pytest

from generator.local.schedule import Decision, decide, selected_needs

CHAIN = {"a": (), "b": ("a",), "c": ("b",), "x": ()}


@pytest.mark.parametrize(
    ("results", "free", "expected"),
    [
        ({"a": "queued", "b": "queued", "c": "queued", "x": "queued"}, 6,
         Decision(["a", "x"], {}, {"b": ("a",), "c": ("b",)})),
        ({"a": "queued", "b": "queued", "c": "queued", "x": "queued"}, 1,
         Decision(["a"], {}, {"b": ("a",), "c": ("b",)})),
        # b starts as soon as a is done, while x (its wave) still runs
        ({"a": "deployed", "b": "queued", "c": "queued", "x": "running"}, 5, Decision(["b"], {}, {"c": ("b",)})),
        ({"a": "unchanged", "b": "queued", "c": "queued", "x": "running"}, 0, Decision([], {}, {"c": ("b",)})),
        # transitive, whatever the leg order
        ({"c": "queued", "b": "queued", "a": "failed", "x": "running"}, 5,
         Decision([], {"b": "dependency a failed", "c": "dependency b skipped"}, {})),
        ({"a": "rolled_back", "b": "queued", "c": "queued", "x": "queued"}, 5,
         Decision(["x"], {"b": "dependency a rolled back", "c": "dependency b skipped"}, {})),
        ({"a": "deployed", "b": "cancelled", "c": "queued", "x": "deployed"}, 5,
         Decision([], {"c": "dependency b cancelled"}, {})),
        # not selected: b deploys against whatever runs
        ({"b": "queued", "c": "queued"}, 5, Decision(["b"], {}, {"c": ("b",)})),
    ],
)  # fmt: skip
def test_decide(results: dict[str, str], free: int, expected: Decision) -> None:
    assert decide(results, CHAIN, free) == expected


def test_a_leg_is_skipped_as_soon_as_one_dependency_fails_and_says_which() -> None:
    needs = {"app": ("db", "cache", "auth"), "db": (), "cache": (), "auth": ()}
    results = {"db": "failed", "cache": "running", "auth": "skipped", "app": "queued"}
    assert decide(results, needs, 4).skip == {"app": "dependencies db failed, auth skipped"}


def test_selected_needs_keep_selected_dependencies_only_and_refuse_a_cycle() -> None:
    graph = {"a": [], "b": ["a"], "c": ["b", "a"]}
    assert selected_needs(["a", "c"], graph) == {"a": (), "c": ("a",)}
    with pytest.raises(ValueError, match="dependency cycle"):
        selected_needs(["a", "b"], {"a": ["b"], "b": ["a"]})

from __future__ import annotations

import pytest

from generator.steps.core.order import depths, describe_unmet, unmet, waves

CHAIN = {"a": [], "b": ["a"], "c": ["b"], "x": [], "y": ["a", "c"]}


def test_depths_follow_the_deepest_dependency() -> None:
    assert depths(CHAIN) == {"a": 0, "b": 1, "c": 2, "x": 0, "y": 3}


def test_waves_keep_graph_order_and_their_number_when_a_selection_empties_one() -> None:
    assert waves(CHAIN) == [["a", "x"], ["b"], ["c"], ["y"]]
    assert waves(CHAIN, ["y", "a"]) == [["a"], [], [], ["y"]]
    assert waves({"a": [], "b": []}) == [["a", "b"]]


def test_a_cycle_is_refused() -> None:
    with pytest.raises(ValueError, match="a -> b -> a"):
        depths({"a": ["b"], "b": ["a"]})


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ({"a": "deployed", "b": "unchanged"}, []),
        ({}, []),  # not selected: deploys against what runs
        ({"a": "failed", "b": "unchanged"}, [("a", "failed")]),
        ({"a": "rolled_back", "b": None}, [("a", "rolled_back"), ("b", "missing")]),
        ({"a": "skipped"}, [("a", "skipped")]),
    ],
)
def test_unmet(results: dict[str, str | None], expected: list[tuple[str, str]]) -> None:
    assert unmet(["a", "b"], results) == expected


def test_describe_unmet() -> None:
    assert describe_unmet([("auth-service", "failed")]) == "dependency auth-service failed"
    assert describe_unmet([("a", "rolled_back"), ("b", "missing")]) == (
        "dependencies a rolled back, b ended without a report"
    )

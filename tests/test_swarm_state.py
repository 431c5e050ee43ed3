"""What the swarm engine reads from the manager and says about it (tasks, updates, its network): no Docker
needed."""

from __future__ import annotations

import pytest

from generator.steps.engine.swarm import checks, state
from tests.support.recording import RecordingTarget, result

NEW, OLD = "reg/web@sha256:new", "reg/web@sha256:old"


def task(slot: int, node: str, image: str, *, desired: str = "running", now: str = "running") -> state.Task:
    return state.Task(f"t{slot}{node}", slot, node, image, desired, now, "", "2026-12-07T04:00:00Z")


def service(update_state: str, message: str = "") -> state.Service:
    return state.Service("s1", 9, NEW, 2, {}, update_state, "2026-12-07T04:00:00Z", message)


def test_an_update_that_never_ended_names_the_tasks_where_they_run_and_its_state() -> None:
    found = [task(1, "n1", NEW), task(2, "n3", NEW), task(2, "n2", OLD, desired="shutdown", now="running")]
    assert state.not_converged(found, NEW) == []
    assert state.update_unfinished(found, service("updating", "update in progress"), 2) == (
        "2 of 2 tasks run the new image (task.1 on n1 running, task.2 on n3 running); "
        "Swarm's update did not end (updating: update in progress)"
    )


def test_an_update_that_ended_with_a_task_missing_says_so() -> None:
    found = [task(1, "n1", NEW)]
    assert state.update_unfinished(found, service("completed", "update completed"), 2) == (
        "1 of 2 tasks run the new image (task.1 on n1 running); Swarm's update ended (completed: update completed)"
    )


def test_a_hundred_tasks_are_named_five_at_most() -> None:
    found = [task(slot, f"n{slot}", NEW) for slot in range(1, 101)]
    said = state.update_unfinished(found, service(""), 100)
    assert said.startswith("100 of 100 tasks run the new image (task.1 on n1 running, ")
    assert "task.5 on n5 running and 95 more); Swarm's update did not end (no update status)" in said
    assert "task.6 " not in said


def test_without_tasks_meant_to_run_nothing_runs_the_new_image() -> None:
    found = [task(1, "n3", OLD, desired="shutdown", now="shutdown")]
    assert state.update_unfinished(found, service("updating"), 1) == "no task runs the new image"


INSPECT = ("docker", "network", "inspect")


def test_a_network_swarm_has_not_allocated_yet_is_waited_for() -> None:
    """Right after `docker network create`, the manager inspects the network with no driver."""
    target = RecordingTarget({INSPECT: [result(" true\n"), result(" true\n"), result("overlay true\n")]})
    assert checks.ensure_overlay(target, "shop-net") == "exists (attachable overlay)"
    assert len(target.calls) == 3


@pytest.mark.parametrize("shown", ["bridge true\n", "overlay false\n"])
def test_a_network_of_another_kind_is_refused_at_once(shown: str) -> None:
    target = RecordingTarget({INSPECT: result(shown)})
    with pytest.raises(
        OSError, match=f"network shop-net is not an attachable overlay network \\({shown.strip()}\\)"
    ):
        checks.ensure_overlay(target, "shop-net")
    assert len(target.calls) == 1

"""What the swarm engine says about tasks and updates, from the manager's JSON: no Docker needed."""

from __future__ import annotations

from generator.steps.engine.swarm import state


def task(slot: int, node: str, image: str, *, desired: str = "running", now: str = "running") -> state.Task:
    return state.Task(f"t{slot}{node}", slot, node, image, desired, now, "", "2026-12-07T04:00:00Z")


def service(update_state: str, message: str) -> state.Service:
    return state.Service("s1", 9, "reg/web@sha256:new", 2, {}, update_state, "2026-12-07T04:00:00Z", message)


def test_an_update_that_never_ended_names_the_tasks_where_they_run_and_its_state() -> None:
    found = [
        task(1, "n1", "reg/web@sha256:new"),
        task(2, "n2", "reg/web@sha256:new"),
        task(2, "n3", "reg/web@sha256:old", desired="shutdown", now="running"),
    ]
    assert state.not_converged(found, "reg/web@sha256:new") == []
    said = state.update_unfinished(found, service("updating", "update in progress"))
    assert said == (
        "task.1 on n1 running, task.2 on n2 running, but Swarm's update did not end "
        "(updating: update in progress)"
    )


def test_without_tasks_meant_to_run_nothing_runs_the_new_image() -> None:
    found = [task(1, "n3", "reg/web@sha256:old", desired="shutdown", now="shutdown")]
    assert state.update_unfinished(found, service("updating", "")) == "no task runs the new image"
    assert state.update_unfinished([task(1, "n1", "x")], None).endswith("(no update status)")

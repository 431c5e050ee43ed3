"""LegPool with real child processes (small Python programs that report through steplib.StatusFile)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from generator.local.legs import Leg, LegPool
from generator.steps.core.steplib import parse_iso, read_json
from tests.support.fleet import max_overlap
from tests.support.stepscripts import PACKAGE_ROOT

# A stand-in leg: reports phases like deploy_service.py, sleeps, ends with the result from argv.
CHILD = f"""
import signal, sys, time
sys.path.insert(0, {str(PACKAGE_ROOT)!r})
from generator.steps.core import steplib
status = steplib.StatusFile(sys.argv[1], sys.argv[2], "main")
def cancel(signum, frame):
    status.finish("cancelled", "stopped by signal")
    raise SystemExit(1)
if sys.argv[5] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, cancel)
status.update(phase="build")
time.sleep(float(sys.argv[3]))
result = sys.argv[4]
if result == "crash":
    raise SystemExit(3)
status.finish(result, result)
raise SystemExit(0 if result in ("deployed", "unchanged") else 1)
"""


def make_pool(
    tmp_path: Path, plan: dict[str, tuple[float, str]], max_parallel: int, **kwargs: object
) -> LegPool:
    legs = [Leg(name, "main", tmp_path / f"{name}.json", tmp_path / f"{name}.log") for name in plan]

    def argv(leg: Leg) -> list[str]:
        seconds, result = plan[leg.service]
        mode = "ignore-term" if result == "ignore-term" else "normal"
        return [sys.executable, "-c", CHILD, str(leg.status_path), leg.service, str(seconds), result, mode]

    return LegPool(legs, argv, dict(os.environ), max_parallel, **kwargs)  # type: ignore[arg-type]


def drive(pool: LegPool, timeout: float = 60) -> list[tuple[str, str]]:
    events, deadline = [], time.monotonic() + timeout
    while not pool.done and time.monotonic() < deadline:
        events += [(event.leg.service, event.kind) for event in pool.step()]
        time.sleep(0.05)
    pool.close()
    assert pool.done
    return events


def test_pool_never_exceeds_max_parallel_and_reports_every_change(tmp_path: Path) -> None:
    plan = {f"s{i}": (0.4, "deployed") for i in range(5)}
    pool = make_pool(tmp_path, plan, max_parallel=2)
    events = drive(pool)
    assert [leg.result for leg in pool.legs] == ["deployed"] * 5
    assert max_overlap([read_json(leg.status_path) for leg in pool.legs]) == 2  # type: ignore[misc]
    for name in plan:
        assert [kind for service, kind in events if service == name] == ["start", "phase", "result"]
    assert all(leg.phase == "done" and leg.exit_code == 0 for leg in pool.legs)


def test_a_crash_without_report_is_a_failure_and_does_not_touch_the_others(tmp_path: Path) -> None:
    pool = make_pool(tmp_path, {"a": (0.1, "crash"), "b": (0.3, "deployed"), "c": (0.1, "failed")}, 3)
    drive(pool)
    by_name = {leg.service: leg for leg in pool.legs}
    assert by_name["a"].result == "failed" and "exited with code 3" in by_name["a"].message
    assert by_name["b"].result == "deployed" and by_name["c"].result == "failed"
    written = json.loads(by_name["a"].status_path.read_text(encoding="utf-8"))  # the summary reads this file
    assert written["result"] == "failed" and "exited with code 3" in written["message"]
    assert written["finished_at"] is not None


def test_fail_fast_skips_what_was_queued(tmp_path: Path) -> None:
    pool = make_pool(tmp_path, {"a": (0.1, "failed"), "b": (0.1, "deployed"), "c": (0.1, "deployed")}, 1,
                     fail_fast=True)  # fmt: skip
    drive(pool)
    assert [leg.result for leg in pool.legs] == ["failed", "skipped", "skipped"]
    assert read_json(tmp_path / "b.json")["result"] == "skipped"  # type: ignore[index]


def test_cancel_terms_running_legs_and_cancels_queued_ones(tmp_path: Path) -> None:
    pool = make_pool(tmp_path, {"a": (30, "deployed"), "b": (30, "deployed"), "c": (30, "deployed")}, 2)
    pool.step()
    deadline = time.monotonic() + 10
    while not all(read_json(leg.status_path) for leg in pool.legs[:2]) and time.monotonic() < deadline:
        time.sleep(0.05)
    pool.cancel()
    drive(pool, timeout=20)
    assert [leg.result for leg in pool.legs] == ["cancelled"] * 3
    assert pool.legs[2].proc is None  # never started


def phase(leg: Leg) -> str | None:
    status = read_json(leg.status_path)
    return None if status is None else status.get("phase")


def test_kill_ends_a_leg_that_ignores_sigterm(tmp_path: Path) -> None:
    pool = make_pool(tmp_path, {"stubborn": (60, "ignore-term")}, 1)
    pool.step()
    deadline = time.monotonic() + 10
    while phase(pool.legs[0]) != "build" and time.monotonic() < deadline:  # SIGTERM ignored by then
        time.sleep(0.05)
    pool.cancel()
    time.sleep(0.5)  # time for a SIGTERM to end it, had it not been ignored
    pool.step()
    assert pool.legs[0].running  # SIGTERM ignored
    pool.kill()
    drive(pool, timeout=10)
    assert pool.legs[0].result == "cancelled" and pool.legs[0].exit_code == -signal.SIGKILL


CHAIN = {"b": ["a"], "c": ["b"]}


def started_after(status: dict[str, object], before: dict[str, object]) -> float:
    """Seconds from `before`'s finish to `status`'s start, from their status files."""
    return (parse_iso(str(status["started_at"])) - parse_iso(str(before["finished_at"]))).total_seconds()


def finished(status: dict[str, object]) -> dt.datetime:
    return parse_iso(str(status["finished_at"]))


def test_a_leg_starts_when_its_dependencies_end_not_when_their_wave_does(tmp_path: Path) -> None:
    plan = {"a": (0.5, "deployed"), "b": (0.5, "deployed"), "c": (0.5, "deployed"),
            "fast": (0.1, "deployed"), "slow": (6.0, "deployed")}  # fmt: skip
    pool = make_pool(tmp_path, plan, max_parallel=6, depends_on=CHAIN)
    events = drive(pool)
    assert [leg.result for leg in pool.legs] == ["deployed"] * 5
    status = {leg.service: read_json(leg.status_path) or {} for leg in pool.legs}
    for leg, dependency in (("b", "a"), ("c", "b")):
        assert started_after(status[leg], status[dependency]) >= 0, (leg, status)
    # Waves would start b once slow, in a's wave, ended: greedy has finished the whole chain by then.
    assert finished(status["c"]) < finished(status["slow"]), status
    assert [kind for service, kind in events if service == "c"] == ["wait", "start", "phase", "result"]
    assert [kind for service, kind in events if service == "slow"][0] == "start"


def test_max_parallel_holds_with_dependencies(tmp_path: Path) -> None:
    plan = {name: (0.4, "deployed") for name in ("a", "b", "c", "x", "y")}
    pool = make_pool(tmp_path, plan, max_parallel=2, depends_on={"b": ["a"], "c": ["a"]})
    drive(pool)
    status = [read_json(leg.status_path) or {} for leg in pool.legs]
    assert [item["result"] for item in status] == ["deployed"] * 5
    assert max_overlap(status) == 2
    assert started_after(status[1], status[0]) >= 0 and started_after(status[2], status[0]) >= 0
    assert started_after(status[3], status[0]) < 0  # x took the slot b and c could not use yet


@pytest.mark.parametrize(
    ("end", "reported"), [("failed", "failed"), ("crash", "failed"), ("rolled_back", "rolled back")]
)
def test_a_failed_dependency_skips_its_dependents_transitively(
    tmp_path: Path, end: str, reported: str
) -> None:
    plan = {"a": (0.2, end), "b": (0.1, "deployed"), "c": (0.1, "deployed"), "x": (0.5, "deployed")}
    pool = make_pool(tmp_path, plan, max_parallel=4, depends_on=CHAIN)
    drive(pool)
    by_name = {leg.service: leg for leg in pool.legs}
    assert by_name["x"].result == "deployed" and by_name["a"].result == ("failed" if end == "crash" else end)
    for name, message in (("b", f"dependency a {reported}"), ("c", "dependency b skipped")):
        assert (by_name[name].result, by_name[name].message, by_name[name].proc) == ("skipped", message, None)
        written = read_json(by_name[name].status_path)  # the summary reads this file
        assert written is not None and (written["result"], written["message"]) == ("skipped", message)
        assert written["started_at"] is None and written["finished_at"] is not None


def test_unchanged_counts_as_met(tmp_path: Path) -> None:
    pool = make_pool(tmp_path, {"a": (0.1, "unchanged"), "b": (0.1, "deployed")}, 2, depends_on={"b": ["a"]})
    drive(pool)
    assert [leg.result for leg in pool.legs] == ["unchanged", "deployed"]


def test_fail_fast_names_the_dependency_where_there_is_one(tmp_path: Path) -> None:
    plan = {"a": (0.1, "failed"), "b": (0.1, "deployed"), "x": (0.1, "deployed")}
    pool = make_pool(tmp_path, plan, 1, fail_fast=True, depends_on={"b": ["a"]})
    drive(pool)
    assert [(leg.result, leg.message) for leg in pool.legs] == [
        ("failed", "failed"),
        ("skipped", "dependency a failed"),
        ("skipped", "not started: an earlier service failed (--fail-fast)"),
    ]


def test_cancel_while_legs_wait_for_dependencies(tmp_path: Path) -> None:
    plan = {"a": (30, "deployed"), "b": (0.1, "deployed"), "c": (0.1, "deployed"), "x": (30, "deployed")}
    pool = make_pool(tmp_path, plan, 4, depends_on=CHAIN)
    events = [(event.leg.service, event.kind) for event in pool.step()]
    assert events == [("a", "start"), ("b", "wait"), ("c", "wait"), ("x", "start")]
    assert [leg.waiting for leg in pool.legs] == [(), ("a",), ("b",), ()]
    deadline = time.monotonic() + 10
    while not all(read_json(tmp_path / f"{name}.json") for name in "ax") and time.monotonic() < deadline:
        time.sleep(0.05)
    pool.cancel()
    drive(pool, timeout=20)
    assert [leg.result for leg in pool.legs] == ["cancelled"] * 4
    for leg in pool.legs[1:3]:
        assert leg.proc is None and leg.message == "not started: the run was interrupted"
        assert (read_json(leg.status_path) or {}).get("result") == "cancelled"

"""Progress output: timestamped lines off a terminal, a rich live table on one, and the summary."""

from __future__ import annotations

import io
import re
from pathlib import Path

from generator.local.legs import Event, Leg
from generator.local.progress import LineReporter, LiveReporter, Reporter, make_reporter, plain_summary
from generator.steps.deployment_summary import Report, build_report

LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] \S+ [\w.-]+: \S.*$")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def leg(tmp_path: Path, name: str, result: str, phase: str, **status: object) -> Leg:
    item = Leg(name, "main", tmp_path / f"{name}.json", tmp_path / f"{name}.log", phase=phase, result=result)
    item.started, item.ended = 100.0, 133.4
    item.status = {"commit": "9f1c2ab0c1d2e3f4", "duration_s": 33.2, **status}
    item.message = str(status.get("message", ""))
    return item


def record(tmp_path: Path) -> dict[str, object]:
    log = tmp_path / "b.log"
    log.write_text("".join(f"line {i}\n" for i in range(40)))
    return {
        "run_id": "20261129-142315-ab12", "run_dir": str(tmp_path / "run"),
        "inputs": {"branch": "main", "force_rebuild": False},
        "wall_s": 40.0, "deploy_wall_s": 35.0, "sum_s": 66.4, "speedup": 1.9,
        "services": {
            "a": {"result": "deployed", "duration_s": 33.2, "commit": "9f1c2ab0c1", "log_path": None, "message": ""},
            "b": {"result": "failed", "duration_s": 33.2, "commit": None, "log_path": str(log), "message": "boom"},
        },
    }  # fmt: skip


def report(run: dict[str, object]) -> Report:
    """The deployment-summary report over status files shaped like the run's entries."""
    services = run["services"]
    assert isinstance(services, dict)
    found = {
        name: (Path(f"{name}.json"), {"service": name, "started_at": "2026-11-29T14:23:15.000Z",
                                      "finished_at": "2026-11-29T14:23:48.200Z", **item})
        for name, item in services.items()
    }  # fmt: skip
    return build_report(list(services), found, list(services))


def test_lines_name_the_service_phase_and_result(tmp_path: Path) -> None:
    out = io.StringIO()
    reporter = LineReporter(out, terminal=False)
    done = leg(tmp_path, "auth-service", "deployed", "done")
    failed = leg(tmp_path, "chat-service", "failed", "health", message="candidate never became healthy")
    building = leg(tmp_path, "user-service", "running", "build")
    reporter.event(Event(building, "phase"), [done, building])
    reporter.event(Event(done, "result"), [done, building])
    reporter.event(Event(failed, "result"), [done, failed])
    lines = out.getvalue().splitlines()
    assert all(LINE.match(line) for line in lines), lines
    assert lines[0].endswith("🔄 user-service: build")
    assert lines[1].endswith("✅ auth-service: deployed 9f1c2ab in 33 s")
    assert lines[2].endswith("📊 Progress: 1/2 completed")
    assert lines[3].endswith("❌ chat-service: failed at health after 33 s: candidate never became healthy")


def test_plain_summary_is_parseable_and_has_the_failed_tail(tmp_path: Path) -> None:
    out = io.StringIO()
    run = record(tmp_path)
    plain_summary(out, report(run), run, tmp_path)
    lines = out.getvalue().splitlines()
    assert all(LINE.match(line) for line in lines), lines
    assert lines[0].endswith("📋 summary: ❌ 1 of 2 services failed")
    assert lines[1].split()[3:] == ["✅", "a", "deployed", "33.2", "s", "9f1c2ab"]
    assert lines[2].split()[3:] == ["❌", "b", "failed", "33.2", "s", "boom"]
    assert lines[3].endswith("📋 summary: Timeline: 0 s to 33.2 s")
    assert lines[6].endswith(
        "📋 summary: Parallel speedup: 2.0× (sum of leg durations 66.4 s / wall time 33.2 s)"
    )
    tail = [line.split("| ", 1)[1] for line in lines if "📄 b: |" in line]
    assert tail == [f"line {i}" for i in range(25, 40)]
    assert lines[-1].endswith("⏱️ summary: Run 20261129-142315-ab12 took 40.0 s; logs and summary.md in run")


def test_live_table_draws_rows_and_progress(tmp_path: Path) -> None:
    out = Terminal()
    reporter = make_reporter(out, mode="auto")
    assert isinstance(reporter, LiveReporter)
    legs = [
        leg(tmp_path, "auth-service", "deployed", "done"),
        leg(tmp_path, "user-service", "running", "health"),
    ]
    reporter.begin(legs)
    reporter.event(Event(legs[0], "result"), legs)
    reporter.end()
    text = out.getvalue()
    for expected in ("service", "phase", "elapsed", "auth-service", "health", "Progress: 1/2 completed"):
        assert expected in text


def test_quiet_prints_only_the_summary(tmp_path: Path) -> None:
    out = io.StringIO()
    reporter = make_reporter(out, mode="quiet")
    assert type(reporter) is Reporter
    building = leg(tmp_path, "user-service", "running", "build")
    reporter.note("📋", "run", "starting")
    reporter.event(Event(building, "phase"), [building])
    assert out.getvalue() == ""
    run = record(tmp_path)
    reporter.summary(report(run), run, tmp_path)
    assert "📋 summary: ✅ a  deployed  33.2 s  9f1c2ab\n" in out.getvalue()


def test_live_output_prints_brackets_in_messages_as_text(tmp_path: Path) -> None:
    out = Terminal()
    reporter = make_reporter(out, mode="auto")
    reporter.note("📋", "run", "log folder /srv/[app]/runs [/bold] [Errno 2]")
    summary = record(tmp_path)
    summary["services"]["b"]["message"] = "[/red] [Errno 13] denied"  # type: ignore[index]
    reporter.summary(report(summary), summary, tmp_path)
    text = out.getvalue()
    assert "/srv/[app]/runs [/bold] [Errno 2]" in text
    assert "[/red] [Errno 13] denied" in text


def test_a_leg_that_waits_for_a_dependency_then_is_skipped(tmp_path: Path) -> None:
    """Never started: no elapsed time, no duration, no commit; the lines and the table still say why."""
    auth = leg(tmp_path, "auth-service", "failed", "health", message="candidate never became healthy")
    user = Leg(
        "user-service", "main", tmp_path / "user.json", tmp_path / "user.log", waiting=("auth-service",)
    )
    out, live = io.StringIO(), Terminal()
    lines, table = LineReporter(out, terminal=False), make_reporter(live, mode="auto")
    table.begin([auth, user])
    for reporter in (lines, table):
        reporter.event(Event(user, "wait"), [auth, user])
    assert "⏳ waiting for auth-service" in live.getvalue()
    user.result, user.message, user.waiting = "skipped", "dependency auth-service failed", ()
    for reporter in (lines, table):
        reporter.event(Event(user, "result"), [auth, user])
    table.end()
    assert [line.split(" ", 1)[1] for line in out.getvalue().splitlines()] == [
        "⏳ user-service: waiting for auth-service",
        "⏭️ user-service: skipped: dependency auth-service failed",
        "📊 Progress: 2/2 completed",
    ]
    assert "⏭️ skipped" in live.getvalue() and "Progress: 2/2 completed" in live.getvalue()

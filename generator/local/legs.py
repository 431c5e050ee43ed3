"""A bounded pool of deploy legs: one `deploy_service.py` child per service, watched via its status file,
started in `depends_on` order (generator/local/schedule.py)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from generator.local.schedule import decide, selected_needs
from generator.steps.core.steplib import (
    RESULTS_FINAL,
    RESULTS_OK,
    as_seconds,
    now_iso,
    parse_iso,
    read_json,
    status_record,
    write_json_atomic,
)

PHASES = (
    "queued",
    "lock",
    "source",
    "build",
    "release",
    "candidate",
    "health",
    "switch",
    "verify",
    "drain",
    "cleanup",
    "done",
)


@dataclass
class Leg:
    """One service's deploy: queued, then a child process, then a final result."""

    service: str
    branch: str
    status_path: Path
    log_path: Path
    phase: str = "queued"
    result: str = "queued"
    message: str = ""
    proc: subprocess.Popen[bytes] | None = None
    started: float | None = None  # monotonic
    ended: float | None = None
    exit_code: int | None = None
    timed_out: bool = False
    status: dict[str, Any] = field(default_factory=dict)
    waiting: tuple[str, ...] = ()  # queued behind these dependencies

    @property
    def running(self) -> bool:
        return self.proc is not None and self.ended is None

    @property
    def finished(self) -> bool:
        return self.result in RESULTS_FINAL

    def elapsed(self, now: float | None = None) -> float | None:
        if self.started is None:
            return None
        return (self.ended if self.ended is not None else (now or time.monotonic())) - self.started

    def duration(self) -> float | None:
        reported = as_seconds(self.status.get("duration_s"))
        return reported if reported is not None else self.elapsed()


@dataclass(frozen=True)
class Event:
    """A change worth one progress line: a leg started, changed phase, or ended."""

    leg: Leg
    kind: str  # "start" | "phase" | "wait" (for dependencies) | "result"


ArgvFor = Callable[[Leg], list[str]]


class LegPool:
    """Starts queued legs while fewer than max_parallel run, each once its dependencies are done; one leg's
    failure touches no other leg but those that depend on it."""

    def __init__(
        self,
        legs: list[Leg],
        argv_for: ArgvFor,
        env: Mapping[str, str],
        max_parallel: int,
        *,
        fail_fast: bool = False,
        cwd: Path | None = None,
        depends_on: Mapping[str, Iterable[str]] | None = None,
    ):
        self.legs = legs
        self.needs = selected_needs((leg.service for leg in legs), depends_on or {})
        self.argv_for = argv_for
        self.env = dict(env)
        self.max_parallel = max(1, max_parallel)
        self.fail_fast = fail_fast
        self.cwd = cwd
        self.stopping = False
        self._logs: dict[str, BinaryIO] = {}

    @property
    def done(self) -> bool:
        return all(leg.finished for leg in self.legs)

    def running(self) -> list[Leg]:
        return [leg for leg in self.legs if leg.running]

    def step(self) -> list[Event]:
        """Reap finished children, read status files, start what fits; return what changed."""
        events: list[Event] = []
        for leg in self.running():
            events.extend(self._watch(leg))
        if self.stopping:
            return events
        results = {leg.service: leg.result for leg in self.legs}
        decision = decide(results, self.needs, self.max_parallel - len(self.running()))
        for leg in self.legs:
            if leg.service in decision.skip:
                leg.result, leg.message, leg.waiting = "skipped", decision.skip[leg.service], ()
                write_never_started(leg)
                events.append(Event(leg, "result"))
        if self.fail_fast and any(leg.finished and leg.result not in RESULTS_OK for leg in self.legs):
            events.extend(
                self._drop_queued("skipped", "not started: an earlier service failed (--fail-fast)")
            )
        for leg in self.legs:
            if leg.result != "queued":
                continue
            if leg.service in decision.start:
                self._start(leg)
                events.append(Event(leg, "start"))
            else:
                waiting = decision.waiting.get(leg.service, ())
                if waiting and waiting != leg.waiting:
                    events.append(Event(leg, "wait"))
                leg.waiting = waiting
        return events

    def cancel(self) -> list[Event]:
        """Ctrl-C: queued legs never start; running children get SIGTERM and clean up themselves."""
        self.stopping = True
        events = self._drop_queued("cancelled", "not started: the run was interrupted")
        for leg in self.running():
            _signal(leg, signal.SIGTERM, group=False)
        return events

    def enforce_timeout(self, limit_s: float, grace_s: float = 60.0) -> None:
        """A leg past the deploy timeout gets SIGTERM, and SIGKILL once the grace period is over too."""
        now = time.monotonic()
        for leg in self.running():
            age = leg.elapsed(now) or 0.0
            if age > limit_s + grace_s:
                _signal(leg, signal.SIGKILL, group=True)
            elif age > limit_s and not leg.timed_out:
                leg.timed_out = True
                _signal(leg, signal.SIGTERM, group=False)

    def kill(self) -> None:
        """Second Ctrl-C or cleanup deadline: SIGKILL every running child and everything it started."""
        self.stopping = True
        for leg in self.running():
            _signal(leg, signal.SIGKILL, group=True)

    def wait(self, timeout: float) -> None:
        """Sleep up to `timeout`, waking as soon as a running child exits (pidfds, where the OS has them)."""
        fds = []
        try:
            for leg in self.running():
                assert leg.proc is not None
                with contextlib.suppress(OSError, AttributeError):
                    fds.append(os.pidfd_open(leg.proc.pid))
            if fds:
                select.select(fds, [], [], timeout)
            else:
                time.sleep(timeout)
        finally:
            for fd in fds:
                os.close(fd)

    def close(self) -> None:
        for handle in self._logs.values():
            handle.close()
        self._logs.clear()

    def _start(self, leg: Leg) -> None:
        leg.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self._logs[leg.service] = leg.log_path.open("ab")
        # A session of its own: the terminal's Ctrl-C reaches the runner only, which forwards it once.
        leg.proc = subprocess.Popen(
            self.argv_for(leg),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        leg.started, leg.waiting = time.monotonic(), ()
        leg.result, leg.phase, leg.message = "running", "lock", "started"

    def _watch(self, leg: Leg) -> Iterator[Event]:
        assert leg.proc is not None
        code = leg.proc.poll()
        status = read_json(leg.status_path)
        if status and status.get("service") == leg.service:
            leg.status = status
            if status.get("phase") != leg.phase and status.get("result") == "running":
                leg.phase = str(status.get("phase"))
                yield Event(leg, "phase")
        if code is None:
            return
        leg.ended, leg.exit_code = time.monotonic(), code
        _signal(leg, signal.SIGKILL, group=True)  # stragglers the step left behind
        handle = self._logs.pop(leg.service, None)
        if handle:
            handle.close()
        self._settle(leg, code)
        yield Event(leg, "result")

    def _settle(self, leg: Leg, code: int) -> None:
        status = read_json(leg.status_path) or leg.status
        leg.status = status if status.get("service") == leg.service else {}
        reported = leg.status.get("result")
        if reported in RESULTS_FINAL and reported != "skipped":
            leg.result, leg.message = str(reported), str(leg.status.get("message") or "")
            leg.phase = str(leg.status.get("phase") or leg.phase)
        elif self.stopping:
            leg.result, leg.message = (
                "cancelled",
                f"interrupted; step exited with code {code} without a final report",
            )
        else:
            leg.result, leg.message = "failed", f"step exited with code {code} without a final report"
        if leg.timed_out and leg.result in ("cancelled", "failed"):
            leg.result, leg.message = "failed", f"timed out after {leg.elapsed() or 0:.0f} s; {leg.message}"
        if leg.result in ("deployed", "unchanged") and code != 0:
            leg.result, leg.message = "failed", f"reported {reported} but exited with code {code}"
        if leg.result != reported:
            write_settled(leg)  # the step died without a final report: its status file says so now

    def _drop_queued(self, result: str, message: str) -> list[Event]:
        events = []
        for leg in self.legs:
            if leg.result == "queued":
                leg.result, leg.message, leg.waiting = result, message, ()
                write_never_started(leg)
                events.append(Event(leg, "result"))
        return events


def write_never_started(leg: Leg) -> None:
    """Status JSON for a leg never started (`skipped` / `cancelled`), so every service has a report."""
    data = _blank_status(leg, now_iso())
    write_json_atomic(leg.status_path, data)
    leg.status = data


def write_settled(leg: Leg) -> None:
    """Status JSON with the result the runner settled on, keeping what the step had reported."""
    now = now_iso()
    data = {**_blank_status(leg, now), **leg.status, "result": leg.result, "message": leg.message}
    data["finished_at"] = now
    if data.get("started_at"):
        data["duration_s"] = round((parse_iso(now) - parse_iso(str(data["started_at"]))).total_seconds(), 3)
    write_json_atomic(leg.status_path, data)
    leg.status = data


def _blank_status(leg: Leg, now: str) -> dict[str, Any]:
    return status_record(
        leg.service, leg.branch, result=leg.result, phase=leg.phase, finished_at=now, message=leg.message
    )


def _signal(leg: Leg, sig: signal.Signals, *, group: bool) -> None:
    if leg.proc is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(leg.proc.pid, sig)
        elif leg.proc.poll() is None:
            leg.proc.send_signal(sig)

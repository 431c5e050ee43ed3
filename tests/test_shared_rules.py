"""Rules the generator and the stdlib-only steps both apply are defined once, in generator/steps, and imported."""

from __future__ import annotations

from pathlib import Path

from generator import errors
from generator.local import legs, progress
from generator.manifest import suggest, validate
from generator.steps.core import steplib
from generator.steps.core.names import did_you_mean


def test_exit_codes_are_the_steps_exit_codes() -> None:
    assert errors.ExitCode is steplib.Exit


def test_did_you_mean_is_the_steps_one() -> None:
    assert validate.did_you_mean is did_you_mean
    assert not hasattr(suggest, "did_you_mean")


def test_progress_lines_use_the_steps_clock() -> None:
    assert progress.clock is steplib.clock


def test_a_leg_never_started_reports_the_status_skeleton_of_a_step(tmp_path: Path) -> None:
    leg = legs.Leg("auth-service", "main", tmp_path / "auth-service.json", tmp_path / "auth-service.log")
    leg.result, leg.message = "skipped", "not started"
    legs.write_never_started(leg)
    written = steplib.read_json(leg.status_path)
    assert written is not None
    assert written == steplib.status_record(
        "auth-service",
        "main",
        result="skipped",
        phase="queued",
        message="not started",
        finished_at=written["finished_at"],
    )
    step = steplib.StatusFile(tmp_path / "step.json", "auth-service", "main")
    assert list(written) == list(step.data)

"""`wfgen rollback`: the rollback step run in place on this terminal; its log lines are the output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from generator.errors import ExitCode
from generator.manifest.loading import load
from generator.steps import rollback
from generator.steps.core import config


@dataclass(frozen=True)
class RollbackOptions:
    manifest: Path
    service: str
    to: str | None = None
    environment: str | None = None  # --env; None: the first of [environments]


def load_view(path: Path, environment: str | None) -> config.Manifest:
    """The manifest as the step reads it; with [environments], that of `--env` or else the first one."""
    return load(path, environment).view


def roll_back(options: RollbackOptions) -> int:
    """OK when rolled back, FAILED when not (what ran before still serves), USAGE when there is nothing to
    roll back to; Ctrl-C (after the step has put back what it touched) raises KeyboardInterrupt."""
    view = load_view(options.manifest, options.environment)
    folder = options.manifest.resolve().parent / ".wfgen" / "rollback" / (view.project.environment or "")
    status_file = folder / f"{options.service}.json"
    request = rollback.Request(options.service, options.to, status_file=str(status_file))
    code = rollback.run(view, request)
    if code == ExitCode.INTERRUPTED:
        raise KeyboardInterrupt
    return code

"""`wfgen plan`: the plan step's verdicts for a selection, asked from the target in place; touches nothing."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from generator.errors import ExitCode, WfgenError
from generator.local.dryrun import describe_target
from generator.manifest.loading import load
from generator.steps import plan
from generator.steps.core import config
from generator.steps.core.steplib import UsageError
from generator.steps.core.transport import CommandFailed, TargetError


class PlanError(WfgenError):
    """Bad selection or branch for `wfgen plan` (exit 2)."""


@dataclass(frozen=True)
class PlanOptions:
    manifest: Path
    services: str
    branch: str | None = None
    force_rebuild: bool = False
    push: bool = False
    as_json: bool = False
    environment: str | None = None


def make_plan(options: PlanOptions, view: config.Manifest, environ: dict[str, str]) -> dict[str, Any]:
    """The plan document; PlanError on bad input; TargetError and friends when the target cannot say."""
    try:
        return plan.assess(
            view, options.services, options.branch, options.force_rebuild,
            event="push" if options.push else "local",
            repo_root=str(options.manifest.resolve().parent), environ=environ,
        )  # fmt: skip
    except UsageError as exc:
        raise PlanError(f"plan: {exc}") from None


def show_plan(options: PlanOptions, stream: TextIO, errors: TextIO) -> int:
    view = load(options.manifest, options.environment, options.branch).view
    environ = dict(os.environ)
    try:
        document = make_plan(options, view, environ)
    except (TargetError, CommandFailed, OSError) as exc:
        print(f"plan: cannot read what runs on {describe_target(view, environ)}: {exc}", file=errors)
        return ExitCode.FAILED
    if options.as_json:
        print(json.dumps({"environment": view.project.environment, **document}, indent=2), file=stream)
        return ExitCode.OK
    print(f"Plan against {describe_target(view, environ)}; nothing is touched.", file=stream)
    print(plan.text(document), end="", file=stream)
    return ExitCode.OK

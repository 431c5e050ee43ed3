"""What `wfgen deploy` was asked: its options, the environment its steps inherit, and for --retry-failed the
options of the last run's failed services."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from generator.errors import WfgenError
from generator.local.runlog import RunRecordError, latest_run, read_run
from generator.steps.core.steplib import RESULTS_OK

_DROP_ENV = (
    # The workflow's own inputs: a value left in the shell must not reach a local step (a stale WFGEN_PLAN
    # would gate a leg on reports of another run).
    "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "WFGEN_SERVICES", "WFGEN_SERVICE", "WFGEN_STATUS_FILE",
    "WFGEN_PLAN", "WFGEN_DEPENDENCY_DIR", "WFGEN_EVENT",
)  # fmt: skip


class RunnerError(WfgenError):
    """Bad use of `wfgen deploy`, e.g. --retry-failed with no previous run."""


@dataclass(frozen=True)
class DeployOptions:
    manifest: Path
    services: str | None = None
    branch: str | None = None
    environment: str | None = None  # --env; None: the branch's
    force_rebuild: bool = False
    retry_failed: bool = False
    max_parallel: int | None = None
    fail_fast: bool = False
    only_changed: bool = False  # as a push: only the services whose version differs from what runs
    dry_run: bool = False
    output: str = "auto"  # auto | quiet | json
    retry_of: str | None = None


def options_from_last_run(options: DeployOptions) -> DeployOptions | None:
    if options.services is not None or options.branch is not None:
        raise RunnerError("--retry-failed takes no services or branch: it reuses those of the last run")
    root = options.manifest.resolve().parent
    last = latest_run(root)
    if last is None:
        raise RunnerError(
            f"--retry-failed: no previous run in {root / '.wfgen' / 'runs'}; deploy something first"
        )
    try:
        record = read_run(last)
    except RunRecordError as exc:
        raise RunnerError(f"--retry-failed: {exc}") from None
    inputs = record["inputs"]
    environment = inputs.get("environment")  # runs recorded before environments have none
    if options.environment is not None and options.environment != environment:
        asked, last_run = options.environment, record["run_id"]
        raise RunnerError(
            f"--retry-failed --env {asked}: the last run ({last_run}) deployed to "
            f"{environment or 'no environment'}; retry it without --env, or deploy {asked} again"
        )
    failed = [name for name, item in record["services"].items() if item.get("result") not in RESULTS_OK]
    if not failed:
        return None
    return replace(
        options,
        services=",".join(failed),
        branch=inputs["branch"],
        environment=environment,
        force_rebuild=bool(inputs["force_rebuild"]) or options.force_rebuild,
        retry_failed=False,
        retry_of=record["run_id"],
    )


def child_env(environ: Mapping[str, str], options: DeployOptions) -> dict[str, str]:
    env = {key: value for key, value in environ.items() if key not in _DROP_ENV}
    env["WFGEN_FORCE_REBUILD"] = "true" if options.force_rebuild else "false"
    return env

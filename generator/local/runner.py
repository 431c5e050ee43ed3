"""`wfgen deploy`: prepare → check-infrastructure → parallel deploy legs → summary, with the same steps."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from generator.errors import ExitCode
from generator.local.deploy_options import DeployOptions, RunnerError, child_env, options_from_last_run
from generator.local.dryrun import print_dry_run
from generator.local.interrupts import Interrupts
from generator.local.run import Run
from generator.local.steprun import run_step, step_argv
from generator.manifest.loading import load
from generator.steps import prepare
from generator.steps.check_infrastructure import secret_flags
from generator.steps.core.steplib import UsageError


def deploy(
    options: DeployOptions, *, stream: TextIO | None = None, environ: Mapping[str, str] | None = None
) -> int:
    """Run a deployment; returns the exit code (0, 1, 130); raises WfgenError on bad usage (exit 2)."""
    stream = stream or sys.stdout
    if hasattr(stream, "reconfigure"):
        stream.reconfigure(errors="replace")  # emoji progress on a non-UTF-8 console must not crash a deploy
    if options.retry_failed:
        retry = options_from_last_run(options)
        if retry is None:
            message = "nothing to retry: every service of the last run ended deployed or unchanged"
            print(
                json.dumps({"services": {}, "message": message}) if options.output == "json" else message,
                file=stream,
            )
            return ExitCode.OK
        options = retry
    if options.max_parallel is not None and options.max_parallel < 1:
        raise RunnerError("--max-parallel must be at least 1")
    loaded = load(options.manifest, options.environment, options.branch)
    resolved, view = loaded.resolved, loaded.view
    env = child_env(os.environ if environ is None else environ, options)
    try:  # the prepare job's own rules, called in place
        plan = prepare.make_plan(view, options.services or "all", options.branch, options.force_rebuild)
    except UsageError as exc:
        raise RunnerError(f"prepare: {exc}") from None
    max_parallel = options.max_parallel or int(resolved["project"]["max_parallel"])
    if options.dry_run:
        root = options.manifest.resolve().parent
        as_json = options.output == "json"
        print_dry_run(
            view, plan, root=root, max_parallel=max_parallel, as_json=as_json, env=env, stream=stream
        )
        return ExitCode.OK
    with Interrupts() as interrupts, tempfile.TemporaryDirectory(prefix="wfgen-check-") as tmp:
        scratch = Path(tmp) / "manifest.json"
        scratch.write_text(json.dumps(resolved, indent=2) + "\n", encoding="utf-8")
        # Checked before the run folder exists: a missing target variable is bad input and writes nothing.
        flags = secret_flags(resolved["infrastructure"]["secrets"], env)  # what the workflow's check job gets
        check_argv = step_argv("check_infrastructure", "--manifest", str(scratch))
        check = run_step(check_argv, {**env, **flags}, interrupts)
        if check[0] == ExitCode.USAGE:
            raise RunnerError(check[2].strip() or "check_infrastructure.py: bad usage")
        return Run(options, resolved, view, plan, env, stream, interrupts).execute(check)

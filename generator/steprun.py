"""Run a short step script (prepare, check-infrastructure) to completion as the workflow would."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from generator.errors import ExitCode, WfgenError
from generator.legs import Interrupts
from generator.steps import JOBS

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the folder that holds `generator/`
POLL_S = 0.2
STEP_TIMEOUT_S = 600.0


class StepRefused(WfgenError):
    """A step script rejected its input (exit 2); the message is the step's own stderr line."""


def step_argv(job: str, *args: str) -> list[str]:
    """Run generator.steps.<job> as the workflow's entry script does: `python -I -S`, stdlib only.

    `generator/__init__.py` imports nothing, so only the step package itself is loaded."""
    if job not in JOBS:
        raise ValueError(f"not a step job: {job!r}")
    bootstrap = (
        f"import sys; sys.path.insert(0, {str(PACKAGE_ROOT)!r}); sys.argv[0] = {job + '.py'!r}; "
        f"from generator.steps.{job} import main; raise SystemExit(main())"
    )
    return [sys.executable, "-I", "-S", "-c", bootstrap, *args]


def run_step(
    argv: list[str], env: Mapping[str, str], interrupts: Interrupts, timeout: float = STEP_TIMEOUT_S
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr); stopped early on Ctrl-C (code 130) or after `timeout` (code 1)."""
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(env),
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        try:
            out, err = proc.communicate(timeout=POLL_S)
            return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
        except subprocess.TimeoutExpired:
            if interrupts.requested or time.monotonic() > deadline:
                break
    proc.terminate()
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=30)
    text, problem = out.decode(errors="replace"), err.decode(errors="replace")
    if interrupts.requested:
        return ExitCode.INTERRUPTED, text, problem
    return ExitCode.FAILED, text, f"{problem}timed out after {timeout:.0f} s\n"


def run_prepare(
    manifest_json: Path,
    services: str,
    branch: str | None,
    force_rebuild: bool,
    env: Mapping[str, str],
    interrupts: Interrupts,
) -> tuple[list[str], str]:
    """The selection in manifest order and the branch, as prepare.py validates them for the workflow."""
    # --opt=value: a value starting with '-' must reach prepare's own checks, not argparse's option parsing.
    argv = ["--json", f"--services={services}", f"--manifest={manifest_json}"]
    argv += [f"--force-rebuild={'true' if force_rebuild else 'false'}"]
    if branch is not None:
        argv += [f"--branch={branch}"]
    code, out, err = run_step(step_argv("prepare", *argv), env, interrupts, timeout=60)
    if code == ExitCode.INTERRUPTED:
        raise KeyboardInterrupt
    if code != 0:
        raise StepRefused(err.strip() or f"prepare.py exited with code {code}")
    plan = json.loads(out)
    return list(plan["services"]), str(plan["branch"])

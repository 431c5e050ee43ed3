"""Run a step script in a fresh `python -I -S`, as the workflow's job would (check-infrastructure, legs)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from generator.errors import ExitCode
from generator.local.interrupts import Interrupts
from generator.steps import JOBS

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds `generator/`
POLL_S = 0.2
STEP_TIMEOUT_S = 600.0


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

"""Run a step script the way a workflow job does: a fresh `python -I -S` with only the environment given."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping

from generator.local.steprun import PACKAGE_ROOT, step_argv

__all__ = ["PACKAGE_ROOT", "run_step", "step_argv", "step_env"]


def step_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """PATH and HOME from this process, nothing else (no WFGEN_* or GITHUB_* leaking in), plus extra."""
    env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    return {**env, **(extra or {})}


def run_step(
    job: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    python_flags: tuple[str, ...] = (),
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """generator.steps.<job> in a fresh `python -I -S`; output decoded as UTF-8, bad bytes replaced."""
    python, *rest = step_argv(job, *args)
    command = [python, *python_flags, *rest]
    return subprocess.run(
        command,
        env=step_env(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        check=False,
    )

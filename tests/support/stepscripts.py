"""Run a step script the way a workflow job does: a fresh `python -I -S` with only the environment given."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

STEPS = Path(__file__).resolve().parents[2] / "generator" / "steps"


def step_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """PATH and HOME from this process, nothing else (no WFGEN_* or GITHUB_* leaking in), plus extra."""
    env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    return {**env, **(extra or {})}


def run_step(
    script: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    python_flags: tuple[str, ...] = (),
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """`python -I -S generator/steps/<script> args...`; output decoded as UTF-8, bad bytes replaced."""
    command = [sys.executable, "-I", "-S", *python_flags, str(STEPS / script), *args]
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

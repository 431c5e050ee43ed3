"""generator/steps/engine/leftovers.py: the runner sweep removes only dead processes' dirs, and never crashes."""

from __future__ import annotations

import os
from pathlib import Path

from generator.steps.core import steplib
from generator.steps.engine import leftovers


def test_sweep_removes_dirs_of_gone_processes_and_keeps_the_rest(tmp_path: Path) -> None:
    mine = tmp_path / f"{steplib.runner_prefix('ssh')}abc"
    gone = tmp_path / "wfgen-ssh-999999999-abc"  # a pid no process has (above pid_max)
    huge = tmp_path / "wfgen-ssh-99999999999999999999-x"  # not a pid at all: left alone, no OverflowError
    other = tmp_path / "unrelated-999999999-x"
    for folder in (mine, gone, huge, other):
        folder.mkdir()
    assert leftovers.sweep_runner(str(tmp_path)) == 1
    assert not gone.exists()
    assert mine.exists() and huge.exists() and other.exists()
    assert str(os.getpid()) in mine.name

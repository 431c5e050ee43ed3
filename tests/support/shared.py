"""Set-up shared by the pytest-xdist workers of one run: done once per run, not once per worker.

Each worker is its own process with its own session fixtures. Their temp folders sit side by side in one
folder of the run (basetemp/popen-gwN), so a lock file there serialises the workers and a marker file next
to it tells the later ones that the work is done.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

import pytest


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every worker of this run shares (the session's own temp folder without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_per_run(tmp_path_factory: pytest.TempPathFactory, name: str, work: Callable[[], str]) -> str:
    """`work()`'s result, computed by the first worker to get here; the others wait for it, then reuse it.

    A worker whose `work()` raises (or skips) leaves no marker: the next one tries again and says why itself.
    """
    folder = run_folder(tmp_path_factory)
    marker = folder / f"{name}.done"
    with (folder / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if marker.is_file():
            return marker.read_text()
        result = work()
        marker.write_text(result)
        return result

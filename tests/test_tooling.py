"""The house tooling passes on the whole tree: ruff (lint + format) and mypy on the package."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.support.requires import skip_or_fail


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.parametrize("command", [("check",), ("format", "--check")], ids=["lint", "format"])
def test_ruff(command: tuple[str, ...]) -> None:
    if shutil.which("ruff") is None:
        skip_or_fail("ruff is not installed: pip install -e '.[test]'")
    result = _run("ruff", *command, "generator", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy() -> None:
    result = _run(sys.executable, "-m", "mypy")
    if "No module named mypy" in result.stderr:
        skip_or_fail("mypy is not installed: pip install -e '.[test]'")
    assert result.returncode == 0, result.stdout + result.stderr

"""The house tooling passes on the whole tree: ruff (lint + format) and mypy on the package."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.requires import require_python_tool


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.parametrize("command", [("check",), ("format", "--check")], ids=["lint", "format"])
def test_ruff(command: tuple[str, ...]) -> None:
    result = _run(require_python_tool("ruff"), *command, "generator", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy() -> None:
    result = _run(require_python_tool("mypy"))
    assert result.returncode == 0, result.stdout + result.stderr

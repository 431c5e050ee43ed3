"""The one rule for tests that need real infrastructure: skip locally, fail under CI=true."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test with `reason`; under CI=true missing infrastructure is a failure instead."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: required infrastructure is missing)", pytrace=False)
    pytest.skip(reason)


def require_executable(name: str, hint: str) -> str:
    """Absolute path of an executable, or skip/fail naming the package that provides it."""
    path = shutil.which(name) or (name if Path(name).is_absolute() and os.access(name, os.X_OK) else None)
    if path is None:
        skip_or_fail(f"{name} not found: {hint}")
    return path


def require_python_tool(name: str) -> str:
    """Absolute path of a console script from the running interpreter's environment, or skip/fail.

    Never the global PATH: a hand-installed copy there must not stand in for the one `.[test]` installs.
    """
    for folder in dict.fromkeys([sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]):
        path = Path(folder) / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    skip_or_fail(f"{name} is not installed in {sys.prefix}: pip install -e '.[test]'")

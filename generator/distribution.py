"""The installed distribution that is running: the name and version the check workflow pins."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import metadata

COMMAND = "wfgen"
ENTRY_POINT = "generator.cli:main"
# On PyPI, "wfgen" is an unrelated project: installing it would run a stranger's code.
FOREIGN_NAME = "wfgen"
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:[\[(=<>!~;@]|$)")


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


@functools.cache
def installed() -> Distribution:
    """The distribution whose `wfgen` command runs this package, from its installed metadata.

    Found by its entry point rather than by name, so the name and version live only in pyproject.toml.
    """
    found = sorted(
        {
            (entry.dist.name, entry.dist.version)
            for entry in metadata.entry_points(group="console_scripts", name=COMMAND)
            if entry.value == ENTRY_POINT and entry.dist is not None
        }
    )
    if not found:
        raise _error(
            f"no installed distribution provides the '{COMMAND}' command, so the version to pin is unknown: "
            "install wfgen with pip (from a checkout: pip install -e .)"
        )
    if len(found) > 1:
        names = ", ".join(f"{name} {version}" for name, version in found)
        raise _error(
            f"several installed distributions provide the '{COMMAND}' command ({names}): "
            "pip uninstall the ones you no longer use"
        )
    [(name, version)] = found
    return Distribution(name, version)


def _error(message: str) -> Exception:
    # Imported on failure only: generator.errors loads the step library, which `wfgen --version` never needs.
    from generator.errors import WfgenError

    return WfgenError(message)


def requirement_name(requirement: str) -> str | None:
    """The project name a pip requirement string names, normalized (PEP 503); None for paths and URLs."""
    match = _REQUIREMENT_NAME.match(requirement)
    if match is None:
        return None
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()

"""The manifest a command acts on: validated, resolved for one environment, and the steps' view of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.manifest import environments
from generator.manifest.model import Manifest
from generator.manifest.resolve import resolve_manifest
from generator.manifest.validate import load_manifest
from generator.steps.core import config, config_load


@dataclass(frozen=True)
class Loaded:
    manifest: Manifest
    environment: str | None  # None without [environments]
    resolved: dict[str, Any]  # what `wfgen render` vendors for that environment
    view: config.Manifest  # what the step scripts see of it


def load(path: Path, environment: str | None = None, branch: str | None = None) -> Loaded:
    """The manifest at `path` for `--env` (else the branch's environment, else the first one)."""
    manifest = load_manifest(path)
    chosen = environments.choose(manifest, environment, branch)
    resolved = resolve_manifest(manifest, source=path.name, environment=chosen)
    return Loaded(manifest, chosen, resolved, config_load.parse(resolved, path.name))

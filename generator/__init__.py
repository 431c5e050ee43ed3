"""wfgen: one services.toml, fast and safe parallel Docker deployments."""

from __future__ import annotations

__version__ = "0.1.0"

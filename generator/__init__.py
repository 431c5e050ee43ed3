"""wfgen: one services.toml, fast and safe parallel Docker deployments."""

from __future__ import annotations

# The version lives in pyproject.toml alone; at run time it is read from the installed
# metadata (generator.distribution), so a release changes one line.

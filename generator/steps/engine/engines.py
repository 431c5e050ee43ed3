"""The engine of a deploy, chosen once from the manifest's target (delivery.py is the seam they share).

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

from ..core import config
from .delivery import Engine
from .host import HostDelivery


def for_target(manifest: config.Manifest) -> Engine:
    """The engine that delivers to `manifest.target`: one Docker host (kind 'local' or 'ssh')."""
    return HostDelivery

"""The engine of a deploy, chosen once from the manifest's target (delivery.py is the seam they share).

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

from ..core import config
from .delivery import Engine
from .host import HostDelivery
from .swarm.delivery import SwarmDelivery


def for_target(manifest: config.Manifest) -> Engine:
    """The engine that delivers to `manifest.target`: a Docker Swarm through its manager (kind 'swarm'), or
    one Docker host (kind 'local' or 'ssh')."""
    if manifest.target.kind == "swarm":
        return SwarmDelivery
    return HostDelivery

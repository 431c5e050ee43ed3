"""What serves a service now, as every engine reads it: a container on one host, a service on a swarm.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Running:
    """The container that serves a service now."""

    commit: str | None
    running: bool
    labels: Mapping[str, str]
    published: frozenset[int]  # host ports the container publishes itself (not through the proxy)
    state: str = ""  # docker's word: running, exited, restarting, created, paused, dead
    exit_code: int = 0
    started_at: str = ""  # as docker says it, UTC; "0001-01-01T00:00:00Z" when it never started
    finished_at: str = ""
    image: str = ""  # the reference it was started from
    image_id: str = ""
    replicas: tuple[int, int] | None = None  # on a swarm: (tasks running, desired)
    nodes: tuple[str, ...] = ()  # on a swarm: where its tasks run
    name: str = ""  # on a swarm: the Swarm service (on one host, the live container's name is the rule)

"""The engine seam: how one deploy's new image becomes the live service, whatever runs it.

`deployment.Deployment` holds what every deploy does (lock, source, build, release, audit, finish) and hands
the delivery to one `Delivery`, chosen once per deploy by `engines.for_target(manifest)`:

- `host.HostDelivery`: one Docker host; a candidate container beside the old one, a health gate from the
  target, a rename or restart switch, a check on the public port, a drain, and a restore on any failure.
- `swarm.delivery.SwarmDelivery`: a Docker Swarm, driven through the docker CLI of a manager; Swarm replaces
  the tasks one by one, gated by the service's healthcheck, and rolls a failed update back itself.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ..core import config, runconfig, steplib
from ..core.transport import Target


class Outcome(Exception):
    """Ends the deploy with a result other than deployed (the phase stays where it happened)."""

    def __init__(self, result: str, message: str):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class Container:
    """What serves the service now: its image (id and reference), whether it runs, and its labels (commit,
    configuration fingerprint). On a swarm: the service's spec, `running` when its tasks run."""

    image_id: str
    image: str
    running: bool
    labels: Mapping[str, str]


class Reporter(Protocol):
    """What a delivery tells the deploy in progress (deployment.Deployment is one)."""

    status: steplib.StatusFile
    commit: str | None  # the commit being deployed

    def left(self) -> float: ...
    def log(self, message: str) -> None: ...
    def phase(self, name: str, message: str) -> None: ...
    def on_deployed(self) -> None: ...


class Delivery(Protocol):
    """One engine's cutover of one deploy. `survey` reads what runs; `deliver` starts the new version, gates
    it on its health, switches to it, verifies it and drains the old one, raising Outcome when it ends
    otherwise than deployed; `restore` undoes whatever part of that happened (from finish(), on a cancel or
    an unexpected error); `settle` ends a drain cut short once deployed."""

    image: str
    prunes_images: bool  # the deploy prunes the target's old images afterwards

    @property
    def config(self) -> runconfig.Fingerprint | None: ...
    @property
    def touched(self) -> bool:
        """Something of the live service changed and is not verified yet: finish() restores it."""

    def survey(self) -> Container | None: ...
    def configure(self, env: Mapping[str, str], salt: bytes) -> runconfig.Fingerprint: ...
    def ensure_network(self) -> None: ...
    def runs_image(self, image: str, old: Container) -> bool: ...
    def must_redeploy(self) -> str | None: ...
    def healthy(self) -> bool: ...
    def release_image(self) -> str:
        """The new image as the release command runs it, on the target (a swarm's manager): by digest on a
        swarm, so it is exactly what the tasks will run."""

    def deliver(self, env_file: str | None) -> None: ...
    def restore(self) -> str: ...
    def settle(self) -> None: ...


# (target, manifest, service, image, reporter) -> the delivery of one deploy
Engine = Callable[[Target, config.Manifest, config.Service, str, Reporter], Delivery]

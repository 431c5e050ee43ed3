"""The single-host engine behind the seam (delivery.py): one Docker host, one container per service.

The flow: a candidate container beside the old one, its health gate asked from the target, the switch (a
rename behind the project proxy, handover.py, or a stop and start on the published port, cutover.py), a
check on the public port, then the drain of the old container; any failure restores the old container.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import replace

from ..core import config, runconfig, steplib
from ..core.transport import CommandFailed, Target, TargetError
from . import images
from .cutover import Cutover, HealthFailed, crash_reason, is_ok, wait_healthy
from .delivery import Container, Outcome, Reporter
from .handover import Handover
from .probe import http_probe
from .proxy import ProxyError

# What a failed command of the switch may raise: the switch is then undone, and the deploy rolled back.
SWITCH_ERRORS = (TargetError, CommandFailed, HealthFailed, ProxyError, OSError)


class HostDelivery:
    """The container moves of one deploy on one host (`Cutover`, or `Handover` behind the proxy)."""

    prunes_images = True

    def __init__(
        self,
        target: Target,
        manifest: config.Manifest,
        service: config.Service,
        image: str,
        reporter: Reporter,
    ):
        kind = Handover if service.proxy else Cutover
        self.cut = kind(target, manifest, service, image)
        self.target, self.service, self.reporter = target, service, reporter

    @property
    def image(self) -> str:
        return self.cut.image

    @image.setter
    def image(self, value: str) -> None:
        self.cut.image = value

    @property
    def config(self) -> runconfig.Fingerprint | None:
        return self.cut.config

    @property
    def touched(self) -> bool:
        return self.cut.touched

    def survey(self) -> Container | None:
        return self.cut.survey()

    def configure(self, env: Mapping[str, str], salt: bytes) -> runconfig.Fingerprint:
        return self.cut.configure(env, salt)

    def ensure_network(self) -> None:
        self.cut.ensure_network()

    def runs_image(self, image: str, old: Container) -> bool:
        return images.image_id(self.target, image) == old.image_id

    def must_redeploy(self) -> str | None:
        return self.cut.must_redeploy()

    def healthy(self) -> bool:
        url = self.service.health_url(self.service.port)
        return is_ok(http_probe(self.target, url, self.service.health.timeout_s))

    def release_image(self) -> str:
        return self.image  # built on the target, or pulled there

    def restore(self) -> str:
        return self.cut.restore()

    def settle(self) -> None:
        self.cut.settle()

    def log(self, message: str) -> None:
        self.reporter.log(message)

    def deliver(self, env_file: str | None) -> None:
        """Candidate, health gate, then the switch; Outcome when the old container serves (or none did)."""
        cut = self.cut
        self.reporter.phase("candidate", f"starting candidate {cut.name_candidate()}")
        cut.ensure_network()
        try:
            url = cut.start_candidate(env_file)
            self.reporter.phase("health", f"waiting for the candidate to answer {url}")
            took = wait_healthy(
                self.target,
                url,
                self.service.health,
                alive=lambda: crash_reason(self.target, cut.candidate),
            )
        except HealthFailed as exc:
            for line in cut.candidate_logs():
                steplib.quote(line)
            cut.restore()
            raise Outcome(
                "failed", f"candidate never became healthy: {exc}; running container untouched"
            ) from None
        self.log(f"candidate healthy after {took:.1f} s")
        test_hook()
        self.switch(env_file)

    def switch(self, env_file: str | None) -> None:
        cut = self.cut
        self.reporter.phase("switch", f"switching {cut.running} to the new image")
        try:
            dark_since = cut.switch(env_file)
            self.log(cut.switch_note())
            self.reporter.status.update(
                phase="verify", message=f"checking health on port {self.service.port}"
            )
            cut.verify()
        except SWITCH_ERRORS as exc:
            self.fail_switch(str(exc))
        self.reporter.on_deployed()  # verified on the real port: from here on, nothing rolls it back
        self.log(cut.served(dark_since))
        draining = cut.draining()
        try:
            if draining:
                self.reporter.phase("drain", draining)
                cut.drain()
            self.reporter.status.update(phase="cleanup", message="removing older versions")
            cut.commit()
        except SWITCH_ERRORS as exc:  # the new version serves: a failed tidy-up is a warning, not a failure
            self.log(f"warning: after the switch: {exc}")

    def fail_switch(self, problem: str) -> None:
        failed = f"new container failed after the switch: {problem}"
        try:
            what = self.cut.restore()
        except SWITCH_ERRORS as exc:
            raise Outcome("failed", f"{failed}; restoring the previous container failed too: {exc}") from None
        if self.cut.old is None:
            raise Outcome("failed", f"{failed}; {what}")
        if self.cut.old.running:
            url = self.service.health_url(self.service.port)
            health = replace(self.service.health, deadline_s=30.0)
            try:
                wait_healthy(self.target, url, health, poll_s=0.2, grace_s=0)
            except HealthFailed as exc:
                what += f", but it does not answer ({exc})"
        raise Outcome("rolled_back", f"{failed}; {what}")


def test_hook() -> None:
    """WFGEN_TEST_BEFORE_SWITCH: a shell command the tests run between the health gate and the switch."""
    hook = os.environ.get("WFGEN_TEST_BEFORE_SWITCH")
    if hook:
        subprocess.run(["sh", "-c", hook], timeout=120, check=False, stdout=subprocess.DEVNULL)

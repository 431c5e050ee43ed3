"""One deploy of one service, phase by phase (docs/design.md): lock → source → build → release → delivery →
done. The delivery (candidate, health, switch, verify, drain) is the engine's, behind the seam of delivery.py.
Every path ends with restore-if-needed, audit, unlock and a final status.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..core import config, runconfig, statedir, steplib
from ..core.audit import append_audit, audit_line
from ..core.lock import LockTimeout, ServiceLock
from ..core.steplib import JOB_MARGIN_MINUTES
from ..core.transport import CommandFailed, LocalTarget, Target, TargetError
from . import images, phases, source
from .cutover import HealthFailed
from .delivery import Container, Delivery, Engine, Outcome
from .engines import for_target
from .provide import provide_image
from .proxy import ProxyError

# What a deploy's commands raise when the target, the build or the cutover fails: the deploy ends `failed`.
EXPECTED = (TargetError, CommandFailed, source.SourceError, images.ImageError, HealthFailed, LockTimeout,
            ProxyError, OSError)  # fmt: skip


def hold_signals() -> None:
    """The deploy is decided: a late SIGTERM, SIGINT or deadline must not cut its cleanup short."""
    signal.setitimer(signal.ITIMER_REAL, 0)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(sig, signal.SIG_IGN)


T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    service: config.Service
    branch: str
    force_rebuild: bool
    lock_wait_s: float
    repo_root: str
    # The commit the plan showed: the deploy builds exactly it, never what the branch points to later.
    commit: str | None = None


class Deployment:
    action = "deploy"  # the audit line's `action=`

    def __init__(
        self,
        manifest: config.Manifest,
        settings: Settings,
        target: Target,
        status: steplib.StatusFile,
        engine: Engine | None = None,
    ):
        self.manifest, self.settings, self.target, self.status = manifest, settings, target, status
        self.service = settings.service
        self.name = self.service.name
        self.ref = source.check_ref(self.service.ref or settings.branch)
        self.state_dir = manifest.target.state_dir
        self.state_dir_safe: bool | None = None  # None: not checked yet (the audit line is written as before)
        self.started = time.monotonic()
        self.deadline = self.started + manifest.project.deploy_timeout_minutes * 60
        self.engine = engine or for_target(manifest)
        self.cut: Delivery | None = None
        self.commit: str | None = None
        self.deployed = False
        self.lock: ServiceLock | None = None
        self.cleanups: list[tuple[str, list[str]]] = []

    def log(self, message: str) -> None:
        steplib.log(self.name, message)

    def phase(self, name: str, message: str) -> None:
        self.status.update(phase=name, message=message)
        self.log(message)

    def left(self) -> float:
        """Seconds left of deploy_timeout_minutes, for the timeouts of long commands."""
        return max(10.0, self.deadline - time.monotonic())

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def run(self, cancelled: type[BaseException]) -> str:
        """Deploy; returns the result. Internal errors still release the lock, then keep their traceback."""
        try:
            result, message = self.attempt(cancelled)
        except cancelled as exc:  # the one signal arrived after the outcome was decided, before finish()
            result, message = self.on_cancel(str(exc) or "signal")
        self.finish(result, message)
        return result

    def attempt(self, cancelled: type[BaseException]) -> tuple[str, str]:
        try:
            return self.locked()
        except Outcome as exc:
            return exc.result, str(exc)
        except cancelled as exc:
            return self.on_cancel(str(exc) or "signal")
        except EXPECTED as exc:
            return "failed", str(exc)
        except Exception as exc:
            self.finish("failed", f"internal error: {exc!r}")
            raise

    def locked(self) -> tuple[str, str]:
        self.log(self.opening())
        env = self.env_values()
        self.check_state_dir()
        stale = self.manifest.project.lock_stale_s
        self.lock = ServiceLock(self.target, self.state_dir, self.name)  # reaches the target: inside the try
        self.lock.acquire(
            self.settings.lock_wait_s, stale, lambda holder: self.on_lock_wait(holder.describe())
        )
        self.sweep_leftovers()
        return self.deploy(env)

    def opening(self) -> str:
        return f"starting deployment on port {self.service.port} (branch {self.ref})"

    def sweep_leftovers(self) -> None:
        minutes = self.manifest.project.deploy_timeout_minutes + JOB_MARGIN_MINUTES
        phases.sweep_leftovers(self, minutes, EXPECTED)

    def on_lock_wait(self, holder: str) -> None:
        self.status.update(message=f"waiting for the lock held by {holder}")
        self.log(f"waiting for the lock held by {holder} (up to {self.settings.lock_wait_s:g} s)")

    def check_state_dir(self) -> None:
        """Before the lock, the env-file or the audit line: the state folder is the deploying user's alone."""
        try:
            statedir.ensure(self.target, self.state_dir)
        except statedir.UnsafeStateDir as exc:
            self.state_dir_safe = False  # not even the audit line goes there
            raise Outcome("failed", str(exc)) from None
        self.state_dir_safe = True

    def env_values(self) -> dict[str, str]:
        return phases.env_values(self.service)

    def deploy(self, env: dict[str, str]) -> tuple[str, str]:
        image = self.source()
        assert self.commit is not None
        self.cut = self.engine(self.target, self.manifest, self.service, image, self)
        old = self.cut.survey()
        if old:
            self.status.update(previous_image=old.image)
        self.cut.configure(env, runconfig.salt(self.target, self.state_dir))
        if self.is_unchanged(image, old):
            return "unchanged", f"{self.commit[:7]} already running and healthy; nothing to do"
        self.cut.image = image = self.provide(image)
        env_file = self.put_env_file(env)
        self.release(image, env_file)
        self.cut.deliver(env_file)
        try:
            self.prune(image, old)
        except EXPECTED as exc:  # the new version serves: a failed prune is worth a warning, not a failure
            self.log(f"warning: pruning old images failed: {exc}")
        return "deployed", self.done()

    def source(self) -> str:
        """The commit to deploy (self.commit) and the name of its image."""
        self.status.update(phase="source", message=f"resolving {self.ref}")
        self.commit = self.resolve_commit()
        image = images.image_name(self.manifest, self.name, self.commit)
        self.status.update(commit=self.commit, image=image)
        self.log(f"source at {self.commit[:7]} ({self.ref})")
        return image

    def provide(self, image: str) -> str:
        """The image on the target, built when it is not there yet; the commit moves on if the branch did."""
        self.status.update(phase="build", message=f"preparing image {image}")
        try:
            self.commit, image = provide_image(self, image)
        except source.CommitGone as exc:
            if self.settings.commit is None:
                raise
            raise Outcome(
                "failed", self.gone(f"cannot be fetched (force-pushed off {self.ref}?): {exc}")
            ) from None
        self.status.update(commit=self.commit, image=image)
        return image

    def done(self) -> str:
        return f"deployed {self.commit and self.commit[:7]} in {self.elapsed():.0f} s"

    def resolve_commit(self) -> str:
        planned = self.settings.commit
        if planned is None:
            return source.head_commit(
                self.service, self.ref, self.settings.repo_root, self.builder(), timeout=min(120, self.left())
            )
        # A repository's commit is checked when it is fetched (only what a build needs crosses the network).
        if self.service.path and not source.on_branch(self.settings.repo_root, self.ref, planned):
            raise Outcome("failed", self.gone(f"is no longer on branch {self.ref} (force-pushed?)"))
        return planned

    def gone(self, what: str) -> str:
        assert self.settings.commit is not None
        return f"commit {self.settings.commit[:7]} from the plan {what}; nothing deployed"

    def builder(self) -> Target:
        """Where images are built: the target, or this machine (the runner) when build.where = 'runner'."""
        if self.manifest.build.where == "runner":
            return LocalTarget()
        return self.target

    def is_unchanged(self, image: str, old: Container | None) -> bool:
        return not self.settings.force_rebuild and phases.is_unchanged(self, image, old)

    def release(self, image: str, env_file: str | None) -> None:
        phases.run_release(self, env_file)

    def on_deployed(self) -> None:
        """The engine verified the new version on the live service: from here on, nothing rolls it back."""
        self.deployed = True

    def put_env_file(self, env: dict[str, str]) -> str | None:
        return phases.put_env_file(self, env)

    def prune(self, image: str, old: Container | None) -> None:
        phases.prune(self, image, old)

    def on_cancel(self, signal_name: str) -> tuple[str, str]:
        if self.deployed:
            return (
                "deployed",
                f"deployed {self.commit and self.commit[:7]} ({signal_name} arrived during cleanup)",
            )
        return "cancelled", f"cancelled by {signal_name}"  # finish() restores what the cutover touched

    def finish(self, result: str, message: str) -> None:
        """Drop secrets, report, restore a half-done cutover, audit, unlock. Never raises.

        Ordered for a cancel: GitHub sends SIGINT, SIGTERM 7.5 s later and SIGKILL 2.5 s after that, so
        secrets go first and the status is final before anything slow."""
        hold_signals()
        self.attempt_quietly("remove temporary files", self.run_cleanups)
        if self.cut and self.cut.touched and not self.deployed:
            self.report(result, f"{message}; restoring the previous container", quiet=True)
            restored = self.attempt_quietly("restore", self.cut.restore)
            if result == "cancelled":
                message += f"; {restored or 'restoring the previous container failed'}"
        elif self.cut and self.deployed:
            self.attempt_quietly("stop the previous version", self.cut.settle)
        elif result == "cancelled":
            message += "; running container untouched"
        self.report(result, message)
        if self.state_dir_safe is not False:
            self.attempt_quietly("audit", lambda: self.audit(result))
        self.attempt_quietly("unlock", lambda: self.lock.release() if self.lock else None)

    def attempt_quietly(self, what: str, step: Callable[[], T]) -> T | None:
        """One cleanup step: a failure is a warning, so the steps after it still run."""
        try:
            return step()
        except Exception as exc:  # noqa: BLE001 - the cleanup after this one must still run
            self.log(f"warning: {what} failed: {exc}")
            return None

    def report(self, result: str, message: str, *, quiet: bool = False) -> None:
        self.status.finish(result, message)
        if quiet:
            return
        if result in steplib.RESULTS_OK:
            self.log(message)
        else:
            self.log(f"{result}: {message}")
            steplib.error(self.name, message)

    def audit(self, result: str) -> None:
        line = audit_line(self.name, self.commit, result, self.elapsed(), action=self.action)
        append_audit(self.target, self.state_dir, line)

    def run_cleanups(self) -> None:
        for where, argv in reversed(self.cleanups):
            host = self.target if where == "target" else self.builder()
            host.run(argv, timeout=120)
        self.cleanups.clear()

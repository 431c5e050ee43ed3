"""Health-gated cutover: candidate on a temporary port, health, switch, verify, and restore on any failure.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts. Containers (docs/design.md):
`<project>-<service>` serves, `<project>-<service>-candidate` is tried first, and
`<project>-<service>-previous` is the stopped rollback point while the new container is verified.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping

from ..core import config, runconfig, steplib
from ..core.transport import CommandFailed, Target
from .delivery import Container
from .probe import http_probe
from .proxy import live_name

VERIFY_POLL_S = 0.05  # the port is dark until the first healthy answer: poll fast, not every interval_s
ALIVE_EVERY_S = 1.0  # `docker inspect` is a process spawn: between health probes, ask at most once a second
STOP_TIMEOUT_S = 10
# A restore may run inside a cancel's window (SIGKILL 10 s after GitHub's SIGINT): its stop must be short.
RESTORE_STOP_TIMEOUT_S = 1


class HealthFailed(Exception):
    """No healthy answer before the deadline, or the container died."""


def inspect(target: Target, name: str) -> Container | None:
    """The container, or None when it does not exist. Any other failure raises: a daemon hiccup must never
    look like "nothing is running", or a restore would remove a live container."""
    argv = [
        "docker",
        "container",
        "inspect",
        "--format",
        "{{.Image}}|{{.Config.Image}}|{{.State.Running}}|{{json .Config.Labels}}",
        name,
    ]
    result = target.run(argv, timeout=60)
    if result.returncode != 0 and "no such" in result.stderr.lower():
        return None
    parts = result.stdout.strip().split("|", 3)
    if result.returncode != 0 or len(parts) != 4:
        raise CommandFailed(argv, result)
    try:
        labels = json.loads(parts[3]) or {}
    except json.JSONDecodeError:
        raise CommandFailed(argv, result) from None
    return Container(image_id=parts[0], image=parts[1], running=parts[2] == "true", labels=labels)


def crash_reason(target: Target, name: str) -> str | None:
    """Why the container is not serving (exited / restarting), or None while it runs normally."""
    fmt = "{{.State.Status}}|{{.State.ExitCode}}|{{.RestartCount}}"
    result = target.run(["docker", "container", "inspect", "--format", fmt, name], timeout=60)
    parts = result.stdout.strip().split("|")
    if result.returncode != 0 or len(parts) != 3:
        return f"container {name} is gone"
    status, code, restarts = parts
    if status in {"exited", "dead"} or status == "restarting" or restarts not in {"", "0"}:
        return f"container exited with code {code} (restarts: {restarts})"
    return None


def is_ok(code: int | None) -> bool:
    return code is not None and 200 <= code < 400


def wait_healthy(
    target: Target,
    url: str,
    health: config.Health,
    *,
    poll_s: float | None = None,
    grace_s: float | None = None,
    alive: Callable[[], str | None] | None = None,
) -> float:
    """Seconds until `url` answered 2xx/3xx (probed from the target side); HealthFailed at the deadline."""
    start = time.monotonic()
    time.sleep(health.start_grace_s if grace_s is None else grace_s)
    deadline = start + health.deadline_s
    interval = health.interval_s if poll_s is None else poll_s
    last: int | None = None
    next_alive = time.monotonic()
    for _ in range(10_000_000):
        left = deadline - time.monotonic()
        code = http_probe(target, url, min(health.timeout_s, max(left, 0.5)))
        if is_ok(code):
            return time.monotonic() - start
        last = code
        if alive and time.monotonic() >= next_alive:
            next_alive = time.monotonic() + ALIVE_EVERY_S
            problem = alive()
            if problem:
                raise HealthFailed(problem)
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(interval, left))
    answer = f"HTTP {last}" if last else "no answer"
    raise HealthFailed(f"no healthy answer from {url} within {health.deadline_s:g} s (last: {answer})")


class Cutover:
    """The container moves of one deploy; restore() puts the old container back from any state we reached."""

    def __init__(self, target: Target, manifest: config.Manifest, service: config.Service, image: str):
        self.target = target
        self.service = service
        self.image = image
        self.network = manifest.target.network
        base = live_name(manifest, service)
        self.running, self.candidate, self.previous = base, f"{base}-candidate", f"{base}-previous"
        self.project = manifest.project.name
        self.old: Container | None = None
        self.config: runconfig.Fingerprint | None = None  # set by configure() before any container starts
        self.touched = False
        self.created = False  # this deploy created the container under the running name
        self.stopping = False  # `docker stop` of the old container was started (and maybe cut short)

    def docker(self, *args: str, timeout: float = 60, check: bool = True) -> str:
        return self.target.run(["docker", *args], timeout=timeout, check=check).stdout.strip()

    def log(self, message: str) -> None:
        steplib.log(self.service.name, message)

    def survey(self) -> Container | None:
        """Clear leftovers of an interrupted deploy (we hold the lock), then look at what serves now.

        A `-previous` container only outlives a deploy that was killed mid-cutover; it is the last verified
        version, while a container under the running name beside it never finished its check: restore it."""
        self.docker("rm", "-f", self.candidate, check=False)
        if inspect(self.target, self.previous):
            self.log(f"restoring {self.previous} left by an interrupted deploy")
            self.docker(
                "stop", "-t", str(STOP_TIMEOUT_S), self.previous, timeout=STOP_TIMEOUT_S + 60, check=False
            )
            self.docker("rm", "-f", self.running, check=False)
            self.docker("rename", self.previous, self.running)
            self.docker("start", self.running)
        self.old = inspect(self.target, self.running)
        return self.old

    def configure(self, env: Mapping[str, str], salt: bytes) -> runconfig.Fingerprint:
        """Fingerprint what the new container will run with; it is labelled with it."""
        self.config = runconfig.fingerprint(runconfig.run_config(self.service, self.network, env), salt)
        return self.config

    def ensure_network(self) -> None:
        if self.target.run(["docker", "network", "inspect", self.network], timeout=60).returncode != 0:
            result = self.target.run(["docker", "network", "create", self.network], timeout=60)
            if result.returncode != 0 and "already exists" not in result.stderr:
                raise CommandFailed(["docker", "network", "create", self.network], result)

    def _run_args(self, name: str, publish: str, env_file: str | None, alias: bool) -> list[str]:
        args = ["--name", name, *runconfig.RUN_OPTIONS, "--network", self.network]
        if alias:
            args += ["--network-alias", self.service.name]
        if env_file:
            args += ["--env-file", env_file]
        args += [
            "--label",
            f"wfgen.project={self.project}",
            "--label",
            f"wfgen.service={self.service.name}",
        ]
        if self.config:
            args += self.config.label_args()
        args += runconfig.vars_label_args(self.service)
        return [*args, "-p", publish, self.image]

    def name_candidate(self) -> str:
        """The name the new container starts under (the image is final by now)."""
        return self.candidate

    def start_candidate(self, env_file: str | None) -> str:
        """Run the candidate on a docker-assigned loopback port; returns its health URL."""
        self.touched = True
        cport = self.service.container_port
        self.docker(
            "run", "-d", *self._run_args(self.candidate, f"127.0.0.1::{cport}", env_file, alias=False)
        )
        shown = self.target.run(["docker", "port", self.candidate, f"{cport}/tcp"], timeout=60)
        mapped = shown.stdout.strip().splitlines()
        host_port = mapped[0].rsplit(":", 1)[-1] if mapped else ""
        if not host_port.isdigit():
            # A candidate that exited at once has no port left to show: its exit is the news, not docker's.
            why = shown.stderr.strip() or repr(mapped)
            problem = crash_reason(self.target, self.candidate)
            raise HealthFailed(problem or f"docker assigned no host port to the candidate ({why})")
        return self.service.health_url(int(host_port))

    def candidate_logs(self, lines: int = 20) -> list[str]:
        result = self.target.run(["docker", "logs", "--tail", str(lines), self.candidate], timeout=60)
        return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()][-lines:]

    def switch(self, env_file: str | None) -> float:
        """Candidate out, old renamed to -previous (still serving), new created; then stop old + start new.

        Returns the monotonic time the port went dark."""
        self.docker("rm", "-f", self.candidate)
        if self.old:
            self.docker("rename", self.running, self.previous)
        publish = f"{self.service.port}:{self.service.container_port}"
        self.created = True  # before: a create cut short by a signal may still complete in the daemon
        self.docker("create", *self._run_args(self.running, publish, env_file, alias=True))
        dark = time.monotonic()
        if self.old and self.old.running:
            self.stopping = True
            self.docker("stop", "-t", str(STOP_TIMEOUT_S), self.previous, timeout=STOP_TIMEOUT_S + 60)
        self.docker("start", self.running)
        return dark

    def verify(self) -> float:
        url = self.service.health_url(self.service.port)
        alive = lambda: crash_reason(self.target, self.running)  # noqa: E731
        return wait_healthy(
            self.target, url, self.service.health, poll_s=VERIFY_POLL_S, grace_s=0, alive=alive
        )

    def must_redeploy(self) -> str | None:
        """Why what runs must be replaced even when its image and configuration are current, if it must."""
        return None

    def switch_note(self) -> str:
        return "switched; previous container kept for rollback" if self.old else "started"

    def served(self, dark_since: float) -> str:
        """What the log says once the new container answers on the public port."""
        dark = f" (port dark {time.monotonic() - dark_since:.2f} s)" if self.old else ""
        return f"healthy on port {self.service.port}{dark}"

    def draining(self) -> str | None:
        """What the drain phase waits for, or None when there is nothing to drain."""
        return None

    def drain(self) -> None:
        """Nothing to drain: the old container stopped before the new one started."""

    def settle(self) -> None:
        """Nothing is left running beside the new container once it is verified."""

    def commit(self) -> None:
        """The new container is verified: drop the stopped rollback container (its image stays)."""
        self.docker("rm", "-f", self.previous, check=False)
        self.touched = False

    def restore(self) -> str:
        """Undo whatever part of the cutover happened; only ever removes containers this deploy created."""
        what = self._restore()
        self.touched = False
        return what

    def _restore(self) -> str:
        self.docker("rm", "-f", self.candidate, check=False)
        if inspect(self.target, self.previous):
            if self.created:
                self.docker("rm", "-f", self.running, check=False)
            if self.stopping:
                # A stop cut short by a signal goes on in the daemon: end it now (the old container already
                # got its stop signal), or `start` below is a no-op on a container that stops a moment later.
                stop = str(RESTORE_STOP_TIMEOUT_S)
                self.docker("stop", "-t", stop, self.previous, timeout=RESTORE_STOP_TIMEOUT_S + 30)
            self.docker("rename", self.previous, self.running)
            if self.old and self.old.running:
                self.docker("start", self.running)
                restored = inspect(self.target, self.running)
                if restored is None or not restored.running:
                    return "previous container restored but it is not running"
            return "previous container restored"
        if self.old is None:
            if self.created:
                self.docker("rm", "-f", self.running, check=False)
                return "new container removed; nothing was running before"
            return "nothing was running before"
        return "running container untouched"

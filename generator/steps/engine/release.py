"""The release command (`services.<name>.release`): once per deploy, a one-off container of the new image.

It runs after the image is built and before the new version starts, with the service's env-file and network,
so the old version serves throughout and keeps serving when it fails. The deploy holds the service's lock,
so two deploys of one service never run it at once. The command replaces the image's CMD (an ENTRYPOINT stays
in front of it), as with `docker run IMAGE command...`; no shell.

The container runs detached and is waited for, not `--rm`: its output is read back in order (`docker logs
--timestamps`) before it is removed, also when it overran its timeout. Its name, `<project>-<service>-release-
<12 hex>`, is registered with the deploy's cleanups before it starts, so a cancelled deploy removes it too;
one left by a killed deploy is removed by the next deploy of the service (`remove_leftovers`).

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.transport import TIMED_OUT, CommandFailed, Target

ROLE = "release"
TAIL_LINES = 20
START_TIMEOUT_S = 120  # `docker run -d` returns once the container started (or could not)
STOP_TIMEOUT_S = 60


class ReleaseFailed(Exception):
    """The release command exited non-zero, overran its timeout or could not start; `tail` is its output."""

    def __init__(self, message: str, tail: Sequence[str] = ()):
        super().__init__(message)
        self.tail = list(tail)


@dataclass(frozen=True)
class Release:
    """One run of a service's release command: where, as what, with which settings."""

    project: str
    service: str
    network: str
    image: str
    command: tuple[str, ...]
    env_file: str | None
    name: str

    def run_args(self) -> list[str]:
        """`docker run` of the one-off container: no ports, no restart, labelled as the service's release."""
        argv = ["docker", "run", "-d", "--init", "--name", self.name, "--network", self.network]
        if self.env_file:
            argv += ["--env-file", self.env_file]
        argv += [
            "--label", f"wfgen.project={self.project}",
            "--label", f"wfgen.service={self.service}",
            "--label", f"wfgen.role={ROLE}",
        ]  # fmt: skip
        return [*argv, self.image, *self.command]


def name_prefix(project: str, service: str) -> str:
    return f"{project}-{service}-{ROLE}-"


def container_name(project: str, service: str) -> str:
    return name_prefix(project, service) + secrets.token_hex(6)


def is_release_container(name: str, project: str, service: str) -> bool:
    """A versioned container is `<live>-<commit12>`: a commit never starts with `release-`."""
    return name.startswith(name_prefix(project, service))


def run(target: Target, release: Release, timeout_s: float) -> tuple[float, list[str]]:
    """Run the command to its end; (seconds it took, its last lines). ReleaseFailed when it did not succeed.

    Not cut short by anything but its timeout: on a cancel the deploy's cleanup removes the container."""
    started = time.monotonic()
    result = target.run(release.run_args(), timeout=START_TIMEOUT_S)
    if result.returncode != 0:
        tail = output_tail(target, release.name)
        remove(target, release.name)
        detail = str(CommandFailed(release.run_args(), result)).partition(": ")[2]
        raise ReleaseFailed(f"release command could not start: {detail}", tail)
    left = max(1.0, timeout_s - (time.monotonic() - started))
    waited = target.run(["docker", "wait", release.name], timeout=left)
    seconds = time.monotonic() - started
    tail = output_tail(target, release.name)
    remove(target, release.name)
    if waited.returncode == TIMED_OUT:
        raise ReleaseFailed(f"release command timed out after {timeout_s:g} s", tail)
    code = waited.stdout.strip()
    if waited.returncode != 0 or not code.lstrip("-").isdigit():
        raise CommandFailed(["docker", "wait", release.name], waited)
    if int(code) != 0:
        raise ReleaseFailed(f"release command exited with {code}", tail)
    return seconds, tail


def output_tail(target: Target, name: str, lines: int = TAIL_LINES) -> list[str]:
    """The container's last lines, stdout and stderr merged in the order Docker received them (lines of the
    two streams written within a few milliseconds of each other may swap)."""
    argv = ["docker", "logs", "--timestamps", "--tail", str(lines), name]
    result = target.run(argv, timeout=60)
    if result.returncode != 0:
        return []
    return merge_timestamped(result.stdout, result.stderr)[-lines:]


def merge_timestamped(*streams: str) -> list[str]:
    """Lines of `docker logs --timestamps` streams, merged by their timestamps, without them (sort is stable:
    lines of one stream with the same timestamp keep their order)."""
    stamped = []
    for text in streams:
        for line in text.splitlines():
            stamp, _, rest = line.partition(" ")
            stamped.append((stamp, rest))
    stamped.sort(key=lambda pair: _sortable(pair[0]))
    return [rest for _, rest in stamped if rest.strip()]


def _sortable(stamp: str) -> str:
    """RFC 3339 with nanoseconds, trailing zeros trimmed (as docker prints it), padded to sort as text."""
    whole, _, fraction = stamp.removesuffix("Z").partition(".")
    return f"{whole}.{fraction.ljust(9, '0')}"


def remove(target: Target, name: str) -> None:
    target.run(["docker", "rm", "-f", name], timeout=STOP_TIMEOUT_S)


def remove_leftovers(target: Target, project: str, service: str) -> int:
    """Remove release containers of the service that killed deploys left (the caller holds its lock)."""
    argv = [
        "docker", "ps", "-a", "--filter", f"label=wfgen.project={project}",
        "--filter", f"label=wfgen.service={service}", "--filter", f"label=wfgen.role={ROLE}",
        "--format", "{{.Names}}",
    ]  # fmt: skip
    names = [
        name
        for name in target.run(argv, timeout=60, check=True).stdout.split()
        if is_release_container(name, project, service)
    ]
    if names:
        target.run(["docker", "rm", "-f", *names], timeout=STOP_TIMEOUT_S, check=True)
    return len(names)

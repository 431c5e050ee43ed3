"""`docker build` of a service's image with wfgen's labels: on BuildKit where the host's Docker has it, else
on the classic builder with every label in one metadata step.

What each Docker gets (the CLI on the building host decides, not the engine alone):
- CLI 18.09 to 22.x and an engine of 18.09 or later on Linux (Debian's and Ubuntu's `docker.io` 20.10, among
  others): BuildKit, built into both, turned on with DOCKER_BUILDKIT=1.
- CLI 23 or later: BuildKit when the buildx plugin is installed (Docker's own packages install it); without it
  `docker build` is the classic builder, and DOCKER_BUILDKIT=1 would be an error.
- DOCKER_BUILDKIT=0 (or false) in wfgen's environment keeps the classic builder, on the runner and on the
  target: wfgen sets DOCKER_BUILDKIT for every build it runs, so the building host's own value never applies.
BuildKit takes `--label` for free and builds no intermediate containers; the classic builder turns each
`--label` into a step of its own, an intermediate container of about a second, so wfgen builds there first
and then adds all the labels in one LABEL step. Through buildx the image is loaded into the engine
(`--load`), whichever builder instance is selected.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

import enum
import os
import re
import time
import weakref
from collections.abc import Callable, Mapping
from typing import IO

from ..core.transport import Target
from .images import ImageError, tail

BUILDKIT_ENV = {"DOCKER_BUILDKIT": "1"}
CLASSIC_ENV = {"DOCKER_BUILDKIT": "0"}
FIRST_VERSION = (18, 9)  # BuildKit in the engine and in the CLI
BUILDX_ONLY = (23, 0)  # from here the CLI's BuildKit client is the buildx plugin
OFF = frozenset({"0", "f", "false"})  # what Docker's CLI reads as DOCKER_BUILDKIT turned off
FRONTEND_HINT = (
    "BuildKit could not fetch the Dockerfile frontend its `# syntax=` line names: let the building host "
    "reach that registry, remove the line, or set DOCKER_BUILDKIT=0 to build on the classic builder"
)


# What the classic builder says when a cached intermediate image it was reusing is removed under it by a
# `docker rmi` elsewhere on the host, such as another leg's prune (moby/moby#29011, #33396).
LOST_CACHE = re.compile(
    r"unable to find image \"?sha256:|no such image: sha256:|unknown parent image id"
    r"|failed to get digest sha256:",
    re.IGNORECASE,
)


class Builder(enum.Enum):
    CLASSIC = "classic"
    BUILDKIT = "buildkit"  # built into a CLI before 23
    BUILDX = "buildx"  # a CLI of 23 or later with the buildx plugin


_found: weakref.WeakKeyDictionary[Target, Builder] = weakref.WeakKeyDictionary()


def _version(text: str) -> tuple[int, int] | None:
    found = re.match(r"(\d+)\.(\d+)", text)
    return (int(found[1]), int(found[2])) if found else None


def builder(host: Target) -> Builder:
    """How `docker build` on `host` runs (see the module's docstring); asked once per host."""
    if os.environ.get("DOCKER_BUILDKIT", "").strip().lower() in OFF:
        return Builder.CLASSIC
    if host not in _found:
        _found[host] = _ask(host)
    return _found[host]


def _ask(host: Target) -> Builder:
    fmt = "{{.Client.Version}} {{.Server.Version}} {{.Server.Os}}"
    versions = host.run(["docker", "version", "--format", fmt], timeout=30)
    words = versions.stdout.split()
    if versions.returncode != 0 or len(words) != 3 or words[2] != "linux":
        return Builder.CLASSIC
    client, server = _version(words[0]), _version(words[1])
    if client is None or server is None or min(client, server) < FIRST_VERSION:
        return Builder.CLASSIC
    if client < BUILDX_ONLY:
        return Builder.BUILDKIT
    buildx = host.run(["docker", "buildx", "version"], timeout=30)
    return Builder.BUILDX if buildx.returncode == 0 else Builder.CLASSIC


def _no_line_break(text: str) -> None:
    if "\n" in text or "\r" in text:
        raise ImageError(f"a label cannot hold a line break: {text!r}")


def _quoted(text: str) -> str:
    """A double-quoted Dockerfile word: no variable expansion, no escape left unescaped."""
    _no_line_break(text)
    return '"' + "".join("\\" + char if char in '\\"$' else char for char in text) + '"'


def label_dockerfile(image: str, labels: Mapping[str, str]) -> str:
    """A Dockerfile that puts all `labels` on `image` in one metadata step (the classic builder's way)."""
    pairs = " ".join(f"{_quoted(key)}={_quoted(value)}" for key, value in labels.items())
    return f"FROM {image}\nLABEL {pairs}\n"


def unlabelled(image: str) -> str:
    """The tag of a classic build before its labels: `image` only ever names a labelled, finished build."""
    return f"{image}-unlabelled"


def _label(host: Target, image: str, labels: Mapping[str, str], timeout: float) -> None:
    """Tag the unlabelled build as `image` plus `labels`: a build with no context, its Dockerfile on stdin.
    The unlabelled tag goes either way; when the label step fails, `image` was never tagged, so no later
    deploy can take an unlabelled image for a finished build."""
    argv = ["docker", "build", "--pull=false", "-t", image, "-"]
    dockerfile = label_dockerfile(unlabelled(image), labels).encode()
    result = host.run(argv, input=dockerfile, timeout=timeout, env=CLASSIC_ENV)
    host.run(["docker", "rmi", unlabelled(image)], timeout=120)
    if result.returncode != 0:
        raise ImageError(f"docker build (labels) failed (exit {result.returncode})", tail(result))


def stage_args(stage: str | None) -> list[str]:
    return ["--target", stage] if stage else []


def build_dir(
    host: Target,
    image: str,
    labels: Mapping[str, str],
    context: str,
    dockerfile: str,
    timeout: float,
    stage: str | None = None,
) -> None:
    """docker build of a directory on `host`; the Dockerfile path is relative to the context."""
    source = ["-f", f"{context}/{dockerfile}", context]
    _build(host, image, labels, source, None, timeout, stage)


def build_stream(
    host: Target,
    image: str,
    labels: Mapping[str, str],
    tar: IO[bytes],
    dockerfile: str,
    timeout: float,
    stage: str | None = None,
) -> None:
    """docker build with the context streamed as a tar on stdin (no copy of the source on `host`)."""
    _build(host, image, labels, ["-f", dockerfile, "-"], tar, timeout, stage)


def _build(
    host: Target,
    image: str,
    labels: Mapping[str, str],
    source: list[str],
    tar: IO[bytes] | None,
    timeout: float,
    stage: str | None,
) -> None:
    """Both builds: `image` from `source` (the Dockerfile and the context, '-' for `tar` on stdin) with its
    labels, on BuildKit in one build, else the unlabelled tag and then one LABEL step, in what is left of
    `timeout`."""
    deadline = time.monotonic() + timeout
    for text in (*labels, *labels.values()):  # before building, whichever builder adds the labels
        _no_line_break(text)
    way = builder(host)
    if way is Builder.CLASSIC:
        options, env = ["-t", unlabelled(image)], CLASSIC_ENV
    else:
        labelled = [f"--label={key}={value}" for key, value in labels.items()]
        load = ["--load"] if way is Builder.BUILDX else []
        options, env = ["--progress=plain", *load, "-t", image, *labelled], BUILDKIT_ENV
    argv = ["docker", "build", "--pull=false", *options, *stage_args(stage), *source]
    if tar is None:
        result = host.run(argv, timeout=_left(deadline), env=env)
    else:
        result = host.run_stream(argv, stdin_file=tar, timeout=_left(deadline), env=env)
    if result.returncode != 0:
        lines = tail(result)
        frontend = way is not Builder.CLASSIC and any("docker/dockerfile" in line for line in lines)
        hint = f": {FRONTEND_HINT}" if frontend else ""
        raise ImageError(f"docker build failed (exit {result.returncode}){hint}", lines)
    if way is Builder.CLASSIC:
        _label(host, image, labels, _left(deadline))


def lost_cache(error: ImageError) -> str | None:
    """The line saying a build failed because a cached layer vanished mid-build (the next build makes it
    anew), or None."""
    return next((line for line in error.tail if LOST_CACHE.search(line)), None)


def once_more_on_lost_cache(build: Callable[[], None], log: Callable[[str], None]) -> None:
    """Run `build`; once more when it lost a cached layer to a `docker rmi` elsewhere on the host, such as
    another leg's prune. The deploy's deadline still holds: it cancels the leg, retry or not."""
    try:
        build()
    except ImageError as exc:
        line = lost_cache(exc)
        if line is None:
            raise
        log(f"a cached layer was removed during the build ({line.strip()}); building once more")
        build()


def _left(deadline: float) -> float:
    """The build's time that remains (for the build after the probe, for the label step after the build);
    some, even when what came before took all of it."""
    return max(deadline - time.monotonic(), 30.0)

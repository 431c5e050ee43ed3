"""`docker build` of a service's image with wfgen's labels: on BuildKit where the host's Docker has it, else
on the classic builder with every label in one metadata step.

What each Docker gets (the CLI on the building host decides, not the engine alone):
- CLI 18.09 to 22.x and an engine of 18.09 or later on Linux (Debian's and Ubuntu's `docker.io` 20.10, among
  others): BuildKit, built into both, turned on with DOCKER_BUILDKIT=1.
- CLI 23 or later: BuildKit when the buildx plugin is installed (Docker's own packages install it); without it
  `docker build` is the classic builder, and DOCKER_BUILDKIT=1 would be an error.
- DOCKER_BUILDKIT=0 in wfgen's environment keeps the classic builder everywhere.
BuildKit takes `--label` for free and builds no intermediate containers; the classic builder turns each
`--label` into a step of its own, an intermediate container of about a second, so wfgen builds there first
and then adds all the labels in one LABEL step.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from typing import IO

from ..core.transport import Target
from .images import ImageError, tail

BUILDKIT_ENV = {"DOCKER_BUILDKIT": "1"}
FIRST_VERSION = (18, 9)  # BuildKit in the engine and in the CLI
BUILDX_ONLY = (23, 0)  # from here the CLI's BuildKit client is the buildx plugin


def _version(text: str) -> tuple[int, int] | None:
    found = re.match(r"(\d+)\.(\d+)", text)
    return (int(found[1]), int(found[2])) if found else None


def has_buildkit(host: Target) -> bool:
    """Whether `docker build` on `host` can run on BuildKit (see the module's docstring)."""
    if os.environ.get("DOCKER_BUILDKIT") == "0":
        return False
    fmt = "{{.Client.Version}} {{.Server.Version}} {{.Server.Os}}"
    versions = host.run(["docker", "version", "--format", fmt], timeout=60)
    words = versions.stdout.split()
    if versions.returncode != 0 or len(words) != 3 or words[2] != "linux":
        return False
    client, server = _version(words[0]), _version(words[1])
    if client is None or server is None or min(client, server) < FIRST_VERSION:
        return False
    return client < BUILDX_ONLY or host.run(["docker", "buildx", "version"], timeout=60).returncode == 0


def _quoted(text: str) -> str:
    """A double-quoted Dockerfile word: no variable expansion, no escape left unescaped."""
    if "\n" in text or "\r" in text:
        raise ImageError(f"a label cannot hold a line break: {text!r}")
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
    result = host.run(argv, input=label_dockerfile(unlabelled(image), labels).encode(), timeout=timeout)
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
    kit = has_buildkit(host)
    tag = ["-t", image, *(f"--label={key}={value}" for key, value in labels.items())]
    options = ["--progress=plain", *tag] if kit else ["-t", unlabelled(image)]
    argv = ["docker", "build", "--pull=false", *options, *stage_args(stage), *source]
    env = BUILDKIT_ENV if kit else None
    if tar is None:
        result = host.run(argv, timeout=timeout, env=env)
    else:
        result = host.run_stream(argv, stdin_file=tar, timeout=timeout, env=env)
    if result.returncode != 0:
        raise ImageError(f"docker build failed (exit {result.returncode})", tail(result))
    if not kit:
        _label(host, image, labels, _left(deadline))


def _left(deadline: float) -> float:
    """The build's time that remains for its label step; some, even when the build took all of it."""
    return max(deadline - time.monotonic(), 30.0)

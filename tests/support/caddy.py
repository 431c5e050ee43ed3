"""A Caddy image for proxy tests, built FROM scratch out of Debian's `caddy` package (no registry here).

Built once per engine and Caddy version, and kept under a fixed tag so later sessions reuse it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.docker import candidate_docker_host, docker, probe_engine
from tests.support.requires import skip_or_fail

# Debian's package by default; WFGEN_TEST_CADDY may name another build (e.g. the upstream static binary)
# to run the same tests against the Caddy version production pins.
CADDY = Path(os.environ.get("WFGEN_TEST_CADDY") or "/usr/bin/caddy")
IMAGE_REPO = "wfgen-test-caddy"
CURRENT = f"{IMAGE_REPO}:current"  # what test manifests name (tests/support/manifests.py TEST_PROXY)
# The layout of the official image: config (autosave.json) and data (certificates, the internal CA).
DOCKERFILE = """\
FROM scratch
COPY rootfs/ /
ENV HOME=/data XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
WORKDIR /data
ENTRYPOINT ["/usr/bin/caddy"]
"""


def caddy_version() -> str:
    """`caddy version` of the installed binary, e.g. "2.6.2"; skips (fails under CI) without it."""
    if not CADDY.is_file():
        skip_or_fail(f"{CADDY} not found: apt-get install caddy")
    proc = subprocess.run(
        [str(CADDY), "version"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )
    version = proc.stdout.split()[0] if proc.returncode == 0 and proc.stdout.split() else ""
    if not version:
        skip_or_fail(f"{CADDY} version failed: {proc.stderr.strip()}")
    return version


def shared_libraries(binary: Path) -> list[Path]:
    """The files `ldd` says the binary loads (the dynamic loader included); empty for a static binary."""
    proc = subprocess.run(
        ["ldd", str(binary)], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:  # "not a dynamic executable"
        return []
    found = re.findall(r"(/\S+)", proc.stdout)
    return sorted({Path(path) for path in found if Path(path).is_file()})


def _rootfs(root: Path) -> None:
    for source in [CADDY, *shared_libraries(CADDY)]:
        target = root / ("usr/bin/caddy" if source == CADDY else source.relative_to("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source.resolve(), target)
    for folder in ("config", "data", "tmp"):
        (root / folder).mkdir()
        (root / folder).chmod(0o1777)  # the proxy may run as any uid (the deploy user's)


def image_tag(version: str) -> str:
    return f"{IMAGE_REPO}:{re.sub(r'[^A-Za-z0-9_.-]', '-', version.lstrip('v'))}"


def ensure_caddy_image(docker_host: str) -> str:
    """The test Caddy image on `docker_host`, built when missing and tagged CURRENT; returns CURRENT."""
    tag = image_tag(caddy_version())
    if docker(docker_host, "image", "inspect", tag, timeout=60).returncode != 0:
        build_image(docker_host, tag)
    tagged = docker(docker_host, "tag", tag, CURRENT, timeout=60)
    if tagged.returncode != 0:
        raise RuntimeError(f"tagging {tag} as {CURRENT} failed: {tagged.stderr.strip()}")
    return CURRENT


def build_image(docker_host: str, tag: str) -> None:
    with tempfile.TemporaryDirectory(prefix="wfgen-caddy-image-") as tmp:
        context = Path(tmp)
        _rootfs(context / "rootfs")
        (context / "Dockerfile").write_text(DOCKERFILE)
        proc = docker(docker_host, "build", "-q", "-t", tag, str(context), timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"building {tag} failed: {proc.stderr.strip()[-2000:]}")


def benchmark_engine() -> str | None:
    """For a benchmark: the test engine with the proxy image built, or None after saying why on stderr."""
    docker_host = candidate_docker_host()
    if probe_engine(docker_host) is None:
        print(f"no Docker engine answers at {docker_host}; set DOCKER_HOST", file=sys.stderr)
        return None
    ensure_caddy_image(docker_host)
    return docker_host

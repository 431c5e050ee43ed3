"""Helpers for tests that talk to a real Docker engine: find it, run the CLI, clean up what a test created."""

from __future__ import annotations

import os
import secrets
import subprocess

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


def unique_name(prefix: str = "wfgt") -> str:
    """A project/container name no other engineer or test run will pick."""
    return f"{prefix}-{secrets.token_hex(4)}"


def candidate_docker_host(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("WFGEN_TEST_DOCKER_HOST") or env.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def docker_env(docker_host: str) -> dict[str, str]:
    """os.environ plus DOCKER_HOST, for subprocesses that run docker."""
    return {**os.environ, "DOCKER_HOST": docker_host}


def docker(
    docker_host: str, *args: str, timeout: float = 120, check: bool = False, input: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI against `docker_host`; text output, bounded by `timeout`."""
    return subprocess.run(
        ["docker", *args],
        env=docker_env(docker_host),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        input=None if input is None else input.decode(),
        stdin=subprocess.DEVNULL if input is None else None,
    )


def probe_engine(docker_host: str, timeout: float = 20) -> str | None:
    """The server version, or None when no engine answers at docker_host."""
    try:
        proc = docker(docker_host, "info", "--format", "{{.ServerVersion}}", timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = proc.stdout.strip()
    return version if proc.returncode == 0 and version else None


def _owned(name: str, project: str) -> bool:
    name = name.lstrip("/")
    return name.startswith(project) or f"/{project}" in name


def _lines(docker_host: str, *args: str) -> list[str]:
    proc = docker(docker_host, *args, timeout=60)
    return [line for line in proc.stdout.splitlines() if line.strip()] if proc.returncode == 0 else []


def cleanup_project(docker_host: str, project: str) -> None:
    """Remove containers, images, networks and volumes whose name starts with `project` (best effort)."""
    if len(project) < 4:
        raise ValueError(f"refusing to clean up a project prefix this short: {project!r}")
    rows = _lines(docker_host, "ps", "-a", "--format", "{{.ID}} {{.Names}}")
    containers = [cid for cid, _, name in (r.partition(" ") for r in rows) if _owned(name, project)]
    if containers:
        docker(docker_host, "rm", "-f", "-v", *containers, timeout=120)
    rows = _lines(docker_host, "images", "--format", "{{.Repository}}:{{.Tag}}")
    images = [ref for ref in rows if _owned(ref, project)]
    if images:
        # --no-prune: the untagged parents are build-cache layers other tests share (the fixture's `COPY
        # busybox`); deleting one while a parallel build reuses it fails that build with "unknown parent image".
        docker(docker_host, "rmi", "-f", "--no-prune", *images, timeout=120)
    for kind in ("network", "volume"):
        names = [n for n in _lines(docker_host, kind, "ls", "--format", "{{.Name}}") if _owned(n, project)]
        if names:
            docker(docker_host, kind, "rm", *names, timeout=60)

"""A real Docker registry (Debian's docker-registry) on a free loopback port, storing into a temp dir."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import stop_process
from tests.support.requires import require_executable, skip_or_fail

REGISTRY = "/usr/bin/docker-registry"


@dataclass
class Registry:
    address: str  # "127.0.0.1:PORT", what image names are prefixed with
    workdir: Path
    process: subprocess.Popen[bytes]

    def catalog(self) -> list[str]:
        """Repositories the registry holds (GET /v2/_catalog)."""
        with urllib.request.urlopen(f"http://{self.address}/v2/_catalog", timeout=10) as response:
            return list(json.load(response).get("repositories", []))

    def stop(self) -> None:
        stop_process(self.process)


def _config(storage: Path, port: int) -> str:
    return (
        "version: 0.1\n"
        "log:\n  level: warn\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {storage}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )


def _answers(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_registry(workdir: Path, timeout: float = 20.0) -> Registry:
    """Start the registry and wait (bounded) until GET /v2/ answers 200."""
    require_executable(REGISTRY, "apt-get install docker-registry")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "config.yml"
    config.write_text(_config(workdir / "storage", port))
    with (workdir / "registry.log").open("wb") as log:
        process = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=log, stderr=log)
    registry = Registry(address=f"127.0.0.1:{port}", workdir=workdir, process=process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if _answers(registry.address):
            return registry
        time.sleep(0.2)
    registry.stop()
    tail = (workdir / "registry.log").read_text(errors="replace")[-500:]
    skip_or_fail(f"docker-registry did not answer within {timeout:g} s: {tail}")

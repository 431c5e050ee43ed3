"""Drive `deploy_service.py` against real Docker for tests and the deploy-engine benchmark."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.manifests import manifest_toml, write_resolved_manifest
from tests.support.stepscripts import step_argv

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str, timeout: float = 2.0) -> tuple[int | None, str]:
    """(HTTP status, body) of GET url; (None, "") when nothing answers."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), ""
    except OSError:
        return None, ""


@dataclass
class DeployRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    status: dict[str, Any]

    @property
    def phases(self) -> list[str]:
        return [entry["phase"] for entry in self.status.get("phases", [])]


@dataclass
class DeployBench:
    """A resolved manifest for one service in `workdir`, and a way to run deploy_service.py on it."""

    workdir: Path
    env: dict[str, str]
    service: str
    manifest: Path = field(init=False)
    state_dir: Path = field(init=False)

    def write(self, services: Mapping[str, Any], *, project: Mapping[str, Any], **tables: Any) -> Path:
        self.state_dir = self.workdir / "state"
        target = {"state_dir": str(self.state_dir), **tables.pop("target", {})}
        text = manifest_toml(services, project=project, target=target, proxy=tables.pop("proxy", None))
        for name, table in tables.items():
            text += "\n[" + name + "]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items())
        self.manifest = write_resolved_manifest(self.workdir, text)
        return self.manifest

    def argv(self, *args: str, status: str = "status.json") -> list[str]:
        return step_argv(
            "deploy_service", "--manifest", str(self.manifest),
            "--service", self.service, "--branch", "main", "--status-file", str(self.workdir / status), *args,
        )  # fmt: skip

    def start(
        self, *args: str, status: str = "status.json", env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args, status=status),
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(
        self, proc: subprocess.Popen[str], started: float, status: str = "status.json", timeout: float = 300
    ) -> DeployRun:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=30)
        seconds = time.monotonic() - started
        data = json.loads((self.workdir / status).read_text()) if (self.workdir / status).exists() else {}
        return DeployRun(proc.returncode if proc.returncode is not None else -1, out, err, seconds, data)

    def wait_for_phase(self, phase: str, timeout: float = 120.0, status: str = "status.json") -> None:
        """Until the running deploy's status file says `phase`; AssertionError after `timeout` seconds."""
        path = self.workdir / status
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists() and json.loads(path.read_text())["phase"] == phase:
                return
            time.sleep(0.02)
        raise AssertionError(f"the deploy never reached phase {phase!r} within {timeout:g} s")

    def deploy(
        self, *args: str, status: str = "status.json", env: Mapping[str, str] | None = None
    ) -> DeployRun:
        started = time.monotonic()
        return self.finish(self.start(*args, status=status, env=env), started, status)


class Poller(threading.Thread):
    """GETs url every `every` seconds until stopped; records failures and the longest unanswered stretch."""

    def __init__(self, url: str, every: float = 0.02, expect: str | None = None, timeout: float = 1.0):
        super().__init__(daemon=True)
        self.url, self.every, self.expect, self.timeout = url, every, expect, timeout
        self.ok = 0
        self.failed = 0
        self.longest_gap = 0.0
        self.bodies: set[str] = set()
        self._stop_event = threading.Event()

    def run(self) -> None:
        last_ok = time.monotonic()
        while not self._stop_event.is_set():
            status, body = fetch(self.url, timeout=self.timeout)
            now = time.monotonic()
            if status == 200 and (self.expect is None or self.expect in body):
                self.ok += 1
                self.bodies.add(body.strip())
                self.longest_gap = max(self.longest_gap, now - last_ok)
                last_ok = now
            else:
                self.failed += 1
            self._stop_event.wait(self.every)

    def stop(self) -> Poller:
        self._stop_event.set()
        self.join(timeout=10)
        return self

"""One git repository holding several folder services and the services.toml that deploys them."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from generator.manifest.validate import load_manifest
from generator.render.files import render
from generator.render.output import write_files
from tests.support.docker import docker
from tests.support.fixture_service import BUSYBOX, dockerfile, git, init_repo
from tests.support.fleet import CONTAINER_PORT, Fleet
from tests.support.manifests import TEST_PROXY, toml_table
from tests.support.ports import free_port
from tests.support.requires import skip_or_fail

HEALTH = {"interval_s": 0.25, "timeout_s": 2.0, "deadline_s": 20.0}


class Monorepo(Fleet):
    """A Fleet whose services are folders `services/<name>` of the repository at `root`."""

    def commit(self, files: Mapping[str, str], message: str) -> str:
        """Write `files` (path relative to the repository: text) in a new commit on the checked-out branch."""
        for relative, text in files.items():
            path = self.root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", message)
        return self.head

    def touch(self, service: str, text: str) -> str:
        """A change to the service's own folder (served at /version)."""
        return self.commit({f"services/{service}/www/version": text + "\n"}, f"{service}: {text}")

    def break_health(self, service: str) -> str:
        (self.root / "services" / service / "www" / "health").unlink()
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", f"{service}: no health endpoint")
        return self.head

    def commit_rendered(self, message: str = "wfgen render") -> str:
        """`wfgen render` of services.toml, committed (a commit only when a generated file changed)."""
        write_files(self.root, render(load_manifest(self.manifest), source=self.manifest.name))
        git(self.root, "add", "-A")
        if git(self.root, "status", "--porcelain"):
            git(self.root, "commit", "-q", "-m", message)
        return self.head

    def changed_since(self, commit: str) -> list[str]:
        """The files a push of HEAD after `commit` changes, as GitHub's path filters see them."""
        return git(self.root, "diff", "--name-only", commit, "HEAD").splitlines()

    @property
    def head(self) -> str:
        return git(self.root, "rev-parse", "HEAD")


def make_monorepo(
    root: Path,
    project: str,
    docker_host: str,
    services: Mapping[str, Mapping[str, Any]],
    *,
    project_settings: Mapping[str, Any] | None = None,
    target: Mapping[str, Any] | None = None,
    health: Mapping[str, float] = HEALTH,
) -> Monorepo:
    """services: {name: {"depends_on": [...], "paths": [...], "variant": ..., "delay_s": ...}} (variants as in
    fixture_service.VARIANTS); `lib/` is there to share. `target` adds to (or replaces) the local target's
    settings, e.g. an ssh target's."""
    if not BUSYBOX.is_file():
        skip_or_fail(f"{BUSYBOX} not found: apt-get install busybox-static")
    root.mkdir(parents=True, exist_ok=True)
    init_repo(root)
    repo = Monorepo(root=root, project=project, docker_host=docker_host)
    (root / ".gitignore").write_text(".wfgen/\nstate/\n", encoding="utf-8")
    (root / "lib").mkdir()
    (root / "lib" / "shared.txt").write_text("shared v1\n", encoding="utf-8")
    sections = [
        toml_table("project", {"name": project, "branches": ["main", "develop"], "lock_wait_s": 30,
                               **(project_settings or {})}),
        toml_table("target", {"kind": "local", "network": repo.network, "state_dir": str(repo.state_dir),
                              **(target or {})}),
        toml_table("infrastructure", {"networks": [repo.network]}),
        toml_table("proxy", TEST_PROXY),
    ]  # fmt: skip
    for name, spec in services.items():
        folder = root / "services" / name
        (folder / "www").mkdir(parents=True)
        shutil.copy2(BUSYBOX, folder / "busybox")
        delay_s = float(spec.get("delay_s", 0.0))
        text = dockerfile(spec.get("variant", "ok"), CONTAINER_PORT, delay_s)
        (folder / "Dockerfile").write_text(text, encoding="utf-8")
        (folder / "www" / "health").write_text("ok\n", encoding="utf-8")
        (folder / "www" / "index.html").write_text(f"<h1>{name}</h1>\n", encoding="utf-8")
        repo.ports[name] = free_port()
        table = {"path": f"services/{name}", "port": repo.ports[name], "container_port": CONTAINER_PORT,
                 "depends_on": list(spec.get("depends_on", [])), "paths": list(spec.get("paths", [])),
                 "health": dict(health)}  # fmt: skip
        sections.append(toml_table(f"services.{name}", table))
    repo.manifest.write_text("\n\n".join("\n".join(s) for s in sections) + "\n", encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial fleet")
    docker(docker_host, "network", "create", repo.network, timeout=60, check=True)
    return repo

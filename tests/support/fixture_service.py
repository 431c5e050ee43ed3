"""A tiny real service for deploy tests: a git repo whose FROM-scratch image serves files via busybox httpd."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.requires import skip_or_fail

BUSYBOX = Path("/bin/busybox")
VARIANTS = ("ok", "broken_health", "exits", "prints_env", "bad_dockerfile", "slow_stop")


def git(repo: Path, *args: str, timeout: float = 60) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def dockerfile(variant: str, port: int, delay_s: float, build_s: float = 0.0) -> str:
    """The Dockerfile text for a variant (see VARIANTS); `build_s`: a build step that takes that long, run
    again whenever www/ changes (a new marker), like a real build after a commit."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    if variant == "bad_dockerfile":
        return "FROM scratch\nCOPY this-file-does-not-exist /nowhere\n"
    if variant == "exits":
        cmd = ["/bin/busybox", "sh", "-c", "echo 'fixture: exiting on purpose' >&2; exit 1"]
    elif variant == "prints_env":  # an app that logs its whole environment, secrets included, then crashes
        cmd = ["/bin/busybox", "sh", "-c", "/bin/busybox env >&2; /bin/busybox sleep 1; exit 1"]
    elif variant == "slow_stop":  # ignores SIGTERM: `docker stop -t N` takes the full N seconds
        serve = f"trap '' TERM; exec /bin/busybox httpd -f -p {port} -h /www"
        cmd = ["/bin/busybox", "sh", "-c", serve]
    else:
        serve = f"exec /bin/busybox httpd -f -p {port} -h /www"
        if delay_s > 0:
            cmd = ["/bin/busybox", "sh", "-c", f"/bin/busybox sleep {delay_s:g}; {serve}"]
        else:
            cmd = ["/bin/busybox", "httpd", "-f", "-p", str(port), "-h", "/www"]
    build = f'RUN ["/bin/busybox", "sleep", "{build_s:g}"]\n' if build_s > 0 else ""
    return f"FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n{build}EXPOSE {port}\nCMD {json.dumps(cmd)}\n"


@dataclass
class ServiceRepo:
    """A real git repository on disk; every change is a commit so deploys see a new sha."""

    name: str
    path: Path
    port: int
    variant: str
    delay_s: float
    branch: str
    build_s: float = 0.0

    @property
    def url(self) -> str:
        return self.path.as_uri()

    @property
    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD")

    def _write_tree(self) -> None:
        (self.path / "Dockerfile").write_text(dockerfile(self.variant, self.port, self.delay_s, self.build_s))
        www = self.path / "www"
        www.mkdir(exist_ok=True)
        (www / "index.html").write_text(f"<h1>{self.name}</h1>\n")
        health = www / "health"
        if self.variant == "broken_health":
            health.unlink(missing_ok=True)
        else:
            health.write_text("ok\n")

    def _commit(self, message: str) -> str:
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "--allow-empty", "-m", message)
        return self.head

    def commit_variant(self, variant: str, *, delay_s: float | None = None) -> str:
        """Switch the service to `variant` in a new commit; returns its sha."""
        self.variant = variant
        if delay_s is not None:
            self.delay_s = delay_s
        self._write_tree()
        return self._commit(f"switch to {variant}")

    def write_marker(self, text: str) -> str:
        """Change www/version (served at /version) in a new commit; returns its sha."""
        (self.path / "www").mkdir(exist_ok=True)
        (self.path / "www" / "version").write_text(text + "\n")
        return self._commit(f"marker {text}")


def init_repo(path: Path, author: str = "wfgen tests") -> None:
    """`git init -b main` with a local identity, so commits work on a machine without a git config."""
    git(path, "init", "-q", "-b", "main")
    for key, value in (
        ("user.name", author),
        ("user.email", "tests@wfgen.invalid"),
        ("commit.gpgsign", "false"),
    ):
        git(path, "config", key, value)


def make_service_repo(
    root: Path,
    name: str = "svc",
    *,
    variant: str = "ok",
    port: int = 3000,
    delay_s: float = 0.0,
    branch: str = "main",
    build_s: float = 0.0,
) -> ServiceRepo:
    """Create root/name with one commit on main (and on `branch`, checked out, when different)."""
    if not BUSYBOX.is_file():
        skip_or_fail(f"{BUSYBOX} not found: apt-get install busybox-static")
    if shutil.which("git") is None:
        skip_or_fail("git not found: apt-get install git")
    path = root / name
    path.mkdir(parents=True)
    init_repo(path)
    shutil.copy2(BUSYBOX, path / "busybox")
    (path / ".dockerignore").write_text(".git\n")
    repo = ServiceRepo(
        name=name, path=path, port=port, variant=variant, delay_s=delay_s, branch=branch, build_s=build_s
    )
    repo._write_tree()
    repo._commit(f"{name}: initial ({variant})")
    if branch != "main":
        git(path, "checkout", "-q", "-b", branch)
    return repo

"""The shared test infrastructure in tests/support/ does what other tests rely on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from generator.steps.engine.builds import LOST_CACHE
from tests.support.docker import cleanup_project, docker, unique_name
from tests.support.fixture_service import ServiceRepo, git
from tests.support.ports import free_port
from tests.support.sshd import SshServer

ROOT = Path(__file__).resolve().parents[1]


def get(url: str) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), ""
    except OSError:
        return None, ""


def build(docker_host: str, repo: ServiceRepo, image: str) -> subprocess.CompletedProcess[str]:
    """`docker build`, once more when another test's prune removed a cached layer under it, as wfgen does."""
    argv = ["build", "-q", "-t", image, str(repo.path)]
    done = docker(docker_host, *argv, timeout=300)
    if done.returncode != 0 and LOST_CACHE.search(done.stderr):
        done = docker(docker_host, *argv, timeout=300)
    return done


def serve(docker_host: str, image: str, name: str, container_port: int) -> int:
    port = free_port()
    docker(
        docker_host,
        "run",
        "-d",
        "--name",
        name,
        "-p",
        f"127.0.0.1:{port}:{container_port}",
        image,
        check=True,
    )
    return port


def wait_status(url: str, want: int, deadline_s: float = 30) -> tuple[int | None, str]:
    deadline = time.monotonic() + deadline_s
    status, body = get(url)
    while status != want and time.monotonic() < deadline:
        time.sleep(0.1)
        status, body = get(url)
    return status, body


def test_skip_or_fail_fails_under_ci(tmp_path: Path) -> None:
    test = tmp_path / "test_needs_infra.py"
    test.write_text(
        "from tests.support.requires import skip_or_fail\n\n"
        "def test_x():\n    skip_or_fail('no widget: install widget')\n"
    )
    runs = {  # both at once: each is a whole pytest starting up
        ci: subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(test)],
            cwd=tmp_path,
            env={**os.environ, "CI": ci, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for ci in ("true", "")
    }
    outcomes = {}
    for ci, proc in runs.items():
        stdout, _stderr = proc.communicate(timeout=120)
        outcomes[ci] = (proc.returncode, stdout)
    assert outcomes["true"][0] == 1 and "1 failed" in outcomes["true"][1]
    assert "no widget: install widget (CI=true" in outcomes["true"][1]
    assert outcomes[""][0] == 0 and "1 skipped" in outcomes[""][1]


def test_service_repo_is_a_real_git_repo(service_repo: Callable[..., ServiceRepo], tmp_path: Path) -> None:
    repo = service_repo("api", branch="develop")
    first = repo.head
    assert git(repo.path, "rev-parse", "main") == first
    assert git(repo.path, "rev-parse", "--abbrev-ref", "HEAD") == "develop"
    second = repo.write_marker("v2")
    assert second != first and repo.head == second
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "-b", "develop", repo.url, str(clone)], check=True, timeout=60)
    assert (clone / "www" / "version").read_text() == "v2\n"
    assert (clone / "busybox").stat().st_size > 100_000


def test_service_variants_behave(
    service_repo: Callable[..., ServiceRepo], docker_host: str, docker_project: str
) -> None:
    repo = service_repo("web", port=8080)
    assert build(docker_host, repo, f"{docker_project}/web:ok").returncode == 0
    port = serve(docker_host, f"{docker_project}/web:ok", f"{docker_project}-ok", 8080)
    assert wait_status(f"http://127.0.0.1:{port}/health", 200)[0] == 200

    repo.commit_variant("broken_health")
    assert build(docker_host, repo, f"{docker_project}/web:broken").returncode == 0
    port = serve(docker_host, f"{docker_project}/web:broken", f"{docker_project}-broken", 8080)
    assert wait_status(f"http://127.0.0.1:{port}/", 200)[0] == 200
    assert get(f"http://127.0.0.1:{port}/health")[0] == 404

    repo.commit_variant("exits")
    assert build(docker_host, repo, f"{docker_project}/web:exits").returncode == 0
    run = docker(
        docker_host, "run", "--name", f"{docker_project}-exits", f"{docker_project}/web:exits", timeout=60
    )
    assert run.returncode == 1

    repo.commit_variant("bad_dockerfile")
    assert build(docker_host, repo, f"{docker_project}/web:bad").returncode != 0


def test_delayed_start_and_marker(
    service_repo: Callable[..., ServiceRepo], docker_host: str, docker_project: str
) -> None:
    repo = service_repo("slow", delay_s=1.5)
    repo.write_marker("marker-42")
    assert build(docker_host, repo, f"{docker_project}/slow:1").returncode == 0
    started = time.monotonic()
    port = serve(docker_host, f"{docker_project}/slow:1", f"{docker_project}-slow", 3000)
    status, body = wait_status(f"http://127.0.0.1:{port}/version", 200)
    assert (status, body) == (200, "marker-42\n")
    assert time.monotonic() - started >= 1.5


def test_cleanup_project_removes_only_its_own(docker_host: str, docker_project: str) -> None:
    mine, keep = f"{docker_project}-net", f"{unique_name('wfgt')}-keep"
    try:
        docker(docker_host, "network", "create", mine, check=True)
        docker(docker_host, "network", "create", keep, check=True)
        cleanup_project(docker_host, docker_project)
        names = docker(docker_host, "network", "ls", "--format", "{{.Name}}").stdout.split()
        assert mine not in names
        assert keep in names
    finally:
        docker(docker_host, "network", "rm", keep)


def test_registry_accepts_pushes(
    registry: str, service_repo: Callable[..., ServiceRepo], docker_host: str, docker_project: str
) -> None:
    repo = service_repo("pushme")
    image = f"{registry}/{docker_project}/pushme:1"
    assert build(docker_host, repo, image).returncode == 0
    push = docker(docker_host, "push", image, timeout=300)
    assert push.returncode == 0, push.stderr
    with urllib.request.urlopen(
        f"http://{registry}/v2/{docker_project}/pushme/tags/list", timeout=10
    ) as response:
        assert b'"1"' in response.read()


def test_sshd_sessions_reach_the_test_engine(sshd: SshServer, docker_host: str) -> None:
    proc = sshd.run("docker", "info", "--format", "{{.ID}}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == docker(docker_host, "info", "--format", "{{.ID}}").stdout.strip()
    env = sshd.target_env("PROD")
    assert set(env) == {"PROD_HOST", "PROD_USER", "PROD_SSH_KEY", "PROD_KNOWN_HOSTS"}
    assert env["PROD_KNOWN_HOSTS"].startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")

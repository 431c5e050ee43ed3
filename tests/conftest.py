"""Shared fixtures: a real Docker engine, a real sshd, real git repos and a real registry.

Missing infrastructure skips the test locally and fails it under CI=true (tests/support/requires.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.caddy import CURRENT, ensure_caddy_image
from tests.support.deploys import DeployBench
from tests.support.docker import candidate_docker_host, cleanup_project, probe_engine, unique_name
from tests.support.docker import docker_env as _docker_env
from tests.support.fixture_service import ServiceRepo, make_service_repo
from tests.support.github_api import FakeGitHub, fake_github
from tests.support.registry import start_registry
from tests.support.requires import require_executable, skip_or_fail
from tests.support.shared import once_per_run
from tests.support.sshd import SshServer, start_sshd
from tests.support.swarm import Swarm, SwarmUnavailable, missing_infrastructure


@pytest.hookimpl(tryfirst=True)  # before pytest's own tmpdir plugin reads the option
def pytest_configure(config: pytest.Config) -> None:
    """A pytest-xdist worker's temp folder is <run>/gw0, not <run>/popen-gw0: the proxy's admin socket lives
    under tmp_path, and a unix socket path holds at most 107 bytes."""
    worker = getattr(config, "workerinput", None)
    if worker is not None and config.option.basetemp:
        config.option.basetemp = str(Path(config.option.basetemp).parent / worker["workerid"])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the infrastructure they use, so `-m "not docker"` works; then put the long ones first."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if {"docker_host", "docker_env", "docker_project", "registry", "swarm"} & set(names):
            item.add_marker(pytest.mark.docker)
        if "sshd" in names:
            item.add_marker(pytest.mark.sshd)
    items.sort(key=expected_length)


def expected_length(item: pytest.Item) -> int:
    """Longest first: pytest-xdist hands tests out in this order, so a minute-long test taken last by one worker
    would run on while the others stand idle. Tests of one xdist_group keep their order (the group goes to one
    worker as a whole, the biggest groups first); then what runs longest alone, by what the test needs: a
    minute-long wait (slow), a workflow run or a deploy over sshd, a fake GitHub (workflow runs under act),
    an engine, nothing."""
    names = set(getattr(item, "fixturenames", ()))
    ranks = (
        item.get_closest_marker("xdist_group") is not None,
        item.get_closest_marker("slow") is not None,
        "sshd" in names,
        "github" in names,
        item.get_closest_marker("docker") is not None,
    )
    return next((rank for rank, needed in enumerate(ranks) if needed), len(ranks))


@pytest.fixture(scope="session")
def docker_host(tmp_path_factory: pytest.TempPathFactory) -> str:
    """DOCKER_HOST of a live engine: $WFGEN_TEST_DOCKER_HOST, else $DOCKER_HOST, else the default socket."""
    require_executable("docker", "apt-get install docker.io")
    host = candidate_docker_host()
    if probe_engine(host) is None:
        skip_or_fail(f"no Docker engine: 'docker info' failed for DOCKER_HOST={host}")
    # Every test manifest's proxy (tests/support/manifests.py TEST_PROXY); one build per run, not per worker.
    once_per_run(tmp_path_factory, "caddy-image", lambda: ensure_caddy_image(host))
    return host


@pytest.fixture
def docker_env(docker_host: str) -> dict[str, str]:
    """os.environ plus DOCKER_HOST, for subprocesses (step scripts, the runner)."""
    return _docker_env(docker_host)


@pytest.fixture
def docker_project(docker_host: str) -> Iterator[str]:
    """A unique project name; its containers, images, networks and volumes are removed afterwards."""
    project = unique_name("wfgt")
    yield project
    cleanup_project(docker_host, project)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A real sshd on 127.0.0.1; sessions get DOCKER_HOST so remote `docker` reaches the test engine."""
    server = start_sshd(tmp_path_factory.mktemp("sshd"), docker_host=candidate_docker_host())
    yield server
    server.stop()


@pytest.fixture
def service_repo(tmp_path: Path) -> Callable[..., ServiceRepo]:
    """Factory: make(name="svc", *, variant="ok", port=3000, delay_s=0.0, branch="main") -> ServiceRepo."""
    root = tmp_path / "service-repos"

    def make(
        name: str = "svc",
        *,
        variant: str = "ok",
        port: int = 3000,
        delay_s: float = 0.0,
        branch: str = "main",
    ) -> ServiceRepo:
        return make_service_repo(root, name, variant=variant, port=port, delay_s=delay_s, branch=branch)

    return make


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ "127.0.0.1:PORT" of a real docker-registry with filesystem storage in a temp dir."""
    server = start_registry(tmp_path_factory.mktemp("registry"))
    yield server.address
    server.stop()


@pytest.fixture(scope="session")
def caddy_image(docker_host: str) -> str:
    """The tag of a FROM-scratch Caddy image built from Debian's caddy package (tests/support/caddy.py)."""
    return CURRENT


@pytest.fixture
def bench(tmp_path: Path, docker_env: dict[str, str]) -> DeployBench:
    """deploy_service for the one service `web` of a manifest in tmp_path (DeployBench.write)."""
    return DeployBench(workdir=tmp_path, env=docker_env, service="web")


@pytest.fixture
def web(service_repo: Callable[..., ServiceRepo]) -> ServiceRepo:
    """The fixture service `web`, serving "v1" at /version."""
    repo = service_repo("web")
    repo.write_marker("v1")
    return repo


@pytest.fixture(scope="session")
def swarm() -> Iterator[Swarm]:
    """A real 3-node swarm (1 manager, 2 workers), each dockerd in its own network namespace, with a registry
    every node pulls from and the lab's images pushed (tests/support/swarm.py). Formed once per run."""
    reason = missing_infrastructure()
    if reason:
        skip_or_fail(reason)
    lab = Swarm(node_count=3)
    try:
        lab.start()
    except SwarmUnavailable as exc:
        skip_or_fail(f"the swarm lab could not start: {exc}")
    yield lab
    lab.close()


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """GitHub's deployments API on 127.0.0.1 for a test's simulated runs, whose legs send the run's own token."""
    with fake_github() as server:
        server.token = None
        yield server

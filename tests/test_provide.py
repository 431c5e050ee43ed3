"""generator/steps/engine/provide.py through deploy_service.py: images built here, pushed, pulled on the target."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from tests.support.deploys import DeployBench
from tests.support.docker import docker
from tests.support.fixture_service import ServiceRepo
from tests.support.ports import free_port

SERVICE = "web"
FAST_HEALTH = {"interval_s": 0.2, "timeout_s": 2.0, "deadline_s": 6.0}


def test_registry_login_leaves_no_credentials_behind(
    tmp_path: Path,
    docker_env: dict[str, str],
    docker_host: str,
    docker_project: str,
    registry: str,
    service_repo: Callable[..., ServiceRepo],
) -> None:
    """`docker login` goes to a throwaway DOCKER_CONFIG on both sides, not to ~/.docker/config.json."""
    web = service_repo(SERVICE)
    web.write_marker("v1")
    home, scratch = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    scratch.mkdir()
    password = f"pw-{os.urandom(8).hex()}"
    env = {**docker_env, "HOME": str(home), "TMPDIR": str(scratch), "T_REG_USER": "ci", "T_REG_PW": password}
    bench = DeployBench(workdir=tmp_path, env=env, service=SERVICE)
    prefix = f"{registry}/wfgen-tests"
    table = {"repository": web.url, "port": free_port(), "container_port": 3000, "health": FAST_HEALTH}
    build = {"where": "runner", "registry": prefix, "registry_user_env": "T_REG_USER"}
    bench.write(
        {SERVICE: table},
        project={"name": docker_project},
        build={**build, "registry_password_env": "T_REG_PW"},
    )
    run = bench.deploy()
    image = f"{prefix}/{docker_project}/{SERVICE}:{web.head[:12]}"
    try:
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.status["image"] == image
    finally:
        docker(docker_host, "rmi", image)
    config = home / ".docker" / "config.json"
    auths = json.loads(config.read_text()).get("auths", {}) if config.exists() else {}
    assert registry not in auths
    assert list(scratch.iterdir()) == [], "the runner's temporary docker config was not removed"
    assert list((bench.state_dir / "docker-config").iterdir()) == []
    assert password not in run.stdout + run.stderr

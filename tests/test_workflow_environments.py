"""The rendered workflow of a manifest with `[environments]`, run by the Actions simulator: the branch picks the
environment (its manifest, its GitHub environment, its concurrency group), and staging and production of the
same services deploy side by side over a real sshd to one real Docker engine; rollback.yml rolls one back."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.render.files import ROLLBACK_WORKFLOW
from tests.support.actions_sim import Run
from tests.support.deploys import fetch
from tests.support.fixture_service import git
from tests.support.github_api import FakeGitHub, runner_env
from tests.support.manifests import toml_table
from tests.support.monorepo import Monorepo, make_monorepo
from tests.support.ports import free_offset
from tests.support.sshd import SshServer
from tests.support.workflow_runs import (
    assert_no_secret_leaked,
    deploy_exits,
    job_results,
    leg_errors,
    simulator,
)

HEALTH = {"interval_s": 0.25, "timeout_s": 2.0, "deadline_s": 8.0}


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """The target's state folder: the proxy's admin socket lives in it, and a socket path holds 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="wfgs-"))
    yield path / "s"  # in a folder of its own (0700): a state folder directly in /tmp is refused
    shutil.rmtree(path, ignore_errors=True)


def with_environments(repo: Monorepo, offset: int) -> None:
    text = repo.manifest.read_text(encoding="utf-8").replace('branches = ["main", "develop"]\n', "")
    tables = [toml_table("environments.production", {"branches": ["main"]}),
              toml_table("environments.staging", {"branches": ["develop"], "port_offset": offset})]  # fmt: skip
    repo.commit(
        {"services.toml": text + "\n" + "\n\n".join("\n".join(t) for t in tables) + "\n"}, "environments"
    )
    repo.commit_rendered()
    git(repo.root, "branch", "develop")


def environments_of(run: Run) -> dict[str, set[str | None]]:
    return {job: {leg.environment for leg in legs} for job, legs in run.jobs.items()}


def test_the_branch_picks_the_environment_and_both_deploy_side_by_side(
    tmp_path: Path,
    docker_host: str,
    docker_project: str,
    sshd: SshServer,
    short_dir: Path,
    github: FakeGitHub,
) -> None:
    target = sshd.target_config(insecure_ignore_host_key=False, state_dir=str(short_dir))
    two: dict[str, dict[str, str]] = {"api": {}, "web": {}}
    repo = make_monorepo(tmp_path / "mono", docker_project, docker_host, two, target=target, health=HEALTH,
                         project_settings={"deploy_on_push": True})  # fmt: skip
    offset = free_offset(list(repo.ports.values()))
    with_environments(repo, offset)
    assert sorted(p.name for p in (repo.root / ".github" / "wfgen" / "environments").iterdir()) == [
        "production.json", "staging.json"]  # fmt: skip
    runner = {"DOCKER_HOST": docker_host, **runner_env(github)}
    sim = simulator(tmp_path, repo.root, sshd.target_env(), runner)

    staging = sim.dispatch({"services": "all", "branch": "develop"})
    assert staging.name == "Deploy all from develop to staging"
    assert staging.concurrency == f"wfgen-deploy-{docker_project}-staging"
    assert environments_of(staging) == {"prepare": {None}, "check-infrastructure": {"staging"},
                                        "deploy-service": {"staging"}, "deployment-summary": {None}}, job_results(staging)  # fmt: skip
    assert deploy_exits(staging) == {"api": 0, "web": 0}, leg_errors(staging)
    for name, port in repo.ports.items():
        assert fetch(f"http://127.0.0.1:{port + offset}/health")[0] == 200, name
        assert fetch(f"http://127.0.0.1:{port}/health")[0] is None, "production is not deployed yet"
    assert staging.conclusion == "success"

    production = sim.dispatch({"services": "all", "branch": "main"})
    assert (production.name, production.concurrency) == (
        "Deploy all from main to production",
        f"wfgen-deploy-{docker_project}-production",
    )
    assert environments_of(production)["deploy-service"] == {"production"}, job_results(production)
    assert deploy_exits(production) == {"api": 0, "web": 0}, leg_errors(production)
    for name, port in repo.ports.items():
        assert fetch(f"http://127.0.0.1:{port}/health")[0] == 200, name
    assert production.conclusion == "success"
    assert_no_secret_leaked(production, {**sshd.target_env(), "github.token": sim.token})

    # A push to develop redeploys what differs in staging; production, on the same engine, is not staging's.
    git(repo.root, "checkout", "-q", "develop")
    before = repo.head
    repo.touch("api", "staging v2")
    pushed = sim.push("develop", repo.changed_since(before))
    assert pushed is not None and pushed.name == "Deploy what changed on develop to staging"
    assert [leg.matrix for leg in pushed.jobs["deploy-service"]] == [{"service": "api"}]
    assert deploy_exits(pushed) == {"api": 0}, leg_errors(pushed)
    assert fetch(f"http://127.0.0.1:{repo.ports['api'] + offset}/version") == (200, "staging v2\n")
    assert fetch(f"http://127.0.0.1:{repo.ports['api']}/version")[0] == 404

    # rollback.yml in staging: back to the version deployed before the running one; production untouched.
    rollback = simulator(tmp_path / "rollback", repo.root, sshd.target_env(), runner,
                         workflow=ROLLBACK_WORKFLOW)  # fmt: skip
    back = rollback.dispatch({"environment": "staging", "service": "api"})
    assert back.name == "Roll back api in staging"
    assert back.concurrency == f"wfgen-rollback-{docker_project}-staging"
    [leg] = back.jobs["rollback"]
    assert (leg.result, leg.environment) == ("success", "staging"), leg.step("Roll back").stderr
    assert (
        fetch(f"http://127.0.0.1:{repo.ports['api'] + offset}/version")[0] == 404
    )  # the first version again
    assert fetch(f"http://127.0.0.1:{repo.ports['api']}/version")[0] == 404
    pruned = rollback.dispatch({"environment": "staging", "service": "api", "commit": "0000000"})
    [leg] = pruned.jobs["rollback"]
    assert leg.result == "failure" and leg.step("Roll back").returncode == 2
    assert fetch(f"http://127.0.0.1:{repo.ports['api'] + offset}/health")[0] == 200

    # Each service's GitHub deployments, per environment: a success retires only its own in that environment.
    assert github.problems == []
    history: dict[tuple[str, str], list[list[str]]] = {}
    for deployment in github.deployments:
        key = (deployment["payload"]["service"], deployment["environment"])
        history.setdefault(key, []).append(github.states(deployment["id"]))
    done, retired = ["in_progress", "success"], ["in_progress", "success", "inactive"]
    assert history == {
        ("api", "staging"): [retired, retired, done],  # v1, the push's v2, the rollback (nothing for 0000000)
        ("web", "staging"): [done],
        ("api", "production"): [done],
        ("web", "production"): [done],
    }
    assert github.deployments[-1]["description"].endswith("(rollback)")

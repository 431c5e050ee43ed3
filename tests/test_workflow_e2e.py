"""The rendered deploy workflow on its first dispatch, run by a small Actions simulator (tests/support/actions_sim.py).

Real parts only: the rendered YAML drives everything, jobs clone a real git repo, deploy over a real sshd to the
real Docker engine, and the services answer on their ports.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from generator.manifest.validate import load_manifest
from generator.render.files import render
from generator.render.output import write_files
from generator.steps.core import handoff
from tests.support.deploys import fetch
from tests.support.docker import docker
from tests.support.fixture_service import ServiceRepo, git, init_repo
from tests.support.fleet import max_overlap
from tests.support.github_api import FakeGitHub, runner_env
from tests.support.manifests import TEST_PROXY, toml_table
from tests.support.ports import free_port
from tests.support.sshd import SshServer
from tests.support.workflow_runs import (
    assert_no_secret_leaked,
    deploy_exits,
    leg_errors,
    leg_statuses,
    results,
    simulator,
    summary_rows,
)

CONTAINER_PORT = 3000
HEALTH = {"interval_s": 0.25, "timeout_s": 2.0, "deadline_s": 8.0}
SECRET_ENV = {"api": "API_TOKEN", "notes": "NOTES_TOKEN", "site": "SITE_TOKEN"}
SITE_PATH = "services/site"


def build_repo(
    root: Path, project: str, ssh_port: int, service_repo: Callable[..., ServiceRepo]
) -> tuple[Path, dict[str, int], dict[str, ServiceRepo]]:
    """A repo on `main` holding services.toml, the rendered files and the `site` folder service."""
    repo = root / "deploy-repo"
    repos = {name: service_repo(name, port=CONTAINER_PORT) for name in ("api", "notes", "site-src")}
    shutil.copytree(repos.pop("site-src").path, repo / SITE_PATH, ignore=shutil.ignore_patterns(".git"))
    ports = {name: free_port() for name in SECRET_ENV}
    network = f"{project}-network"
    sections = [
        toml_table("project", {"name": project, "branches": ["main", "develop"], "max_parallel": 3,
                               "lock_wait_s": 30, "deploy_timeout_minutes": 10}),
        toml_table("target", {"kind": "ssh", "port": ssh_port, "insecure_ignore_host_key": False,
                              "network": network, "state_dir": str(root / "target-state"),
                              "connect_timeout_s": 5}),
        toml_table("infrastructure", {"networks": [network], "secrets": ["API_TOKEN", "GITHUB_TOKEN"]}),
        toml_table("proxy", TEST_PROXY),
    ]  # fmt: skip
    for name, env in SECRET_ENV.items():
        source = {"path": SITE_PATH} if name == "site" else {"repository": repos[name].url}
        table = {
            **source,
            "port": ports[name],
            "container_port": CONTAINER_PORT,
            "env": [env, "GITHUB_TOKEN"] if name == "api" else [env],  # the job token for api's leg only
            "health": HEALTH,
        }
        sections.append(toml_table(f"services.{name}", table))
    (repo / "services.toml").write_text("\n\n".join("\n".join(s) for s in sections) + "\n", encoding="utf-8")
    write_files(repo, render(load_manifest(repo / "services.toml"), source="services.toml"))
    init_repo(repo, author="wfgen e2e")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "wfgen render")
    return repo, ports, repos


def test_first_dispatch_deploys_all_then_a_broken_leg_fails_alone(
    tmp_path: Path,
    service_repo: Callable[..., ServiceRepo],
    docker_project: str,
    docker_host: str,
    docker_env: dict[str, str],
    sshd: SshServer,
    github: FakeGitHub,
) -> None:
    repo, ports, repos = build_repo(tmp_path, docker_project, sshd.port, service_repo)
    docker(docker_host, "network", "create", f"{docker_project}-network", timeout=60, check=True)
    secrets_ = {**sshd.target_env(), **{env: secrets.token_hex(16) for env in SECRET_ENV.values()}}
    sim = simulator(
        tmp_path, repo, secrets_, {"DOCKER_HOST": docker_env["DOCKER_HOST"], **runner_env(github)}
    )

    first = sim.dispatch({"services": "all", "branch": "main", "force_rebuild": False})
    prepare = first.jobs["prepare"][0]
    assert prepare.outputs == {"services": '["api","notes","site"]', "count": "3", "branch": "main",
                               "force_rebuild": "false", "path_services": '["site"]'}, (
        prepare.step("Validate").stderr)  # fmt: skip
    check = first.jobs["check-infrastructure"][0]
    assert check.result == "success", (
        check.step("Check the target").stdout + check.step("Check the target").stderr
    )
    assert first.name == "Deploy all from main"
    plan = handoff.decode(check.outputs["plan"])  # hex: the ssh user "root" must not make GitHub drop it
    assert plan["legs"] == list(SECRET_ENV) and plan["id"] == check.outputs["plan-id"]
    verdicts = {line.split()[0]: line.split()[1] for line in check.step("Plan").stdout.splitlines()[1:4]}
    assert verdicts == dict.fromkeys(SECRET_ENV, "new")
    assert (check.outputs["count"], check.outputs["wave-1"]) == ("3", '["api","notes","site"]')
    check_env = check.step("Check the target").env  # whether the secrets it checks are set, not their values
    assert "API_TOKEN" not in check_env and "GITHUB_TOKEN" not in check_env
    assert check_env["WFGEN_SECRET_SET_API_TOKEN"] == check_env["WFGEN_SECRET_SET_GITHUB_TOKEN"] == "true"
    assert deploy_exits(first) == {"api": 0, "notes": 0, "site": 0}, leg_errors(first)
    for leg in first.jobs["deploy-service"]:  # each leg receives its own service's secret and no other
        own = SECRET_ENV[leg.matrix["service"]]
        given = {
            name: value for name, value in leg.step("Deploy ").env.items() if name in SECRET_ENV.values()
        }
        assert given == {**dict.fromkeys(SECRET_ENV.values(), ""), own: secrets_[own]}
        token = leg.step("Deploy ").env["GITHUB_TOKEN"]
        assert token == (sim.token if leg.matrix["service"] == "api" else "")
    images = {status["service"]: status["image"] for status in leg_statuses(first)}
    for name, port in ports.items():
        assert fetch(f"http://127.0.0.1:{port}/health")[0] == 200, name
    assert max_overlap(leg_statuses(first)) == 3  # the legs really ran side by side
    summary = first.jobs["deployment-summary"][0]
    assert summary.step("Summarize").returncode == 0, summary.step("Summarize").stderr
    assert summary.result == "success"
    assert summary_rows(summary) == {"api": "✅ deployed", "notes": "✅ deployed", "site": "✅ deployed"}
    assert "```mermaid\ngantt\n" in summary.summary
    assert_no_secret_leaked(first, {**secrets_, "github.token": sim.token})

    repos["notes"].commit_variant("broken_health")
    second = sim.dispatch({"services": "all", "branch": "main", "force_rebuild": False})
    assert deploy_exits(second) == {"api": 0, "notes": 1, "site": 0}, leg_errors(second)
    assert second.result("deploy-service") == "failure"
    assert results(second) == {"api": "unchanged", "notes": "failed", "site": "unchanged"}
    assert fetch(f"http://127.0.0.1:{ports['notes']}/health")[0] == 200  # the broken version has no /health
    running = docker(docker_host, "inspect", "--format", "{{.Config.Image}}", f"{docker_project}-notes")
    assert running.stdout.strip() == images["notes"]
    summary = second.jobs["deployment-summary"][0]
    assert summary_rows(summary) == {"api": "♻️ unchanged", "notes": "❌ failed", "site": "♻️ unchanged"}
    assert summary.step("Summarize").returncode == 1
    assert second.result("deployment-summary") == "failure"
    assert_no_secret_leaked(second, {**secrets_, "github.token": sim.token})

    # A branch only the service's own repository has: no job may check out this repository at it.
    git(repos["api"].path, "branch", "develop")
    third = sim.dispatch({"services": "api", "branch": "develop", "force_rebuild": False})
    assert deploy_exits(third) == {"api": 0}, leg_errors(third)
    assert third.jobs["check-infrastructure"][0].step("Check out the services'").outcome == "skipped"
    assert results(third) == {"api": "unchanged"}
    # One GitHub deployment per leg, in the order the legs ran: each service's own history.
    assert github.problems == []
    history: dict[str, list[list[str]]] = {}
    for deployment in github.deployments:
        history.setdefault(deployment["payload"]["service"], []).append(github.states(deployment["id"]))
    assert history == {
        "api": [["in_progress", "success"], ["in_progress", "inactive"], ["in_progress", "inactive"]],
        "notes": [["in_progress", "success"], ["in_progress", "failure"]],  # the first one still runs
        "site": [["in_progress", "success"], ["in_progress", "inactive"]],
    }


def test_unknown_service_stops_in_prepare(tmp_path: Path, service_repo: Callable[..., ServiceRepo]) -> None:
    """No target is needed: nothing after prepare may run."""
    repo, _, _ = build_repo(tmp_path, "wfgt-unused", 22, service_repo)
    sim = simulator(tmp_path, repo, {}, {})
    run = sim.dispatch({"services": "nope", "branch": "main"})
    prepare = run.jobs["prepare"][0].step("Validate")
    assert prepare.returncode == 2
    assert prepare.stderr.splitlines() == [
        "prepare: unknown service 'nope' (did you mean 'notes'?); valid: api, notes, site"
    ]
    assert {job: run.result(job) for job in run.jobs} == {
        "prepare": "failure",
        "check-infrastructure": "skipped",
        "deploy-service": "skipped",
        "deployment-summary": "skipped",
    }

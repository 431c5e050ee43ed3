"""The rendered workflow of a monorepo, run by the Actions simulator (tests/support/actions_sim.py): a push
deploys only what differs from what runs, and `depends_on` deploys in waves where a failed dependency skips
its dependents.

Real parts only, as in tests/test_workflow_e2e.py: the committed YAML drives every run, jobs clone the real
repository, deploy over a real sshd to the real Docker engine, and the services answer on their ports.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from generator.steps.core.steplib import parse_iso
from tests.support.actions_sim import Simulator
from tests.support.deploys import fetch
from tests.support.fixture_service import git
from tests.support.github_api import FakeGitHub, runner_env
from tests.support.monorepo import Monorepo, make_monorepo
from tests.support.reports import github_cells
from tests.support.sshd import SshServer
from tests.support.workflow_runs import (
    assert_no_secret_leaked,
    deploy_exits,
    deploy_legs,
    leg_errors,
    leg_statuses,
    results,
    simulator,
    summary_rows,
)

HEALTH = {"interval_s": 0.25, "timeout_s": 2.0, "deadline_s": 8.0}
CHAIN = {"a": {}, "b": {"depends_on": ["a"]}, "c": {"depends_on": ["b"]}, "d": {}}


def workflow_monorepo(
    tmp_path: Path,
    project: str,
    docker_host: str,
    sshd: SshServer,
    services: Mapping[str, Any],
    github: FakeGitHub | None = None,
    **settings: Any,
) -> tuple[Monorepo, Simulator]:
    """Folder services deployed over ssh, the rendered files committed, and a simulator for the workflow
    (recording its GitHub deployments on `github` when given)."""
    target = sshd.target_config(insecure_ignore_host_key=False)
    repo = make_monorepo(tmp_path / "mono", project, docker_host, services, project_settings=settings,
                         target=target, health=HEALTH)  # fmt: skip
    repo.commit_rendered()
    runner = {"DOCKER_HOST": docker_host, **(runner_env(github) if github else {})}
    return repo, simulator(tmp_path, repo.root, sshd.target_env(), runner)


def test_a_push_deploys_only_what_differs_from_what_runs(
    tmp_path: Path, docker_host: str, docker_project: str, sshd: SshServer
) -> None:
    three: dict[str, dict[str, Any]] = {name: {} for name in ("api", "web", "worker")}
    repo, sim = workflow_monorepo(tmp_path, docker_project, docker_host, sshd, three, deploy_on_push=True)
    first = sim.dispatch({"services": "all", "branch": "main"})
    assert first.name == "Deploy all from main"
    assert deploy_exits(first) == {"api": 0, "web": 0, "worker": 0}, leg_errors(first)
    assert [repo.health(name) for name in three] == [200, 200, 200]

    before = repo.head
    repo.touch("worker", "v2")
    pushed = sim.push("main", repo.changed_since(before))
    assert pushed is not None, "a change in a service's folder passes the paths filter"
    assert (pushed.event, pushed.name) == ("push", "Deploy what changed on main")
    check = pushed.jobs["check-infrastructure"][0]
    assert (check.outputs["count"], check.outputs["wave-1"]) == ("1", '["worker"]'), check.step("Plan").stderr
    assert [leg.matrix for leg in pushed.jobs["deploy-service"]] == [{"service": "worker"}]
    assert deploy_exits(pushed) == {"worker": 0}, leg_errors(pushed)
    assert results(pushed) == {"worker": "deployed"}  # no leg, no report: api and web were not touched
    assert fetch(f"http://127.0.0.1:{repo.ports['worker']}/version") == (200, "v2\n")
    summary = pushed.jobs["deployment-summary"][0]
    assert summary_rows(summary) == {"api": "♻️ unchanged", "web": "♻️ unchanged", "worker": "✅ deployed"}
    assert summary.summary.count("runs already; no deploy job") == 2
    assert pushed.conclusion == "success"
    assert_no_secret_leaked(pushed, {**sshd.target_env(), "github.token": sim.token})

    before = repo.head
    repo.commit({"README.md": "# mono\n"}, "docs")  # nothing any service builds from
    assert sim.push("main", repo.changed_since(before)) is None
    git(repo.root, "branch", "feature")
    assert sim.push("feature", ["services/api/www/version"]) is None  # not a branch of the project

    before = repo.head
    settings = repo.manifest.read_text(encoding="utf-8").replace("lock_wait_s = 30", "lock_wait_s = 45")
    repo.commit({"services.toml": settings}, "wait longer for the lock")
    repo.commit_rendered()
    assert repo.changed_since(before) == [".github/wfgen/manifest.json", "services.toml"]
    quiet = sim.push("main", repo.changed_since(before))
    assert quiet is not None, "the manifest passes the paths filter"
    plan = quiet.jobs["check-infrastructure"][0]
    assert plan.outputs["count"] == "0" and "nothing to deploy" in plan.step("Plan").stdout
    assert {job: quiet.result(job) for job in quiet.jobs} == {
        "prepare": "success",
        "check-infrastructure": "success",
        "deploy-service": "skipped",
        "deployment-summary": "skipped",
    }
    assert quiet.conclusion == "success"


def test_depends_on_deploys_in_waves_and_a_failed_dependency_skips_its_dependents(
    tmp_path: Path, docker_host: str, docker_project: str, sshd: SshServer, github: FakeGitHub
) -> None:
    repo, sim = workflow_monorepo(tmp_path, docker_project, docker_host, sshd, CHAIN, github)
    first = sim.dispatch({"services": "all", "branch": "main"})
    assert first.name == "Deploy all from main"
    waves = [[leg.matrix["service"] for leg in first.jobs[f"deploy-wave-{n}"]] for n in (1, 2, 3)]
    assert waves == [["a", "d"], ["b"], ["c"]]
    assert deploy_exits(first) == {"a": 0, "d": 0, "b": 0, "c": 0}, leg_errors(first)
    spans = {
        s["service"]: (parse_iso(s["started_at"]), parse_iso(s["finished_at"])) for s in leg_statuses(first)
    }
    assert max(spans["a"][1], spans["d"][1]) <= spans["b"][0], spans  # wave 2 starts when wave 1 is done
    assert spans["b"][1] <= spans["c"][0], spans
    assert [repo.health(name) for name in CHAIN] == [200] * 4

    repo.break_health("b")
    repo.touch("d", "v2")
    calls = len(github.calls)
    second = sim.dispatch({"services": "all", "branch": "main"})
    assert results(second) == {"a": "unchanged", "b": "failed", "c": "skipped", "d": "deployed"}
    assert deploy_exits(second) == {"a": 0, "d": 0, "b": 1, "c": 1}
    deploy_c = second.jobs["deploy-wave-3"][0].step("Deploy ")
    assert deploy_c.stderr.splitlines() == ["c: skipped: dependency b failed"]
    assert {s["service"]: s["message"] for s in leg_statuses(second)}["c"] == "dependency b failed"
    assert [repo.health(name) for name in CHAIN] == [200] * 4  # b's healthy version still serves
    summary = second.jobs["deployment-summary"][0]
    assert summary_rows(summary) == {
        "a": "♻️ unchanged",
        "b": "❌ failed",
        "c": "⏭️ skipped",
        "d": "✅ deployed",
    }
    assert "## ❌ 1 of 4 services failed, 1 skipped" in summary.summary
    assert summary.step("Summarize").returncode == 1
    assert second.conclusion == "failure"

    # What GitHub shows for that run: each service's calls, as README's "What GitHub shows" says them.
    assert_no_secret_leaked(second, {**sshd.target_env(), "github.token": sim.token})
    assert github.problems == []
    commits = {s["service"]: s["commit"][:7] for s in leg_statuses(second) if s["commit"]}
    sequence = "\n".join(f"{service}: {line}" for service, line in github.labelled(calls))
    print(f"GitHub API calls of one run of four services, in order:\n{sequence}")  # shown by pytest -rP
    assert github.sequences(calls) == expected_calls(commits), sequence
    jobs = f"https://github.example/acme/fleet/actions/runs/{sim.env['GITHUB_RUN_ID']}/job/"
    for leg in deploy_legs(second):
        service = leg.matrix["service"]
        mine = [item for item in github.deployments if item["payload"]["service"] == service][1:]
        for status in (status for item in mine for status in item["statuses"]):
            assert status["log_url"] == jobs + leg.step("Deploy ").env["WFGEN_JOB_CHECK_RUN_ID"], service
            assert "environment_url" not in status  # no domain: no URL, never the target's host
    page = "https://github.example/acme/fleet/deployments/production"
    assert github_cells(summary.summary) == {
        f"[a]({page})": "⚪ inactive", f"[b]({page})": "🔴 failure", "c": "—", f"[d]({page})": "🟢 active",
    }  # fmt: skip


def expected_calls(commits: Mapping[str, str]) -> dict[str, list[str]]:
    """A second run after each service's first deployment: a unchanged (its first deployment keeps saying
    since when), b failed (its first still serves), c skipped (never started: nothing), d deployed."""
    listed = "GET /deployments?environment=production&task=deploy%3A{}&per_page=30"
    return {
        service: [
            f"POST /deployments {service} {commits[service]}",
            f"POST /deployments/{service}#2/statuses in_progress",
            listed.format(service),
            f"GET /deployments/{service}#1/statuses?per_page=1",
            *ends,
        ]
        for service, ends in (
            ("a", ["POST /deployments/a#2/statuses inactive"]),
            ("b", ["POST /deployments/b#2/statuses failure"]),
            ("d", ["POST /deployments/d#2/statuses success", "POST /deployments/d#1/statuses inactive"]),
        )
    }

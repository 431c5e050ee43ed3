"""The plan of the deploy workflow under act (tests/support/act.py): a push deploys what changed, and the
waves of `depends_on` run in order, a dependent leg skipped when its dependency failed.

Folder services of one repository, the rendered workflow committed into it as a user would. act ignores the
`on.push` branch and path filters (the simulator covers them): each push here is one the filters let through.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from generator.render.files import DEPLOY_WORKFLOW, ROLLBACK_WORKFLOW
from tests.support.act import Act, ActRun
from tests.support.deploys import fetch
from tests.support.docker import docker
from tests.support.github_api import FakeGitHub
from tests.support.monorepo import Monorepo, make_monorepo
from tests.support.reports import github_cells, plan_rows, status_reports, summary_rows

DISPATCH = {"services": "all", "branch": "main", "force_rebuild": False}
ACT_TIMEOUT_S = 240
HEALTH = {"interval_s": 0.25, "timeout_s": 2.0, "deadline_s": 8.0}
THREE: dict[str, dict[str, Any]] = {"api": {}, "web": {}, "worker": {}}
# a -> b -> c in three waves, d beside a; b exits on start, so its deploy fails at once.
CHAIN: dict[str, dict[str, Any]] = {
    "a": {},
    "b": {"depends_on": ["a"], "variant": "exits"},
    "c": {"depends_on": ["b"]},
    "d": {},
}


def monorepo(
    factory: pytest.TempPathFactory, project: str, docker_host: str, services: dict[str, dict[str, Any]]
) -> Monorepo:
    """In a short folder: the proxy's admin socket lives under state_dir, and a unix socket path has at most
    107 bytes (tmp_path holds the test's name)."""
    root = factory.mktemp("act") / "repo"
    settings = {"deploy_on_push": True}
    mono = make_monorepo(root, project, docker_host, services, project_settings=settings, health=HEALTH)
    mono.commit_rendered()
    return mono


def statuses(run: ActRun) -> dict[str, dict[str, Any]]:
    """service -> the status JSON its leg uploaded."""
    return {status["service"]: status for status in status_reports(run.artifacts)}


def plan_summary(run: ActRun) -> str:
    """The plan's table and footer, which open check-infrastructure's summary (the target checks follow)."""
    return run.leg("check-infrastructure").summary.partition("### Infrastructure checks")[0]


def version(mono: Monorepo, service: str) -> str:
    status, body = fetch(f"http://127.0.0.1:{mono.ports[service]}/version")
    return body.strip() if status == 200 else f"HTTP {status}"


def image(mono: Monorepo, service: str) -> str:
    found = docker(mono.docker_host, "inspect", "--format", "{{.Config.Image}}", f"{mono.project}-{service}")
    return found.stdout.strip()


def at(status: dict[str, Any], key: str) -> dt.datetime:
    return dt.datetime.fromisoformat(status[key].replace("Z", "+00:00"))


def test_a_push_deploys_only_the_changed_service(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, docker_project: str, docker_host: str
) -> None:
    mono = monorepo(tmp_path_factory, docker_project, docker_host, THREE)
    act = Act(mono.root, tmp_path / "act", env={"DOCKER_HOST": docker_host}, timeout=ACT_TIMEOUT_S)
    first = act.dispatch(mono.root / DEPLOY_WORKFLOW, DISPATCH)
    assert first.returncode == 0, first.report()
    assert {name: s["result"] for name, s in statuses(first).items()} == dict.fromkeys(THREE, "deployed")
    images = {name: image(mono, name) for name in THREE}

    before = mono.head
    after = mono.touch("worker", "v2")
    run = act.push(mono.root / DEPLOY_WORKFLOW, before, after)

    assert run.returncode == 0, run.report()
    assert run.results() == {
        "prepare": "success",
        "check-infrastructure": "success",
        "deploy-service": "success",
        "deployment-summary": "success",
    }, run.report()
    assert [leg.matrix for leg in run.legs("deploy-service")] == [{"service": "worker"}]
    status = statuses(run)
    assert list(status) == ["worker"]  # the only leg, the only report
    assert (status["worker"]["result"], status["worker"]["commit"]) == ("deployed", after)
    assert version(mono, "worker") == "v2"
    assert all(image(mono, name) == images[name] for name in ("api", "web"))
    assert image(mono, "worker") == status["worker"]["image"] != images["worker"]
    plan = plan_summary(run)
    assert plan.startswith("### Deployment plan")
    assert plan_rows(plan) == {"api": "💤 unchanged", "web": "💤 unchanged", "worker": "🚀 deploy"}
    assert "1 deploy, 2 unchanged; 1 deploy leg(s); branch main" in plan
    summary = run.leg("deployment-summary").summary
    assert summary_rows(summary) == {"api": "♻️ unchanged", "web": "♻️ unchanged", "worker": "✅ deployed"}
    assert "✅ 3/3 services deployed (2 unchanged)" in summary


def test_a_push_with_nothing_to_deploy_skips_the_deploy_and_the_summary(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, docker_project: str, docker_host: str
) -> None:
    """A commit the push filter lets through (the manifest) that changes no service: the run stays green."""
    mono = monorepo(tmp_path_factory, docker_project, docker_host, THREE)
    act = Act(mono.root, tmp_path / "act", env={"DOCKER_HOST": docker_host}, timeout=ACT_TIMEOUT_S)
    first = act.dispatch(mono.root / DEPLOY_WORKFLOW, DISPATCH)
    assert first.returncode == 0, first.report()

    before = mono.head
    note = mono.manifest.read_text(encoding="utf-8") + "# who to ask: the platform team\n"
    after = mono.commit({mono.manifest.name: note}, "manifest: a note")
    run = act.push(mono.root / DEPLOY_WORKFLOW, before, after)

    assert run.returncode == 0, run.report()
    assert run.results() == {
        "prepare": "success",
        "check-infrastructure": "success",
        "deploy-service": "skipped",
        "deployment-summary": "skipped",
    }, run.report()
    assert statuses(run) == {}
    plan = plan_summary(run)
    assert plan_rows(plan) == dict.fromkeys(THREE, "💤 unchanged")
    assert "3 unchanged: nothing to deploy" in plan
    assert all(version(mono, name) == "HTTP 404" for name in THREE)  # still the first deploy: no /version


def test_a_failed_dependency_skips_its_dependents_in_later_waves(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    docker_project: str,
    docker_host: str,
    github: FakeGitHub,
) -> None:
    """One run with each result a leg can have: a already runs (deployed from a terminal, which records no
    GitHub deployment), d has changed, b fails, and c, which needs b, is skipped. Then rollback.yml takes d
    back to the version the terminal deployed."""
    mono = monorepo(tmp_path_factory, docker_project, docker_host, CHAIN)
    earlier = mono.wfgen("deploy", "a,d", "main")
    assert earlier.returncode == 0, earlier.stdout + earlier.stderr
    first_d = mono.last_run()["services"]["d"]["commit"]
    mono.touch("d", "v2")
    env = {"DOCKER_HOST": docker_host, "GITHUB_API_URL": github.url}
    act = Act(mono.root, tmp_path / "act", env=env, timeout=ACT_TIMEOUT_S)

    run = act.dispatch(mono.root / DEPLOY_WORKFLOW, DISPATCH)

    assert run.returncode != 0, run.report()
    assert run.results() == {
        "prepare": "success",
        "check-infrastructure": "success",
        "deploy-wave-1": "success",
        "deploy-wave-2": "failure",
        "deploy-wave-3": "failure",  # it ran: its leg found b failed
        "deployment-summary": "failure",
    }, run.report()
    waves = [{leg.matrix["service"]: leg.result for leg in run.legs(f"deploy-wave-{n}")} for n in (1, 2, 3)]
    assert waves == [{"a": "success", "d": "success"}, {"b": "failure"}, {"c": "failure"}], run.report()
    assert "3 waves (1: a, d · 2: b · 3: c)" in plan_summary(run)
    status = statuses(run)
    assert {name: s["result"] for name, s in status.items()} == {
        "a": "unchanged", "b": "failed", "c": "skipped", "d": "deployed",
    }  # fmt: skip
    assert status["b"]["message"].startswith("candidate never became healthy: container exited with code")
    assert status["c"]["message"] == "dependency b failed"
    leg = run.leg("deploy-wave-3", service="c")
    assert leg.steps["Deploy c"] == "failure", run.report()
    assert "c: skipped: dependency b failed" in leg.log and "exit status 1" in leg.log  # as act says it
    for earlier_wave, later in ((["a", "d"], ["b"]), (["b"], ["c"])):
        last_end = max(at(status[name], "finished_at") for name in earlier_wave)
        assert all(at(status[name], "started_at") > last_end for name in later), (earlier_wave, later)
    assert mono.health("a") == mono.health("d") == 200
    assert version(mono, "d") == "v2"
    assert mono.health("b") != 200 and mono.health("c") != 200  # neither went live

    summary = run.leg("deployment-summary")
    assert summary.steps["Summarize the deployment"] == "failure"
    assert summary_rows(summary.summary) == {"a": "♻️ unchanged", "b": "❌ failed", "c": "⏭️ skipped",
                                             "d": "✅ deployed"}  # fmt: skip

    # What GitHub shows: a deployment per leg that started, c none; a's unchanged commit had none yet.
    assert github.problems == []
    assert github.sequences() == {
        service: [
            f"POST /deployments {service} {status[service]['commit'][:7]}",
            f"POST /deployments/{service}#1/statuses in_progress",
            f"GET /deployments?environment=production&task=deploy%3A{service}&per_page=30",
            f"POST /deployments/{service}#1/statuses {state}",
        ]
        for service, state in (("a", "success"), ("b", "failure"), ("d", "success"))
    }, "\n".join(github.lines())
    log_url = github.deployments[0]["statuses"][-1]["log_url"]
    assert log_url.startswith("https://github.com/wfgen-tests/deploy/actions/runs/"), log_url
    page = "https://github.com/wfgen-tests/deploy/deployments/production"
    assert github_cells(summary.summary) == {
        f"[a]({page})": "🟢 active", f"[b]({page})": "🔴 failure", "c": "—", f"[d]({page})": "🟢 active",
    }  # fmt: skip

    calls = len(github.calls)
    back = act.dispatch(mono.root / ROLLBACK_WORKFLOW, {"service": "d", "commit": ""})
    assert back.returncode == 0, back.report()
    assert version(mono, "d") == "HTTP 404"  # the first version again: it has no /version
    assert github.problems == []
    assert github.sequences(calls) == {
        "d": [
            f"POST /deployments d {first_d[:7]} (rollback)",
            "POST /deployments/d#2/statuses in_progress",
            "GET /deployments?environment=production&task=deploy%3Ad&per_page=30",
            "GET /deployments/d#1/statuses?per_page=1",
            "POST /deployments/d#2/statuses success",
            "POST /deployments/d#1/statuses inactive",  # the version act's run deployed
        ]
    }, "\n".join(github.lines()[calls:])

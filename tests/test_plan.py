"""`wfgen plan` and plan.py: desired vs running on a real Docker engine, folder services of one real repo."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generator.steps import plan as steps_plan
from generator.steps.core import handoff
from generator.steps.engine import changes
from tests.support.fixture_service import git
from tests.support.fleet import make_fleet
from tests.support.manifests import resolved_view, toml_table
from tests.support.monorepo import Monorepo, make_monorepo
from tests.support.sshd import SshServer

THREE = {"api": {"paths": ["lib"]}, "web": {"paths": ["lib"]}, "worker": {}}


@pytest.fixture
def mono(tmp_path: Path, docker_host: str, docker_project: str) -> Iterator[Monorepo]:
    repo = make_monorepo(tmp_path / "mono", docker_project, docker_host, THREE)
    deployed = repo.wfgen("deploy", "all", "main", "--quiet", timeout=600)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    yield repo


def plan(repo: Monorepo, *args: str) -> dict[str, Any]:
    result = repo.wfgen("plan", "all", "main", "--json", *args, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def verdicts(document: dict[str, Any]) -> dict[str, str]:
    return {item["service"]: item["verdict"] for item in document["services"]}


def test_right_after_a_deploy_everything_is_unchanged(mono: Monorepo) -> None:
    document = plan(mono)
    assert verdicts(document) == {"api": "unchanged", "web": "unchanged", "worker": "unchanged"}
    assert document["legs"] == ["api", "web", "worker"]  # a dispatch keeps every selected leg
    assert plan(mono, "--only-changed")["legs"] == []
    text = mono.wfgen("plan", "all", "main", "--only-changed").stdout
    assert "nothing to deploy" in text


def test_a_change_to_one_folder_deploys_only_that_service(mono: Monorepo) -> None:
    before = mono.head
    after = mono.touch("worker", "v2")
    document = plan(mono, "--only-changed")
    assert verdicts(document) == {"api": "unchanged", "web": "unchanged", "worker": "deploy"}
    assert document["legs"] == ["worker"]
    worker = document["services"][2]
    assert (worker["running"], worker["desired"]) == (before, after)
    assert worker["reason"] == f"{before[:7]} → {after[:7]}"
    assert worker["changes"] == [f"{after[:7]} worker: v2"]
    text = mono.wfgen("plan", "all", "main", "--only-changed").stdout
    assert "worker: " + after[:7] + " worker: v2" in text.replace("  ", "")


def test_a_shared_path_redeploys_every_service_that_lists_it(mono: Monorepo) -> None:
    mono.commit({"lib/shared.txt": "shared v2\n"}, "lib: v2")
    assert verdicts(plan(mono)) == {"api": "deploy", "web": "deploy", "worker": "unchanged"}


def test_a_force_push_is_compared_with_what_runs_not_with_the_last_push(mono: Monorepo) -> None:
    deployed = mono.touch("web", "v2")
    result = mono.wfgen("deploy", "web", "main", "--quiet", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    git(mono.root, "reset", "-q", "--hard", "HEAD~1")  # history rewritten: the deployed commit is gone
    rewritten = mono.touch("web", "v2, reworded")
    document = plan(mono, "--only-changed")
    assert document["legs"] == ["web"]
    web = document["services"][1]
    assert (web["running"], web["desired"]) == (deployed, rewritten)
    assert web["changes"] == [
        f"{deployed[:7]} is not an ancestor of {rewritten[:7]} (history rewritten, or another branch)"
    ]


def test_a_stopped_or_missing_container_is_planned(mono: Monorepo) -> None:
    from tests.support.docker import docker

    docker(mono.docker_host, "stop", "-t", "1", f"{mono.project}-api", timeout=60, check=True)
    docker(mono.docker_host, "rm", "-f", f"{mono.project}-worker", timeout=60, check=True)
    document = plan(mono, "--only-changed")
    assert verdicts(document) == {"api": "deploy", "web": "unchanged", "worker": "new"}
    reasons = {item["service"]: item["reason"] for item in document["services"]}
    assert reasons["api"] == "the container is stopped"
    assert reasons["worker"] == "nothing runs yet"


def test_deploy_only_changed_runs_one_leg_and_reports_the_rest_unchanged(mono: Monorepo) -> None:
    after = mono.touch("worker", "v2")
    result = mono.wfgen("deploy", "all", "main", "--only-changed", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    run = mono.last_run()
    assert list(run["services"]) == ["worker"]  # one leg
    assert run["services"]["worker"]["result"] == "deployed"
    assert run["inputs"]["services"] == ["api", "web", "worker"] and run["inputs"]["only_changed"] is True
    assert mono.health("worker", "/version") == 200
    summary = (Path(run["run_dir"]) / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("### Deployment plan")
    assert "✅ 3/3 services deployed (2 unchanged)" in summary
    assert f"{after[:7]} runs already" not in summary and "no deploy job" in summary
    assert "worker" in result.stdout and "nothing to deploy" not in result.stdout


def test_plan_over_ssh_reads_branch_heads_on_the_target(
    tmp_path: Path, docker_host: str, docker_project: str, sshd: SshServer
) -> None:
    """Repository services: the heads come from `git ls-remote` run on the target, through the real sshd."""
    fleet = make_fleet(tmp_path / "fleet", docker_project, docker_host, {"auth": {}, "chat": {}})
    assert fleet.wfgen("deploy", "all", "main", "--quiet", timeout=600).returncode == 0
    text = fleet.manifest.read_text(encoding="utf-8")
    local = f'[target]\nkind = "local"\nnetwork = "{fleet.network}"\nstate_dir = "{fleet.state_dir}"\n'
    remote = sshd.target_config(network=fleet.network, state_dir=str(fleet.state_dir))
    assert local in text
    fleet.manifest.write_text(text.replace(local, "\n".join(toml_table("target", remote)) + "\n"))
    env = sshd.target_env()
    before = fleet.repos["chat"].head
    after = fleet.repos["chat"].write_marker("v2")
    result = fleet.wfgen("plan", "all", "main", "--json", "--only-changed", timeout=120, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert verdicts(document) == {"auth": "unchanged", "chat": "deploy"}
    assert document["legs"] == ["chat"]
    chat = document["services"][1]
    assert (chat["running"], chat["desired"], chat["changes"]) == (before, after, [])  # no log: not cheap
    unreachable = fleet.wfgen("plan", "all", "main", timeout=120, **{**env, "VPS_HOST": "127.0.0.2"})
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("plan: cannot read what runs on ssh $VPS_USER@$VPS_HOST:")
    assert "127.0.0.2" not in unreachable.stderr, unreachable.stderr  # the host is a secret


# --- the plan document, without a target ----------------------------------------------------------


def assessment(service: str, verdict: str, wave: int, **fields: Any) -> changes.Assessment:
    values: dict[str, Any] = {"reason": "why", "running": "a" * 40, "desired": "b" * 40, "changes": (),
                              "needs": (), "outside": (), **fields}  # fmt: skip
    return changes.Assessment(service, verdict, wave=wave, **values)


def monorepo_view() -> Any:
    path = Path(__file__).parent / "manifests" / "monorepo.toml"
    return resolved_view(path.read_text(encoding="utf-8"))


def test_a_push_gives_legs_only_to_what_differs_and_outputs_every_wave() -> None:
    found = [assessment("db-migrate", "unchanged", 1), assessment("api", "deploy", 2, needs=("db-migrate",)),
             assessment("web", "new", 3, needs=("api",))]  # fmt: skip
    document = steps_plan.make_document(monorepo_view(), found, "main", False, "push")
    assert document["legs"] == ["api", "web"]
    assert document["waves"] == [[], ["api"], ["web"]]
    outputs = steps_plan.job_outputs(document)
    assert outputs["count"] == "2"
    assert {k: v for k, v in outputs.items() if k not in ("plan", "plan-id")} == {
        "count": "2", "wave-1": "[]", "count-1": "0", "wave-2": '["api"]', "count-2": "1",
        "wave-3": '["web"]', "count-3": "1",
    }  # fmt: skip
    assert outputs["plan-id"] == document["id"] and len(document["id"]) == 16
    assert handoff.decode(outputs["plan"])["legs"] == document["legs"]
    unchanged = handoff.without_legs(document)
    assert list(unchanged) == ["db-migrate"]
    assert unchanged["db-migrate"]["result"] == "unchanged"
    assert unchanged["db-migrate"]["message"] == "aaaaaaa runs already; no deploy job"
    assert unchanged["db-migrate"]["plan_id"] == document["id"]
    # Later jobs get names and commits only, hex-encoded: no word a secret could be ("deploy") is in it.
    assert set(outputs["plan"]) <= set("0123456789abcdef")
    passed_on = handoff.decode(outputs["plan"])["services"]
    assert {key for item in passed_on for key in item} == set(handoff.FIELDS)
    dispatch = steps_plan.make_document(monorepo_view(), found, "main", False, "workflow_dispatch")
    assert dispatch["legs"] == ["db-migrate", "api", "web"] and handoff.without_legs(dispatch) == {}


def test_nothing_to_deploy_and_dependencies_outside_the_selection_are_said() -> None:
    found = [assessment("web", "unchanged", 3, outside=("api",))]
    document = steps_plan.make_document(monorepo_view(), found, "main", False, "push")
    text = steps_plan.text(document)
    assert "1 unchanged: nothing to deploy" in text
    assert "note: web depends on api, which is not selected: it deploys against the api that runs" in text


def test_commit_subjects_cannot_break_the_markdown_table() -> None:
    found = [assessment("api", "deploy", 1, changes=("abc1234 fix | pipes `and` <b>tags</b>",))]
    document = steps_plan.make_document(monorepo_view(), found, "main", False, "workflow_dispatch")
    row = next(line for line in steps_plan.markdown(document).splitlines() if line.startswith("| api"))
    assert row.count(" | ") == 4  # five cells, whatever the subject holds
    assert "<b>" not in row

"""deploy_service.py in a later wave: it reads the plan and the earlier reports, and skips itself when a
dependency did not deploy, before it touches the target (a fresh `python -I -S`, as the job runs it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from generator.steps.core import handoff
from generator.steps.core.order import dependency_results
from generator.steps.core.steplib import UsageError
from tests.support.manifests import manifest_toml, write_resolved_manifest
from tests.support.stepscripts import run_step

CHAIN = {
    "a": {"path": "a", "port": 7100},
    "b": {"path": "b", "port": 7101, "depends_on": ["a"]},
    "c": {"path": "c", "port": 7102, "depends_on": ["a", "b"]},
}


PLAN_ID = "0123abcd0123abcd"
DESIRED = "0123456789abcdef0123456789abcdef01234567"  # the commit the plan showed


def plan_document(legs: list[str], needs: dict[str, list[str]]) -> dict[str, Any]:
    services = [
        {"service": name, "running": None, "desired": DESIRED, "needs": deps} for name, deps in needs.items()
    ]
    return {"id": PLAN_ID, "branch": "main", "legs": legs, "services": services}


def report(folder: Path, service: str, result: str, plan_id: str = PLAN_ID) -> None:
    folder.mkdir(exist_ok=True)
    data = {"service": service, "result": result, "plan_id": plan_id}
    (folder / f"{service}.json").write_text(json.dumps(data))


def test_results_come_from_the_reports_and_the_plan(tmp_path: Path) -> None:
    report(tmp_path, "a", "deployed")
    plan = plan_document(["a", "c"], {"a": [], "b": ["a"], "c": ["a", "b"]})
    assert dependency_results(plan, "c", tmp_path) == {"a": "deployed", "b": "unchanged"}  # b had no leg
    report(tmp_path, "a", "rolled_back")
    assert dependency_results(plan, "c", tmp_path) == {"a": "rolled_back", "b": "unchanged"}
    (tmp_path / "a.json").write_text(
        json.dumps({"service": "other", "result": "deployed", "plan_id": PLAN_ID})
    )
    assert dependency_results(plan, "c", tmp_path) == {"a": None, "b": "unchanged"}  # not a's report
    report(tmp_path, "a", "deployed", plan_id="ffff0000ffff0000")  # an earlier attempt's, before a re-run
    assert dependency_results(plan, "c", tmp_path) == {"a": None, "b": "unchanged"}
    with pytest.raises(UsageError, match="'x' is not in the plan of this run"):
        dependency_results(plan, "x", tmp_path)


@pytest.mark.parametrize("text", ["", "{}", "7b7d", "nothex", json.dumps(plan_document([], {})), "5b5d"])
def test_a_plan_that_is_not_one_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="WFGEN_PLAN: not the plan of this run"):
        handoff.decode(text)


def test_the_hand_off_holds_no_word_a_secret_could_be() -> None:
    document = {**plan_document(["api"], {"api": []}), "waves": [["api"]]}
    document["services"][0].update(verdict="deploy", reason="configuration changed: env DEPLOY_USER")
    encoded = handoff.encode(document)
    assert set(encoded) <= set("0123456789abcdef")
    assert handoff.decode(encoded) == plan_document(["api"], {"api": []})


@pytest.mark.parametrize(
    ("reports", "message"),
    [
        ({"a": "deployed", "b": "failed"}, "dependency b failed"),
        ({"a": "skipped", "b": "skipped"}, "dependencies a skipped, b skipped"),
        ({"a": "deployed"}, "dependency b ended without a report"),
    ],
)
def test_a_leg_whose_dependency_did_not_deploy_ends_skipped(
    tmp_path: Path, reports: dict[str, str], message: str
) -> None:
    manifest = write_resolved_manifest(tmp_path, manifest_toml(CHAIN))
    reports_dir = tmp_path / "wfgen-dependencies"
    for service, result in reports.items():
        report(reports_dir, service, result)
    status = tmp_path / "status" / "c.json"
    plan = plan_document(["a", "b", "c"], {"a": [], "b": ["a"], "c": ["a", "b"]})
    env = {"WFGEN_PLAN": handoff.encode(plan), "WFGEN_DEPENDENCY_DIR": str(reports_dir)}
    args = ["--manifest", str(manifest), "--service", "c", "--branch", "main", "--status-file", str(status)]
    result = run_step("deploy_service", *args, env=env)  # no target variables: it must not get that far
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"c: skipped: {message}"
    written = json.loads(status.read_text())
    assert (written["result"], written["message"]) == ("skipped", message)


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ("{}", "WFGEN_PLAN: not the plan of this run"),
        ("", "WFGEN_PLAN is empty: the plan job's output did not reach this leg"),  # GitHub dropped it
    ],
)
def test_a_later_wave_without_its_plan_fails_instead_of_deploying(
    tmp_path: Path, plan: str, message: str
) -> None:
    manifest = write_resolved_manifest(tmp_path, manifest_toml(CHAIN))
    status = tmp_path / "c.json"
    env = {"WFGEN_PLAN": plan, "WFGEN_DEPENDENCY_DIR": str(tmp_path)}
    args = ["--manifest", str(manifest), "--service", "c", "--branch", "main", "--status-file", str(status)]
    result = run_step("deploy_service", *args, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert json.loads(status.read_text())["result"] == "failed"

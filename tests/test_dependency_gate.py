"""deploy_service.py in a later wave: it reads the plan and the earlier reports, and skips itself when a
dependency did not deploy, before it touches the target (a fresh `python -I -S`, as the job runs it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.steps.order import dependency_results
from generator.steps.steplib import UsageError
from tests.support.manifests import manifest_toml, write_resolved_manifest
from tests.support.stepscripts import run_step

CHAIN = {
    "a": {"path": "a", "port": 7100},
    "b": {"path": "b", "port": 7101, "depends_on": ["a"]},
    "c": {"path": "c", "port": 7102, "depends_on": ["a", "b"]},
}


def plan_json(legs: list[str], needs: dict[str, list[str]]) -> str:
    services = [{"service": name, "verdict": "deploy" if name in legs else "unchanged", "needs": deps}
                for name, deps in needs.items()]  # fmt: skip
    return json.dumps({"branch": "main", "legs": legs, "waves": [], "services": services})


def report(folder: Path, service: str, result: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{service}.json").write_text(json.dumps({"service": service, "result": result}))


def test_results_come_from_the_reports_and_the_plan(tmp_path: Path) -> None:
    report(tmp_path, "a", "deployed")
    plan = plan_json(["a", "c"], {"a": [], "b": ["a"], "c": ["a", "b"]})
    assert dependency_results(plan, "c", tmp_path) == {"a": "deployed", "b": "unchanged"}  # b had no leg
    report(tmp_path, "a", "rolled_back")
    assert dependency_results(plan, "c", tmp_path) == {"a": "rolled_back", "b": "unchanged"}
    (tmp_path / "a.json").write_text(json.dumps({"service": "other", "result": "deployed"}))
    assert dependency_results(plan, "c", tmp_path) == {"a": None, "b": "unchanged"}  # not a's report


@pytest.mark.parametrize("text", ["", "{}", "[]", '{"services": [], "legs": []}', "not json"])
def test_a_plan_that_is_not_one_is_a_usage_error(text: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="WFGEN_PLAN: not the plan of this run"):
        dependency_results(text, "c", tmp_path)


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
    env = {"WFGEN_PLAN": plan_json(["a", "b", "c"], {"a": [], "b": ["a"], "c": ["a", "b"]}),
           "WFGEN_DEPENDENCY_DIR": str(reports_dir)}  # fmt: skip
    args = ["--manifest", str(manifest), "--service", "c", "--branch", "main", "--status-file", str(status)]
    result = run_step("deploy_service", *args, env=env)  # no target variables: it must not get that far
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"c: skipped: {message}"
    written = json.loads(status.read_text())
    assert (written["result"], written["message"]) == ("skipped", message)


def test_a_bad_plan_fails_the_leg_with_a_usage_error(tmp_path: Path) -> None:
    manifest = write_resolved_manifest(tmp_path, manifest_toml(CHAIN))
    status = tmp_path / "c.json"
    env = {"WFGEN_PLAN": "{}", "WFGEN_DEPENDENCY_DIR": str(tmp_path)}
    args = ["--manifest", str(manifest), "--service", "c", "--branch", "main", "--status-file", str(status)]
    result = run_step("deploy_service", *args, env=env)
    assert result.returncode == 2
    assert "WFGEN_PLAN: not the plan of this run" in result.stderr
    assert json.loads(status.read_text())["result"] == "failed"

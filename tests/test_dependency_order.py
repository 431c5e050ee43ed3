"""`depends_on` in `wfgen deploy` end to end: real step scripts, real Docker, the CLI as a subprocess."""

from __future__ import annotations

import re
from pathlib import Path

from generator.steps.core.steplib import parse_iso
from tests.support.fleet import make_fleet
from tests.support.runs import assert_same_summary_as_the_job, statuses

# b's new version never answers its health check (after 4 s instead of the fleet's 20).
CHAIN = {
    "dep-a": {},
    "dep-b": {"variant": "broken_health", "depends_on": ["dep-a"], "health": {"deadline_s": 4.0}},
    "dep-c": {"depends_on": ["dep-b"]},
}


def test_a_failed_dependency_skips_its_dependents_and_leaves_the_rest_serving(
    tmp_path: Path, docker_host: str, docker_project: str
) -> None:
    fleet = make_fleet(tmp_path / "fleet", docker_project, docker_host, CHAIN, max_parallel=3)
    # The workflow's gate inputs left in a shell must not reach the local legs (they would fail them).
    stale = {"WFGEN_PLAN": "{}", "WFGEN_DEPENDENCY_DIR": str(tmp_path)}
    done = fleet.wfgen("deploy", "all", "main", **stale)
    assert done.returncode == 1, done.stdout + done.stderr
    run = fleet.last_run()
    results = {name: (item["result"], item["message"]) for name, item in run["services"].items()}
    assert results["dep-a"][0] == "deployed" and results["dep-b"][0] == "failed", results
    assert results["dep-c"] == ("skipped", "dependency dep-b failed")
    status = statuses(run)
    assert parse_iso(str(status["dep-b"]["started_at"])) >= parse_iso(str(status["dep-a"]["finished_at"]))
    assert status["dep-c"]["result"] == "skipped" and status["dep-c"]["started_at"] is None
    assert run["services"]["dep-c"]["pid"] is None and run["services"]["dep-c"]["log_path"] is None
    assert fleet.health("dep-a") == 200
    assert fleet.health("dep-b") is None and fleet.health("dep-c") is None  # never served
    for line in (
        "⏳ dep-b: waiting for dep-a",
        "⏳ dep-c: waiting for dep-b",
        "⏭️ dep-c: skipped: dependency dep-b failed",
    ):
        assert re.search(rf"^\[\d\d:\d\d:\d\d\] {line}$", done.stdout, flags=re.M), done.stdout
    assert re.search(r"📋 summary: ❌ 1 of 3 services failed, 1 skipped\n", done.stdout)
    assert re.search(r"📋 summary: ⏭️ dep-c +skipped +— +dependency dep-b failed\n", done.stdout)
    summary = (Path(run["run_dir"]) / "summary.md").read_text(encoding="utf-8")
    assert "| dep-c | ⏭️ skipped | — | — | dependency dep-b failed |" in summary
    assert_same_summary_as_the_job(run, tmp_path)

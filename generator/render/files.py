"""Pure rendering: Manifest -> {relative path: text}: workflows, vendored step scripts, manifest.json."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

import jinja2

from generator.errors import WfgenError
from generator.manifest.model import Manifest
from generator.manifest.resolve import GENERATED_NOTE, resolve_manifest
from generator.pins import action_pins, templates_root
from generator.render.compiled import compiled_templates
from generator.render.secrets import check_env, deploy_env, target_env
from generator.steps import JOBS
from generator.steps.core.order import waves
from generator.steps.core.steplib import JOB_MARGIN_MINUTES

DEPLOY_WORKFLOW = ".github/workflows/deploy-services-parallel.yml"
CHECK_WORKFLOW = ".github/workflows/wfgen-check.yml"
ROLLBACK_WORKFLOW = ".github/workflows/rollback.yml"
MANIFEST_JSON = ".github/wfgen/manifest.json"
ENVIRONMENTS_DIR = ".github/wfgen/environments"  # with [environments]: <name>.json each, no manifest.json
STEPS_DIR = ".github/wfgen"
STEP_PACKAGE = (
    "steps"  # generator/steps/ vendored as .github/wfgen/steps/, one entry script per job beside it
)
WORKFLOWS = {
    DEPLOY_WORKFLOW: "deploy-services-parallel.yml.j2",
    CHECK_WORKFLOW: "wfgen-check.yml.j2",
    ROLLBACK_WORKFLOW: "rollback.yml.j2",
}
ENTRY_TEMPLATE = "step-entry.py.j2"

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_YAML_KEYWORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
_GLOB_SPECIAL = re.compile(r"([*?+\[\]!\\])")


def render(manifest: Manifest, *, source: str = "services.toml") -> dict[str, str]:
    """Every generated file, keyed by its posix path relative to the manifest's directory."""
    if not manifest.environments:
        return render_resolved(resolve_manifest(manifest, source))
    copies = {name: resolve_manifest(manifest, source, name) for name in manifest.environments}
    return render_resolved(copies[next(iter(copies))], copies)


def environment_manifest(name: str) -> str:
    """Where the resolved manifest of one environment is vendored."""
    return f"{ENVIRONMENTS_DIR}/{name}.json"


def render_resolved(
    resolved: dict[str, Any], environments: dict[str, dict[str, Any]] | None = None
) -> dict[str, str]:
    """Render from the resolved manifest dict (docs/design.md), or from one per environment (`resolved` is the
    first); the same bytes on every run and machine."""
    source = resolved["source"]
    if "\n" in source or "\r" in source:
        raise WfgenError(f"{source!r}: a manifest file name cannot contain a line break")
    header = "# " + GENERATED_NOTE.format(source=source)
    context = workflow_context(resolved, header, environments or {})
    environment = _environment()
    out = {path: environment.get_template(name).render(context) for path, name in WORKFLOWS.items()}
    for path, copy in manifest_files(resolved, environments).items():
        out[path] = json.dumps(copy, indent=2) + "\n"
    for name, text in step_modules():
        out[f"{STEPS_DIR}/{STEP_PACKAGE}/{name}"] = header + "\n" + text
    for job in JOBS:
        entry = environment.get_template(ENTRY_TEMPLATE)
        out[f"{STEPS_DIR}/{job}.py"] = entry.render(header=header, package=STEP_PACKAGE, job=job)
    return dict(sorted(out.items()))


def manifest_files(
    resolved: dict[str, Any], environments: dict[str, dict[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    """Where each resolved manifest is vendored: manifest.json, or one file per environment."""
    if not environments:
        return {MANIFEST_JSON: resolved}
    return {environment_manifest(name): copy for name, copy in environments.items()}


def workflow_context(
    resolved: dict[str, Any], header: str, environments: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """What the templates see: the resolved manifest plus pins, header and the env maps of each job.

    With environments, secrets are those of every environment's target (a job reads the ones its
    environment's manifest names), and the branch picks the environment."""
    build = resolved["build"]
    registry_names = [build["registry_user_env"], build["registry_password_env"]]
    registry = build["registry"] or ""
    # The environment a job deploys to: prepare's output (the branch picked it), or the rollback's input.
    target = target_env(resolved, environments, "needs.prepare.outputs.environment", registry_names)
    rollback_target = target_env(resolved, environments, "inputs.environment", registry_names)
    return {
        **resolved,
        "header": header,
        "pins": action_pins(),
        "check_env": check_env(target, resolved["infrastructure"]["secrets"]),
        "deploy_env": deploy_env(resolved, target, registry_names),
        # A rollback pulls nothing: the image is on the target. It needs the target and the service's secrets.
        "rollback_env": deploy_env(resolved, rollback_target, [], subject="inputs.service"),
        "plan_env": target,
        "deploy_jobs": deploy_jobs(resolved),
        "summary_needs": ["prepare", "check-infrastructure", *(job["id"] for job in deploy_jobs(resolved))],
        "push_paths": push_paths(resolved, list(environments)),
        "push_to_ghcr": build["where"] == "runner" and registry.split("/")[0] == "ghcr.io",
        "path_service_names": [name for name, service in resolved["services"].items() if service["path"]],
        "check_paths": check_paths(resolved),
        "services_example": ",".join(list(resolved["services"])[:2]),
        "deploy_job_timeout_minutes": resolved["project"]["deploy_timeout_minutes"] + JOB_MARGIN_MINUTES,
        **environment_context(resolved, environments),
    }


def environment_context(resolved: dict[str, Any], environments: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The dispatch's branch choices, the concurrency group, and with environments the expressions that pick
    one from the branch: its resolved manifest and its GitHub environment."""
    branch = "inputs.branch || github.ref_name" if resolved["project"]["deploy_on_push"] else "inputs.branch"
    if not environments:
        return {"branches": resolved["project"]["branches"], "environments": [],
                "project_name": resolved["project"]["name"],
                "concurrency_group": yaml_value("wfgen-deploy-" + resolved["project"]["name"])}  # fmt: skip
    first = resolved["project"]
    project = first["name"].removesuffix(f"-{first['environment']}")  # the name before the environment's
    by_branch = {b: name for name, copy in environments.items() for b in copy["project"]["branches"]}
    # Branch names are safe git refs, environment names [a-z0-9-]: nothing to escape inside '...', and no
    # double quote, so the expression fits in any YAML scalar.
    subject = f"({branch})" if "||" in branch else branch
    pick = " || ".join(
        "(" + _any_of([f"{subject} == '{b}'" for b in copy["project"]["branches"]]) + f" && '{name}')"
        for name, copy in environments.items()
    )
    return {
        "branches": list(by_branch),
        "environments": list(environments),
        "concurrency_group": f"wfgen-deploy-{project}-${{{{ {pick} }}}}",
        "environment_pick": pick,
        "branch_description": "Branch of each service to deploy; it picks the environment: "
        + "; ".join(
            f"{', '.join(copy['project']['branches'])} to {name}" for name, copy in environments.items()
        ),
        "manifest_expression": f"{ENVIRONMENTS_DIR}/${{{{ {pick} }}}}.json",
        "project_name": project,
        "environments_dir": ENVIRONMENTS_DIR,
        "rollback_github_environment": github_environment_of("inputs.environment", environments),
    }


def deploy_jobs(resolved: dict[str, Any]) -> list[dict[str, Any]]:
    """One matrix job per dependency depth: `deploy-service` alone when nothing has depends_on, else
    `deploy-wave-1..N`, each after the one before, which may have failed (a dependent leg then skips)."""
    graph = {name: service["depends_on"] for name, service in resolved["services"].items()}
    count = len(waves(graph))
    if count == 1:
        condition = "needs.check-infrastructure.outputs.count-1 != '0'"
        return [{"id": "deploy-service", "name": "Deploy ${{ matrix.service }}", "number": 1,
                 "needs": ["prepare", "check-infrastructure"], "condition": condition}]  # fmt: skip
    jobs = []
    for number in range(1, count + 1):
        job_id, earlier = f"deploy-wave-{number}", [f"deploy-wave-{number - 1}"] if number > 1 else []
        condition = f"needs.check-infrastructure.outputs.count-{number} != '0'"
        if earlier:
            condition = (
                "${{ !cancelled() && needs.check-infrastructure.result == 'success' && " + condition + " }}"
            )
        jobs.append({"id": job_id, "name": "Deploy ${{ matrix.service }}" + f" (wave {number})",
                     "number": number, "needs": ["prepare", "check-infrastructure", *earlier],
                     "condition": condition})  # fmt: skip
    return jobs


def github_environment_of(subject: str, environments: dict[str, dict[str, Any]]) -> str:
    """An expression: the GitHub environment of the environment `subject` names."""
    own = {name: copy["target"]["environment"] for name, copy in environments.items()}
    if all(name == github for name, github in own.items()):
        return subject
    quoted = {name: github.replace("'", "''") for name, github in own.items()}  # '' is ' in an expression
    return " || ".join(f"({subject} == '{name}' && '{github}')" for name, github in quoted.items())


def _any_of(tests: list[str]) -> str:
    return tests[0] if len(tests) == 1 else "(" + " || ".join(tests) + ")"


def push_paths(resolved: dict[str, Any], environments: list[str]) -> list[str]:
    """The coarse `paths` filter of a push: the manifest, its resolved copies, and each folder service's
    folder and extra paths (a file or a folder each). The plan then compares with what runs."""
    copies = [environment_manifest(name) for name in environments] or [MANIFEST_JSON]
    paths = [glob_escape(resolved["source"]), *copies]
    for service in resolved["services"].values():
        for path in [service["path"], *service["paths"]] if service["path"] else []:
            paths += [glob_escape(path), f"{glob_escape(path)}/**"]
    return list(dict.fromkeys(paths))


def check_paths(resolved: dict[str, Any]) -> list[str]:
    """Path filters of the check workflow: everything whose change can make the generated files stale."""
    paths = [glob_escape(resolved["source"]), f"{STEPS_DIR}/**", *WORKFLOWS]
    if resolved["project"]["wfgen_install"] == ".":
        paths += ["generator/**", "templates/**", "pyproject.toml"]
    return paths


def yaml_value(value: Any) -> str:
    """A YAML scalar or flow sequence that reads back as exactly `value` (plain when unambiguous)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(yaml_value(item) for item in value) + "]"
    if not isinstance(value, str):
        raise TypeError(f"cannot write {type(value).__name__} into YAML")
    if "${{" in value:
        raise WfgenError(f"{value!r}: must not contain '${{{{' (GitHub expression syntax)")
    if _PLAIN.fullmatch(value) and value.lower() not in _YAML_KEYWORDS:
        return value
    # JSON strings are YAML double-quoted scalars; U+2028/9 are escaped so no parser sees a line break.
    return json.dumps(value, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def glob_escape(path: str) -> str:
    """Escape the characters GitHub's path filters treat as patterns."""
    return _GLOB_SPECIAL.sub(r"\\\1", path)


def step_modules() -> list[tuple[str, str]]:
    """(path inside the package, source) of every module of generator.steps and its sub-packages, sorted."""
    return sorted(_package_modules(files("generator").joinpath("steps"), ""))


def _package_modules(package: Traversable, prefix: str) -> Iterator[tuple[str, str]]:
    for entry in package.iterdir():
        if entry.is_file() and entry.name.endswith(".py"):
            yield prefix + entry.name, entry.read_text(encoding="utf-8")
        elif entry.is_dir() and entry.joinpath("__init__.py").is_file():
            yield from _package_modules(entry, f"{prefix}{entry.name}/")


# [[ ]] / [% %] delimiters let GitHub's own ${{ }} expressions pass through the templates untouched.
_SYNTAX: dict[str, Any] = {
    "keep_trailing_newline": True,
    "autoescape": False,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "block_start_string": "[%",
    "block_end_string": "%]",
    "variable_start_string": "[[",
    "variable_end_string": "]]",
    "comment_start_string": "[#",
    "comment_end_string": "#]",
}


@functools.cache
def _environment() -> jinja2.Environment:
    root = templates_root()
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: _read(root, name)),
        undefined=jinja2.StrictUndefined,
        bytecode_cache=compiled_templates(_SYNTAX),
        **_SYNTAX,
    )
    environment.filters["yaml"] = yaml_value
    return environment


def _read(root: Traversable, name: str) -> str:
    return root.joinpath(*name.split("/")).read_text(encoding="utf-8")

"""Validate the dispatched selection and branch, print the plan, and hand the matrix to the deploy jobs."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass

from .core import config, config_load, steplib
from .core.names import GIT_REF_HINT, did_you_mean, is_safe_git_ref
from .core.report_text import format_table

HEADERS = ("service", "source", "ref", "host port")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="prepare.py", description=__doc__)
    parser.add_argument(
        "--services",
        default=steplib.env_default("WFGEN_SERVICES"),
        help="'all' or a comma-separated list of service names (env WFGEN_SERVICES)",
    )
    parser.add_argument(
        "--branch",
        default=steplib.env_default("WFGEN_BRANCH"),
        help="branch to deploy, one of project.branches; default: the first (env WFGEN_BRANCH)",
    )
    parser.add_argument(
        "--force-rebuild",
        nargs="?",
        const="true",
        default=steplib.env_default("WFGEN_FORCE_REBUILD", "false"),
        help="rebuild images even when the commit is already deployed (env WFGEN_FORCE_REBUILD)",
    )
    parser.add_argument("--json", action="store_true", help="print the selection as JSON instead of the plan")
    steplib.add_manifest_option(parser)
    return parser.parse_args(argv)


def select_services(text: str | None, valid: list[str]) -> tuple[list[str], list[str]]:
    """The selected names in manifest order, and notes about how the input was read."""
    names = [name.strip() for name in (text or "").split(",")]
    names = [name for name in names if name]
    if not names:
        raise steplib.UsageError("no services selected; pass 'all' or a comma-separated list of names")
    wants_all = any(name.lower() == "all" for name in names)
    unknown = [name for name in dict.fromkeys(names) if name not in valid and name.lower() != "all"]
    if unknown:
        # repr: a dispatched input is untrusted; no raw newline may start a `::command::` line in the job log.
        described = ", ".join(f"{name!r}{did_you_mean(name, valid)}" for name in unknown)
        noun = "service" if len(unknown) == 1 else "services"
        raise steplib.UsageError(f"unknown {noun} {described}; valid: {', '.join(valid)}")
    if wants_all:
        return list(valid), []
    chosen = set(names)
    selected = [name for name in valid if name in chosen]
    notes = []
    duplicates = [name for name in dict.fromkeys(names) if names.count(name) > 1]
    if duplicates:
        notes.append(f"listed more than once, deployed once: {', '.join(duplicates)}")
    if list(dict.fromkeys(names)) != selected:
        notes.append("services are listed in manifest order, not the order given")
    return selected, notes


def check_branch(branch: str | None, branches: list[str]) -> str:
    if branch is None:
        return branches[0]
    if not is_safe_git_ref(branch):
        raise steplib.UsageError(f"branch {branch!r} is not a safe git branch name ({GIT_REF_HINT})")
    if branch not in branches:
        hint = did_you_mean(branch, branches)
        raise steplib.UsageError(f"unknown branch {branch!r}{hint}; valid: {', '.join(branches)}")
    return branch


@dataclass(frozen=True)
class Plan:
    """What a dispatch deploys: the selection in manifest order, the branch, and a row per service."""

    services: list[str]
    branch: str
    force_rebuild: bool
    notes: list[str]
    rows: list[tuple[str, str, str, str]]  # HEADERS: service, source, ref, host port
    footer: str


def make_plan(
    manifest: config.Manifest, services: str | None, branch: str | None, force_rebuild: str | bool | None
) -> Plan:
    """Validate the dispatch inputs against the manifest; UsageError (one line) on anything wrong."""
    selected, notes = select_services(services, list(manifest.services))
    chosen = check_branch(branch, list(manifest.project.branches))
    force = steplib.parse_bool(force_rebuild, what="--force-rebuild")
    rows = plan_rows(manifest.services, selected, chosen)
    return Plan(selected, chosen, force, notes, rows, footer(manifest, selected, chosen, force))


def plan_rows(
    services: Mapping[str, config.Service], selected: list[str], branch: str
) -> list[tuple[str, str, str, str]]:
    rows = []
    for name in selected:
        service = services[name]
        source = service.repository or service.path or "?"
        rows.append((name, source, service.ref or branch, str(service.port)))
    return rows


def footer(manifest: config.Manifest, selected: list[str], branch: str, force: bool) -> str:
    total = len(manifest.services)
    parallel = manifest.project.max_parallel
    return (
        f"{len(selected)} of {total} services selected, branch {branch}, "
        f"force rebuild: {'yes' if force else 'no'}, at most {parallel} in parallel"
    )


def run(args: argparse.Namespace) -> int:
    manifest = config_load.load(args.manifest)
    plan = make_plan(manifest, args.services, args.branch, args.force_rebuild)
    steplib.write_github_output(
        {
            "services": json.dumps(plan.services, separators=(",", ":")),
            "count": str(len(plan.services)),
            "branch": plan.branch,
            "force_rebuild": "true" if plan.force_rebuild else "false",
            # With [environments]: where this run's jobs run; the branch picked the manifest.
            "github-environment": manifest.target.environment or "",
            # With [environments]: its name; a job gets only the target secrets of this environment.
            "environment": manifest.project.environment or "",
            # Whether a job must check out this repository: only folder services build from it.
            "path_services": json.dumps(
                [name for name in plan.services if manifest.services[name].path], separators=(",", ":")
            ),
        }
    )
    # No step summary: the plan job's table, which adds what runs on the target, is the first one of the run.
    if args.json:
        document = {"services": plan.services, "branch": plan.branch, "force_rebuild": plan.force_rebuild}
        print(json.dumps(document), flush=True)
        return steplib.Exit.OK
    lines = [
        *format_table(plan.rows, HEADERS),
        "",
        *(f"note: {note}" for note in plan.notes),
        plan.footer,
    ]
    print("\n".join(lines), flush=True)
    return steplib.Exit.OK


def main(argv: list[str] | None = None) -> int:
    steplib.safe_stdio()
    args = parse_args(argv)
    try:
        return run(args)
    except steplib.UsageError as exc:
        steplib.error("prepare", str(exc))
        return steplib.Exit.USAGE


if __name__ == "__main__":
    raise SystemExit(main())

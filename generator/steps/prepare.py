"""Validate the dispatched selection and branch, print the plan, and hand the matrix to the deploy jobs."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import steplib

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
        described = ", ".join(f"'{name}'{steplib.did_you_mean(name, valid)}" for name in unknown)
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
    if not steplib.is_safe_git_ref(branch):
        raise steplib.UsageError(f"branch {branch!r} is not a safe git branch name ({steplib.GIT_REF_HINT})")
    if branch not in branches:
        hint = steplib.did_you_mean(branch, branches)
        raise steplib.UsageError(f"unknown branch '{branch}'{hint}; valid: {', '.join(branches)}")
    return branch


def plan_rows(services: dict[str, Any], selected: list[str], branch: str) -> list[tuple[str, str, str, str]]:
    rows = []
    for name in selected:
        service = services[name]
        source = service.get("repository") or service.get("path") or "?"
        rows.append((name, str(source), service.get("ref") or branch, str(service.get("port"))))
    return rows


def format_table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in (HEADERS, *rows)) for i in range(len(HEADERS))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (HEADERS, *rows)
    ]


def footer(manifest: dict[str, Any], selected: list[str], branch: str, force: bool) -> str:
    total = len(manifest["services"])
    parallel = manifest["project"].get("max_parallel", total)
    return (
        f"{len(selected)} of {total} services selected, branch {branch}, "
        f"force rebuild: {'yes' if force else 'no'}, at most {parallel} in parallel"
    )


def markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_plan(rows: list[tuple[str, str, str, str]], notes: list[str], summary_line: str) -> str:
    lines = [
        "### Deployment plan",
        "",
        "| Service | Source | Ref | Host port |",
        "| --- | --- | --- | ---: |",
    ]
    for name, source, ref, port in rows:
        lines.append(f"| {name} | `{markdown_cell(source)}` | `{markdown_cell(ref)}` | {port} |")
    lines.append("")
    if notes:
        lines += [*(f"> {note}" for note in notes), ""]
    lines.append(summary_line)
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    manifest = steplib.load_manifest(args.manifest)
    services: dict[str, Any] = manifest["services"]
    selected, notes = select_services(args.services, list(services))
    branch = check_branch(args.branch, list(manifest["project"]["branches"]))
    force = steplib.parse_bool(args.force_rebuild, what="--force-rebuild")
    steplib.write_github_output(
        {
            "services": json.dumps(selected, separators=(",", ":")),
            "count": str(len(selected)),
            "branch": branch,
            "force_rebuild": "true" if force else "false",
        }
    )
    rows = plan_rows(services, selected, branch)
    summary_line = footer(manifest, selected, branch, force)
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        with Path(summary_path).open("a", encoding="utf-8") as handle:
            handle.write(markdown_plan(rows, notes, summary_line))
    if args.json:
        print(json.dumps({"services": selected, "branch": branch, "force_rebuild": force}), flush=True)
        return steplib.Exit.OK
    lines = [*format_table(rows), "", *(f"note: {note}" for note in notes), summary_line]
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

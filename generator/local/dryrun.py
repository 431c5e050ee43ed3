"""`wfgen deploy --dry-run`: prepare's plan plus the image each service would get; touches nothing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

from generator.steps.core import config
from generator.steps.core.report_text import format_table
from generator.steps.core.transport import LocalTarget
from generator.steps.engine.changes import desired_commit
from generator.steps.engine.images import image_name
from generator.steps.prepare import HEADERS, Plan

LOOKUP_TIMEOUT_S = 10.0


def describe_target(manifest: config.Manifest, env: Mapping[str, str]) -> str:
    """`local Docker (unix:///...)` or `ssh $VPS_USER@$VPS_HOST:22`, then ` (staging)` with environments: the
    host and user are secrets, so their variables stand in for them, as in the step scripts' logs."""
    target = manifest.target
    if target.kind == "local" or target.manager == "local":
        where = f"local Docker ({env.get('DOCKER_HOST') or 'default socket'})"
    else:
        where = f"ssh ${target.user_env}@${target.host_env}:{target.port}"
    if target.kind == "swarm":
        where = f"the swarm manager at {where}"
    environment = manifest.project.environment
    return f"{where} ({environment})" if environment else where


def dry_run_rows(manifest: config.Manifest, plan: Plan, root: Path) -> list[dict[str, Any]]:
    services = [manifest.services[name] for name in plan.services]
    refs = [ref for _, _, ref, _ in plan.rows]
    with ThreadPoolExecutor(max_workers=8) as pool:
        # As the deploy would resolve each commit, asked from this machine.
        here = LocalTarget()
        found = list(
            pool.map(
                lambda pair: desired_commit(pair[0], pair[1], str(root), here, LOOKUP_TIMEOUT_S),
                zip(services, refs, strict=True),
            )
        )
    rows = []
    for (name, where, ref, port), (commit, problem) in zip(plan.rows, found, strict=True):
        image = (
            image_name(manifest, name, commit)
            if commit
            else f"{image_name(manifest, name, '')}<head of {ref}>"
        )
        rows.append({"service": name, "source": where, "ref": ref, "port": int(port), "image": image,
                     "commit": commit, "problem": problem})  # fmt: skip
    return rows


def print_dry_run(
    manifest: config.Manifest,
    plan: Plan,
    *,
    root: Path,
    max_parallel: int,
    as_json: bool,
    env: Mapping[str, str],
    stream: TextIO,
) -> None:
    rows = dry_run_rows(manifest, plan, root)
    target = describe_target(manifest, env)
    if as_json:
        document = {"dry_run": True, "branch": plan.branch, "force_rebuild": plan.force_rebuild,
                    "target": target, "max_parallel": max_parallel, "services": rows}  # fmt: skip
        print(json.dumps(document, indent=2), file=stream)
        return
    print(
        f"Dry run: nothing will be touched. Target: {target}; branch {plan.branch}; "
        f"force rebuild: {'yes' if plan.force_rebuild else 'no'}; at most {max_parallel} in parallel.",
        file=stream,
    )
    table = [(*(str(row[key]) for key in ("service", "source", "ref", "port")), row["image"]) for row in rows]
    for line in format_table(table, (*HEADERS, "image")):
        print(line, file=stream)
    for note in plan.notes:
        print(f"note: {note}", file=stream)
    for row in rows:
        if row["problem"]:
            print(f"note: {row['service']}: {row['problem']}", file=stream)
    print(f"{len(rows)} service(s) would be deployed, in this order.", file=stream)

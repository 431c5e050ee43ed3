"""Plan a deploy against what runs: the verdict per service, the waves of `depends_on`, and the deploy jobs'
matrices. On a push only the services whose verdict is not `unchanged` get a deploy job; a dispatch keeps
every selected one (each leg may still find itself unchanged). Reads the target, never changes it.

Stdlib only: vendored into `.github/wfgen/`; the check-infrastructure job runs it after its checks.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
from collections.abc import Mapping
from typing import Any

from . import prepare
from .core import config, config_load, handoff, order, steplib
from .core.report_text import append_step_summary, format_table, markdown_cell
from .core.target import open_target
from .core.transport import CommandFailed, LocalTarget, TargetError
from .engine import changes

SUBJECT = "plan"
EVENTS = ("workflow_dispatch", "push", "local")
HEADERS = ("service", "verdict", "running → desired", "wave", "why")
ICONS = {"new": "🆕", "deploy": "🚀", "unchanged": "💤"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = steplib.env_default
    parser = argparse.ArgumentParser(prog="plan.py", description=__doc__)
    parser.add_argument(
        "--services", default=env("WFGEN_SERVICES"), help="'all' or a comma list (env WFGEN_SERVICES)"
    )
    parser.add_argument("--branch", default=env("WFGEN_BRANCH"), help="branch to deploy (env WFGEN_BRANCH)")
    force = env("WFGEN_FORCE_REBUILD", "false")
    parser.add_argument("--force-rebuild", nargs="?", const="true", default=force,
                        help="every selected service deploys (env WFGEN_FORCE_REBUILD)")  # fmt: skip
    parser.add_argument("--event", default=env("WFGEN_EVENT", "local"), choices=EVENTS,
                        help="'push' deploys only what differs from what runs (env WFGEN_EVENT)")  # fmt: skip
    parser.add_argument(
        "--repo-root", default=env("WFGEN_REPO_ROOT", "."), help="checkout for 'path' services"
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    steplib.add_manifest_option(parser)
    return parser.parse_args(argv)


def make_document(
    manifest: config.Manifest, found: list[changes.Assessment], branch: str, force: bool, event: str
) -> dict[str, Any]:
    """The plan as the jobs pass it on: every assessment, which of them get a deploy leg, and the waves."""
    legs = [a.service for a in found if event != "push" or a.verdict != "unchanged"]
    return {
        "id": secrets.token_hex(8),  # stamped on every report of this run: a re-run's own are told apart
        "branch": branch,
        "force_rebuild": force,
        "event": event,
        "legs": legs,
        "waves": order.waves(manifest.dependencies(), legs),
        "services": [a.as_json() for a in found],
    }


def job_outputs(document: Mapping[str, Any]) -> dict[str, str]:
    """`plan`, `count`, and `wave-N` / `count-N` for each wave of the manifest (one deploy job each)."""
    outputs = {
        "plan": handoff.encode(document),
        "plan-id": document["id"],
        "count": str(len(document["legs"])),
    }
    for number, wave in enumerate(document["waves"], start=1):
        outputs[f"wave-{number}"] = json.dumps(wave, separators=(",", ":"))
        outputs[f"count-{number}"] = str(len(wave))
    return outputs


def rows(document: Mapping[str, Any], *, icons: bool) -> list[tuple[str, str, str, str, str]]:
    """The table's rows; icons only where the table is rendered (a terminal counts an emoji as two columns,
    and the text table is aligned by characters)."""
    return [
        (
            item["service"],
            f"{ICONS.get(item['verdict'], '')} {item['verdict']}" if icons else item["verdict"],
            f"{changes.short(item['running'])} → {changes.short(item['desired'])}",
            str(item["wave"]),
            item["reason"],
        )  # fmt: skip
        for item in document["services"]
    ]


def notes(document: Mapping[str, Any]) -> list[str]:
    lines = []
    for item in document["services"]:
        for dependency in item["outside"]:
            lines.append(
                f"{item['service']} depends on {dependency}, which is not selected: "
                f"it deploys against the {dependency} that runs"
            )
    return lines


def footer(document: Mapping[str, Any]) -> str:
    services = document["services"]
    counts = {verdict: sum(item["verdict"] == verdict for item in services) for verdict in ICONS}
    told = ", ".join(f"{count} {verdict}" for verdict, count in counts.items() if count) or "nothing selected"
    legs = document["legs"]
    if not legs:
        return f"{told}: nothing to deploy"
    waves = [wave for wave in document["waves"] if wave]
    numbered = enumerate(document["waves"], start=1)
    order_text = " · ".join(f"{number}: {', '.join(wave)}" for number, wave in numbered if wave)
    what = f"{len(legs)} deploy leg(s)" + (f" in {len(waves)} waves ({order_text})" if len(waves) > 1 else "")
    return f"{told}; {what}; branch {document['branch']}"


def text(document: Mapping[str, Any]) -> str:
    lines = format_table(rows(document, icons=False), HEADERS)
    for item in document["services"]:
        lines += [f"  {item['service']}: {change}" for change in item["changes"]]
    lines += [f"note: {note}" for note in notes(document)]
    return "\n".join([*lines, footer(document)]) + "\n"


def markdown(document: Mapping[str, Any]) -> str:
    lines = ["### Deployment plan", "", "| Service | Verdict | Running → desired | Wave | Why |",
             "| --- | --- | --- | ---: | --- |"]  # fmt: skip
    for row, item in zip(rows(document, icons=True), document["services"], strict=True):
        cells = [markdown_cell(cell) for cell in row]
        why = cells[4] + "".join(f"<br>`{markdown_cell(change)}`" for change in item["changes"])
        lines.append(f"| {cells[0]} | {cells[1]} | `{cells[2]}` | {cells[3]} | {why} |")
    lines.append("")
    lines += [f"> {markdown_cell(note)}" for note in notes(document)]
    lines.append(markdown_cell(footer(document), limit=2000))
    return "\n".join(lines) + "\n\n"


def assess(
    manifest: config.Manifest,
    services: str | None,
    branch: str | None,
    force_rebuild: str | bool | None,
    *,
    event: str,
    repo_root: str,
    environ: Mapping[str, str],
) -> dict[str, Any]:
    """Validate the inputs as prepare does, ask the target, and make the plan document."""
    chosen = prepare.make_plan(manifest, services or "all", branch, force_rebuild)
    return assess_selection(manifest, chosen, event=event, repo_root=repo_root, environ=environ)


def assess_selection(
    manifest: config.Manifest, chosen: prepare.Plan, *, event: str, repo_root: str, environ: Mapping[str, str]
) -> dict[str, Any]:
    """The plan document for a selection prepare has already validated."""
    with open_target(manifest.target, environ) as target:
        builder = LocalTarget() if manifest.build.where == "runner" else target
        found = changes.assess(
            manifest, target, builder, chosen.services, chosen.branch,
            force=chosen.force_rebuild, repo_root=repo_root, environ=environ,
        )  # fmt: skip
    return make_document(manifest, found, chosen.branch, chosen.force_rebuild, event)


def main(argv: list[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    steplib.safe_stdio()
    args = parse_args(argv)
    try:
        manifest = config_load.load(args.manifest)
        document = assess(
            manifest, args.services, args.branch, args.force_rebuild,
            event=args.event, repo_root=args.repo_root, environ=environ,
        )  # fmt: skip
    except steplib.UsageError as exc:
        steplib.error(SUBJECT, str(exc))
        return steplib.Exit.USAGE
    except (TargetError, OSError, CommandFailed) as exc:
        steplib.error(SUBJECT, f"cannot read what runs: {exc}")
        return steplib.Exit.FAILED
    steplib.write_github_output(job_outputs(document))
    append_step_summary(markdown(document), environ)
    print(json.dumps(document, indent=2) + "\n" if args.json else text(document), end="", flush=True)
    return steplib.Exit.OK


if __name__ == "__main__":
    raise SystemExit(main())

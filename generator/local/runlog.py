"""The run folder `.wfgen/runs/<run-id>/`: status files, logs, run.json, summary.md, the `latest` pointer."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from generator.errors import WfgenError
from generator.local.legs import Leg
from generator.steps.core.report_text import markdown_cell
from generator.steps.core.steplib import RESULTS_OK, write_json_atomic
from generator.steps.deployment_summary import format_duration

RUNS = Path(".wfgen") / "runs"
TAIL_LINES = 15


class RunRecordError(WfgenError):
    """run.json is not what `wfgen deploy` writes (hand-edited, truncated, another tool's file)."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: not a run record: {problem}")


def runs_root(repo_root: Path) -> Path:
    return repo_root / RUNS


def create_run(repo_root: Path) -> tuple[str, Path]:
    """A fresh folder named by a sortable id such as 20261129-142315-ab12 (UTC)."""
    root = runs_root(repo_root)
    root.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"  # the runs live in the user's checkout: `git add -A` must not take them
    if not ignore.exists():
        ignore.write_text(
            "# wfgen deploy's run folders: logs and reports, not for the repository\n*\n", encoding="utf-8"
        )
    for _ in range(20):
        run_id = f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        with contextlib.suppress(FileExistsError):
            (root / run_id).mkdir()
            return run_id, root / run_id
    raise RuntimeError(f"could not create a unique run folder under {root}")


def point_latest(repo_root: Path, run_id: str) -> None:
    """`latest` is a relative symlink to the run folder (a file naming it where symlinks are unavailable)."""
    root = runs_root(repo_root)
    tmp = root / f".latest-{secrets.token_hex(4)}"
    try:
        tmp.symlink_to(run_id, target_is_directory=True)
    except OSError:
        tmp.write_text(run_id + "\n", encoding="utf-8")
    tmp.replace(root / "latest")


def latest_run(repo_root: Path) -> Path | None:
    """The last run's folder (with a run.json), or None when there has been none."""
    root = runs_root(repo_root)
    pointer = root / "latest"
    if pointer.is_symlink() or pointer.is_dir():
        candidate = pointer.resolve()
    elif pointer.is_file():
        candidate = root / pointer.read_text(encoding="utf-8").strip()
    else:
        runs = sorted(p for p in root.glob("*-*-*") if (p / "run.json").is_file()) if root.is_dir() else []
        candidate = runs[-1] if runs else root / "missing"
    return candidate if (candidate / "run.json").is_file() else None


def read_run(run_dir: Path) -> dict[str, Any]:
    """run.json, checked for the keys `--retry-failed` reads; RunRecordError (one line) otherwise."""
    path = run_dir / "run.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunRecordError(path, str(exc.strerror)) from None
    except (ValueError, RecursionError):
        raise RunRecordError(path, "not valid JSON") from None
    problem = record_problem(record)
    if problem:
        raise RunRecordError(path, problem)
    return dict(record)


def record_problem(record: object) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    services, inputs = record.get("services"), record.get("inputs")
    if not isinstance(services, dict):
        return "no 'services' object"
    for name, item in services.items():
        if not isinstance(item, dict):
            return f"services.{name} is not an object"
        if not isinstance(item.get("result"), str | None):
            return f"services.{name}.result is not a string"
    if not isinstance(inputs, dict):
        return "no 'inputs' object"
    if not isinstance(inputs.get("branch"), str):
        return "inputs.branch is not a string"
    if not isinstance(inputs.get("force_rebuild"), bool):
        return "inputs.force_rebuild is not true or false"
    if not isinstance(record.get("run_id"), str):
        return "no 'run_id' string"
    return None


def write_run(run_dir: Path, record: dict[str, Any]) -> None:
    write_json_atomic(run_dir / "run.json", record)


def display_path(path: Path, base: Path) -> str:
    """A path relative to the current directory when it is below it: short enough for a table."""
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(base.resolve()))
    return str(path)


def leg_record(leg: Leg) -> dict[str, Any]:
    status = leg.status
    duration = leg.duration()
    return {
        "result": leg.result,
        "phase": leg.phase,
        "duration_s": round(duration, 3) if duration is not None else None,
        "commit": status.get("commit"),
        "image": status.get("image"),
        "message": leg.message or status.get("message"),
        "started_at": status.get("started_at"),
        "finished_at": status.get("finished_at"),
        "log_path": str(leg.log_path) if leg.log_path.exists() else None,
        "status_path": str(leg.status_path),
        "pid": leg.proc.pid if leg.proc else None,
        "exit_code": leg.exit_code,
    }


def timing(legs: Sequence[Leg]) -> dict[str, float | None]:
    """Deploy-stage wall time (first start to last end, as the runner saw it), sum of leg times, speedup."""
    started = [leg.started for leg in legs if leg.started is not None]
    ended = [leg.ended for leg in legs if leg.ended is not None]
    wall = (max(ended) - min(started)) if started and ended else None
    total = sum(d for d in (leg.duration() for leg in legs if leg.started is not None) if d is not None)
    slowest = max((d for d in (leg.duration() for leg in legs if leg.started) if d is not None), default=None)
    speedup = total / wall if wall else None
    return {
        "deploy_wall_s": _round(wall),
        "sum_s": _round(total) if started else None,
        "slowest_s": _round(slowest),
        "speedup": _round(speedup, 2),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return round(value, digits) if value is not None else None


def tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    """The last lines of a log, read from its end so a huge log costs no more than a small one."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except OSError:
        return []
    return data.decode("utf-8", errors="replace").splitlines()[-lines:]


def failed_with_logs(record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(service, its run.json entry) for each service that did not deploy and left a log."""
    return [
        (name, item)
        for name, item in record["services"].items()
        if item["result"] not in RESULTS_OK and item["log_path"]
    ]


def details_markdown(record: dict[str, Any], base: Path) -> str:
    """What summary.md adds below the job's report: the run, why nothing ran, failed logs' last lines."""
    inputs = record["inputs"]
    branch, folder = (
        markdown_cell(inputs["branch"]),
        markdown_cell(display_path(Path(record["run_dir"]), base)),
    )
    force = "yes" if inputs["force_rebuild"] else "no"
    lines = [
        f"### Run {record['run_id']}",
        "",
        f"Branch `{branch}`, force rebuild: {force}; run time {format_duration(record['wall_s'])}; "
        f"logs in `{folder}`.",
    ]
    if record.get("message"):  # e.g. the infrastructure check failed: say so, and show its table
        lines += ["", f"**{markdown_cell(record['message'])}**"]
        lines += _fenced(tail(Path(record["run_dir"]) / "check-infrastructure.log"))
    for name, item in failed_with_logs(record):
        lines += ["", f"#### {markdown_cell(name)}: {markdown_cell(str(item['message'] or item['result']))}"]
        lines += _fenced(tail(Path(item["log_path"])))
    return "\n".join(lines) + "\n"


def _fenced(rows: list[str]) -> list[str]:
    """A log tail as a code block that no line of it can close early."""
    return ["", "```", *(row.replace("```", "'''") for row in rows), "```"] if rows else []

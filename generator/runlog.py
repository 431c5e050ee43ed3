"""The run folder `.wfgen/runs/<run-id>/`: status files, logs, run.json, summary.md, the `latest` pointer."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from generator.legs import Leg
from generator.steps.steplib import RESULTS_OK, read_json, write_json_atomic

RUNS = Path(".wfgen") / "runs"
TAIL_LINES = 15
ICONS = {
    "deployed": "✅",
    "unchanged": "♻️",
    "failed": "❌",
    "rolled_back": "↩️",
    "cancelled": "🛑",
    "skipped": "⏭️",
    "queued": "⏳",
    "running": "🔄",
}


def runs_root(repo_root: Path) -> Path:
    return repo_root / RUNS


def create_run(repo_root: Path) -> tuple[str, Path]:
    """A fresh folder named by a sortable id such as 20261129-142315-ab12 (UTC)."""
    root = runs_root(repo_root)
    root.mkdir(parents=True, exist_ok=True)
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


def read_run(run_dir: Path) -> dict[str, Any] | None:
    return read_json(run_dir / "run.json")


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


def short(commit: object) -> str:
    return str(commit)[:7] if commit else "-"


def seconds(value: object) -> str:
    return f"{value:.1f} s" if isinstance(value, int | float) else "-"


def markdown(record: dict[str, Any], base: Path) -> str:
    """summary.md: the verdict, one row per service, failed logs' tails, and the speedup."""
    services: dict[str, dict[str, Any]] = record["services"]
    ok = sum(1 for item in services.values() if item["result"] in RESULTS_OK)
    verdict = "✅" if ok == len(services) else "❌"
    inputs = record["inputs"]
    lines = [
        f"## {verdict} {ok}/{len(services)} services deployed — run {record['run_id']}",
        "",
        f"Branch `{inputs['branch']}`, force rebuild: {'yes' if inputs['force_rebuild'] else 'no'}.",
        "",
        "| service | result | duration | commit | log |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, item in services.items():
        log = display_path(Path(item["log_path"]), base) if item["log_path"] else "-"
        result = f"{ICONS.get(item['result'], '❔')} {item['result']}"
        lines.append(
            f"| {name} | {result} | {seconds(item['duration_s'])} | {short(item['commit'])} | `{log}` |"
        )
    lines += ["", totals_line(record)]
    if record.get("message"):  # e.g. the infrastructure check failed: say so, and show its table
        lines += ["", f"**{record['message']}**"]
        check_log = Path(record["run_dir"]) / "check-infrastructure.log"
        if check_log.is_file():
            lines += ["", "```", *(line.replace("```", "'''") for line in tail(check_log)), "```"]
    for name, item in services.items():
        if item["result"] not in RESULTS_OK and item["log_path"]:
            lines += ["", f"### {name}: {item['message'] or item['result']}", "", "```"]
            lines += [line.replace("```", "'''") for line in tail(Path(item["log_path"]))]
            lines.append("```")
    return "\n".join(lines) + "\n"


def totals_line(record: dict[str, Any]) -> str:
    parts = [f"Wall time {seconds(record['wall_s'])}"]
    if record.get("deploy_wall_s") is not None:
        parts.append(f"deploy stage {seconds(record['deploy_wall_s'])}")
        parts.append(f"sum of service times {seconds(record['sum_s'])}")
        parts.append(
            f"speedup over sequential {record['speedup']:.1f}×" if record["speedup"] else "speedup -"
        )
    return ", ".join(parts) + "."

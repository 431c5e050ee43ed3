"""Benchmark `wfgen rollback` against `wfgen deploy` of a new commit, on the fixture service behind the proxy,
side by side in one run. Goal: a rollback costs one boot of the kept image plus its health check; no build.

Each repetition commits a new marker and times `wfgen deploy web main` (build, boot, health, switch, drain,
prune), then `wfgen rollback web` back to the version before it (boot, health, switch, drain), both as whole
processes. Each one's status file splits its time: before the candidate (a deploy's build), the candidate's
boot and health check, the switch (with the test proxy's 0.5 s drain), and the process around the step.

Needs a running Docker engine (DOCKER_HOST or WFGEN_TEST_DOCKER_HOST), git, busybox-static and Debian's caddy
(as the tests). Run from the repository root:

    python benchmarks/rollback.py --reps 5 [--build-s 0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from generator.steps.core.steplib import parse_iso
from tests.support.caddy import benchmark_engine  # noqa: E402
from tests.support.docker import cleanup_project, unique_name  # noqa: E402
from tests.support.fleet import Fleet, make_fleet  # noqa: E402

SERVICE = "web"
FIGURES = (
    "whole command",
    "in the step, before the candidate",  # lock, what runs, source; a deploy's build
    "candidate boot + health",
    "switch, verify, drain, cleanup",
    "outside the step",  # the process's start, manifest, a deploy's plan and summary
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=5, help="deploys and rollbacks to time (default 5)")
    parser.add_argument(
        "--build-s",
        type=float,
        default=0.0,
        help="a build step of the fixture that takes this long (default 0)",
    )
    return parser.parse_args(argv)


def split(whole: float, status: dict[str, Any]) -> list[float]:
    """The FIGURES of one command from its status file's phase times: the candidate starts at `candidate`
    and is healthy at `switch`."""
    at = {phase["phase"]: parse_iso(phase["at"]) for phase in status["phases"]}
    start, end = parse_iso(status["started_at"]), parse_iso(status["finished_at"])
    step = (end - start).total_seconds()
    boot = (at["switch"] - at["candidate"]).total_seconds()
    before = (at["candidate"] - start).total_seconds()
    return [whole, before, boot, step - before - boot, whole - step]


def timed(fleet: Fleet, args: list[str], status_file: Path) -> list[float]:
    """The FIGURES of one `wfgen` command that must end deployed."""
    start = time.monotonic()
    done = fleet.wfgen(*args, timeout=900)
    took = time.monotonic() - start
    status = json.loads(status_file.resolve().read_text(encoding="utf-8"))
    if done.returncode != 0 or status["result"] != "deployed":
        raise SystemExit(f"wfgen {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    if args[0] == "rollback" and "build" in [phase["phase"] for phase in status["phases"]]:
        raise SystemExit("the rollback built an image")
    return split(took, status)


def row(name: str, values: list[float]) -> str:
    return f"| {name:<43} | {statistics.median(values):>7.2f} | {min(values):>7.2f} | {max(values):>7.2f} |"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    docker_host = benchmark_engine()
    if docker_host is None:
        return 2
    project = unique_name("wfgb")
    times: dict[str, dict[str, list[float]]] = {c: {f: [] for f in FIGURES} for c in ("deploy", "rollback")}
    with tempfile.TemporaryDirectory(prefix="wfgen-bench-") as tmp:
        try:
            spec = {SERVICE: {"build_s": args.build_s}}
            fleet = make_fleet(Path(tmp) / "fleet", project, docker_host, spec)
            statuses = {
                "deploy": fleet.root / ".wfgen" / "runs" / "latest" / f"{SERVICE}.json",
                "rollback": fleet.root / ".wfgen" / "rollback" / f"{SERVICE}.json",
            }
            fleet.repos[SERVICE].write_marker("v0")
            timed(fleet, ["deploy", SERVICE, "main", "--quiet"], statuses["deploy"])
            for rep in range(max(1, args.reps)):  # interleaved, so both see the same machine load
                fleet.repos[SERVICE].write_marker(f"v{rep + 1}")
                for command, cli in (
                    ("deploy", ["deploy", SERVICE, "main", "--quiet"]),
                    ("rollback", ["rollback", SERVICE]),
                ):
                    for name, value in zip(FIGURES, timed(fleet, cli, statuses[command]), strict=True):
                        times[command][name].append(value)
        finally:
            cleanup_project(docker_host, project)
    print(f"\n`wfgen deploy` of a new commit vs `wfgen rollback`, the fixture service behind the proxy, "
          f"{args.reps} of each (seconds):")  # fmt: skip
    print("| figure                                      |  median |     min |     max |")
    print("| ------------------------------------------- | ------: | ------: | ------: |")
    for command, figures in times.items():
        for name, values in figures.items():
            print(row(f"{command}: {name}", values))
    deploy, back = (statistics.median(times[c]["whole command"]) for c in ("deploy", "rollback"))
    boot = statistics.median(times["rollback"]["candidate boot + health"])
    print(f"rollback / deploy = {back / deploy:.0%}; rollback beyond its boot + health: {back - boot:.2f} s")
    print("goal: a rollback is one boot plus the health check, no build")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark change-aware deploys on the local runner. After a commit that changes one of N folder services:
a push-style deploy (`wfgen deploy all main --only-changed`: only that leg runs) against a dispatch of all N
(every leg runs; the unchanged ones find out on the target), side by side in one run, alternating the order.

Needs a running Docker engine (DOCKER_HOST or WFGEN_TEST_DOCKER_HOST), git, busybox-static and Debian's caddy
(the proxy image is built from it, as in the tests). Run from the repository root:

    python benchmarks/change_aware.py --services 6 --reps 3
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
from tests.support.caddy import benchmark_engine  # noqa: E402
from tests.support.docker import cleanup_project, unique_name  # noqa: E402
from tests.support.monorepo import Monorepo, make_monorepo  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--services", type=int, default=6, help="folder services in the repository (default 6)"
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions of push + dispatch (default 3)")
    parser.add_argument(
        "--delay", type=float, default=2.0, help="seconds each container takes to get healthy"
    )
    return parser.parse_args(argv)


def deploy(repo: Monorepo, *extra: str) -> dict[str, Any]:
    """One `wfgen deploy all main --json` (plus `extra`): its run record, and the process's own wall time."""
    start = time.monotonic()
    done = repo.wfgen("deploy", "all", "main", "--json", *extra, timeout=1800)
    took = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(
            f"deploy failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    record: dict[str, Any] = json.loads(done.stdout)
    record["process_s"] = took
    return record


def row(kind: str, record: dict[str, Any]) -> tuple[str, float, float, int, str]:
    results = [item["result"] for item in record["services"].values()]
    told = ", ".join(f"{results.count(r)} {r}" for r in dict.fromkeys(results))
    return kind, record["process_s"], record["wall_s"], len(results), told


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    docker_host = benchmark_engine()
    if docker_host is None:
        return 2
    names = [f"svc-{index}" for index in range(args.services)]
    project = unique_name("wfgb")
    rows: list[tuple[str, float, float, int, str]] = []
    with tempfile.TemporaryDirectory(prefix="wfgen-bench-") as tmp:
        try:
            specs = {name: {"delay_s": args.delay} for name in names}
            repo = make_monorepo(Path(tmp) / "mono", project, docker_host, specs,
                                 project_settings={"max_parallel": args.services})  # fmt: skip
            cold = deploy(repo)
            print(f"cold deploy of {args.services} services: {cold['wall_s']:.2f} s", flush=True)
            for rep in range(args.reps):
                order = ("push", "dispatch") if rep % 2 == 0 else ("dispatch", "push")
                for kind in order:
                    repo.touch(names[rep % len(names)], f"{kind} {rep}")
                    record = deploy(repo, *(["--only-changed"] if kind == "push" else []))
                    rows.append(row(kind, record))
                    print(f"rep {rep + 1} {kind}: {record['process_s']:.2f} s", flush=True)
        finally:
            cleanup_project(docker_host, project)
    print(f"\nafter a commit to one of {args.services} folder services ({args.delay:g} s boot each):")
    print(f"{'kind':>9} {'process':>9} {'run wall':>9} {'legs':>5}  results")
    for kind, process, wall, legs, told in rows:
        print(f"{kind:>9} {process:>8.2f}s {wall:>8.2f}s {legs:>5}  {told}")
    medians = {kind: statistics.median(r[1] for r in rows if r[0] == kind) for kind in ("push", "dispatch")}
    print(f"\nmedian process wall: push {medians['push']:.2f} s, dispatch {medians['dispatch']:.2f} s, "
          f"dispatch / push {medians['dispatch'] / medians['push']:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

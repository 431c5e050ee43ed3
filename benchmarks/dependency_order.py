"""Benchmark `depends_on` order: the local runner's greedy start against the workflow's waves, in one run.

Six services: a chain chain-a → chain-b → chain-c, and three independent ones with different build and
health times. Every run deploys a new commit of each (so each really builds):

* greedy: `wfgen deploy all main`: a service starts as soon as the services it depends on are done;
* waves: what the GitHub workflow does: one batch per dependency depth, each waiting for the whole previous
  batch. Simulated with the runner's own leg pool and deploy argv, one pool per wave in sequence, with no
  gap between waves (GitHub adds its job scheduling latency on top: this is the waves' best case);
* the critical-path bound: the longest chain of measured leg durations of the greedy run, what no order can
  beat with unlimited parallelism.

Needs a running Docker engine (DOCKER_HOST or WFGEN_TEST_DOCKER_HOST), git, busybox-static and Debian's caddy
(the proxy image is built from it, as in the tests). Run from the repository root:

    python benchmarks/dependency_order.py --reps 3
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
from generator.local.deploy_options import DeployOptions, child_env
from generator.local.legs import Leg, LegPool
from generator.local.run import POLL_S, deploy_argv
from generator.local.runlog import timing
from generator.manifest.resolve import resolve_manifest
from generator.manifest.validate import load_manifest
from generator.steps.core.order import waves
from generator.steps.core.steplib import parse_iso
from tests.support.caddy import benchmark_engine  # noqa: E402
from tests.support.docker import cleanup_project, unique_name  # noqa: E402
from tests.support.fleet import Fleet, make_fleet  # noqa: E402

# build_s: a build step of that many seconds; delay_s: how long the container takes to answer.
FLEET: dict[str, dict[str, Any]] = {
    "chain-a": {"build_s": 1, "delay_s": 1},
    "chain-b": {"build_s": 1, "delay_s": 1, "depends_on": ["chain-a"]},
    "chain-c": {"build_s": 1, "delay_s": 1, "depends_on": ["chain-b"]},
    "solo-fast": {},
    "solo-mid": {"build_s": 1, "delay_s": 3},
    "solo-slow": {"build_s": 2, "delay_s": 6},
}
GRAPH = {name: list(spec.get("depends_on", [])) for name, spec in FLEET.items()}
LEG_TIMEOUT_S = 600


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions of greedy + waves (default 3)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"), help="folder for the JSON")
    return parser.parse_args(argv)


def new_commits(fleet: Fleet, tag: str) -> None:
    for repo in fleet.repos.values():
        repo.write_marker(tag)


def greedy(fleet: Fleet) -> dict[str, Any]:
    """One `wfgen deploy all main --json`: wall time and each leg's duration and start/end, as it reports."""
    done = fleet.wfgen("deploy", "all", "main", "--json", timeout=1800)
    if done.returncode != 0:
        raise SystemExit(
            f"greedy deploy failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr}"
        )
    services = json.loads(done.stdout)["services"]
    return {
        "wall": json.loads(done.stdout)["deploy_wall_s"],
        "durations": {name: item["duration_s"] for name, item in services.items()},
        "spans": spans_of(json.loads(Path(item["status_path"]).read_text()) for item in services.values()),
    }


def by_waves(fleet: Fleet, run_dir: Path) -> dict[str, Any]:
    """One pool per wave, each started once the previous one is done, driven as the runner drives its pool."""
    resolved = resolve_manifest(load_manifest(fleet.manifest), source=fleet.manifest.name)
    run_dir.mkdir(parents=True)
    manifest = run_dir / "manifest.json"
    manifest.write_text(json.dumps(resolved, indent=2) + "\n", encoding="utf-8")
    env = {**child_env(fleet.env(), DeployOptions(manifest=fleet.manifest)), "WFGEN_RUN_ID": run_dir.name}
    every: list[Leg] = []
    for wave in waves(GRAPH):
        legs = [Leg(name, "main", run_dir / f"{name}.json", run_dir / f"{name}.log") for name in wave]
        pool = LegPool(
            legs, lambda leg: deploy_argv(leg, manifest, fleet.root), env, len(FLEET), cwd=fleet.root
        )
        deadline = time.monotonic() + LEG_TIMEOUT_S
        try:
            while not pool.done and time.monotonic() < deadline:
                pool.step()
                if not pool.done:
                    pool.wait(POLL_S)
        finally:
            pool.kill()
            pool.close()
        failed = [f"{leg.service}: {leg.result} {leg.message}" for leg in legs if leg.result != "deployed"]
        if failed:
            raise SystemExit("waves deploy failed:\n" + "\n".join(failed))
        every += legs
    return {
        "wall": timing(every)["deploy_wall_s"],
        "durations": {leg.service: leg.duration() for leg in every},
        "spans": spans_of(leg.status for leg in every),
    }


def spans_of(statuses: Any) -> dict[str, tuple[str, str]]:
    return {status["service"]: (status["started_at"], status["finished_at"]) for status in statuses}


def critical_path(durations: dict[str, float]) -> float:
    """The longest chain of leg durations along depends_on."""
    found: dict[str, float] = {}

    def longest(name: str) -> float:
        if name not in found:
            found[name] = durations[name] + max((longest(dep) for dep in GRAPH[name]), default=0.0)
        return found[name]

    return max(longest(name) for name in GRAPH)


def wave_bound(durations: dict[str, float]) -> float:
    """The sum over waves of each wave's slowest leg: what the waves order cannot beat."""
    return sum(max(durations[name] for name in wave) for wave in waves(GRAPH) if wave)


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'rep':>4} {'greedy':>8} {'waves':>8} {'saved':>8} {'waves/greedy':>13} {'crit. path':>11}"
          f" {'greedy-bound':>13} {'wave bound':>11}")  # fmt: skip
    for index, row in enumerate(rows, start=1):
        g, w = row["greedy"], row["waves"]
        bound = critical_path(g["durations"])
        print(f"{index:>4} {g['wall']:>7.2f}s {w['wall']:>7.2f}s {w['wall'] - g['wall']:>7.2f}s"
              f" {w['wall'] / g['wall']:>12.2f}x {bound:>10.2f}s {g['wall'] - bound:>12.2f}s"
              f" {wave_bound(w['durations']):>10.2f}s")  # fmt: skip

    def median(column: Any) -> float:
        return statistics.median(column(row["greedy"], row["waves"]) for row in rows)

    g_med, w_med = median(lambda g, w: g["wall"]), median(lambda g, w: w["wall"])
    bound_med = median(lambda g, w: critical_path(g["durations"]))
    print(f" med {g_med:>7.2f}s {w_med:>7.2f}s {median(lambda g, w: w['wall'] - g['wall']):>7.2f}s"
          f" {median(lambda g, w: w['wall'] / g['wall']):>12.2f}x {bound_med:>10.2f}s"
          f" {median(lambda g, w: g['wall'] - critical_path(g['durations'])):>12.2f}s"
          f" {median(lambda g, w: wave_bound(w['durations'])):>10.2f}s")  # fmt: skip


def print_spans(row: dict[str, Any]) -> None:
    """Each leg's start and end, in seconds from the first start, for the last rep."""
    print("\nlast rep, seconds from the first start (start-end):")
    print(f"{'service':>10} {'needs':>8} {'greedy':>13} {'waves':>13}")
    origins = {
        order: min(at(start) for start, _ in row[order]["spans"].values()) for order in ("greedy", "waves")
    }
    for name in FLEET:
        cells = []
        for order in ("greedy", "waves"):
            start, end = row[order]["spans"][name]
            cells.append(f"{at(start) - origins[order]:5.1f}-{at(end) - origins[order]:5.1f}")
        print(f"{name:>10} {','.join(GRAPH[name]) or '-':>8} {cells[0]:>13} {cells[1]:>13}")


def at(text: str) -> float:
    return parse_iso(text).timestamp()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    docker_host = benchmark_engine()
    if docker_host is None:
        return 2
    project = unique_name("wfgb")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="wfgen-bench-") as tmp:
        try:
            fleet = make_fleet(Path(tmp) / "fleet", project, docker_host, FLEET, max_parallel=len(FLEET))
            cold = greedy(fleet)
            print(f"cold deploy (builds every image): {cold['wall']:.2f} s wall", flush=True)
            for rep in range(args.reps):
                row: dict[str, Any] = {}
                orders = ("greedy", "waves") if rep % 2 == 0 else ("waves", "greedy")  # no order bias
                for order in orders:
                    new_commits(fleet, f"rep{rep}-{order}")
                    if order == "greedy":
                        row[order] = greedy(fleet)
                    else:
                        row[order] = by_waves(fleet, Path(tmp) / f"waves-{rep}")
                rows.append(row)
                walls = f"greedy {row['greedy']['wall']:.2f} s, waves {row['waves']['wall']:.2f} s"
                print(f"rep {rep + 1}: {walls}", flush=True)
        finally:
            cleanup_project(docker_host, project)
    print(f"\n{len(FLEET)} services, max_parallel {len(FLEET)}: " + ", ".join(
        f"{name} ({spec.get('build_s', 0)} s build, {spec.get('delay_s', 0)} s to answer"
        + (f", needs {spec['depends_on'][0]})" if spec.get("depends_on") else ")")
        for name, spec in FLEET.items()
    ))  # fmt: skip
    print_table(rows)
    print_spans(rows[-1])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dependency_order.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

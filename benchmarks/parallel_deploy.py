"""Benchmark `wfgen deploy`: N slow-to-start services, sequential (--max-parallel 1) against parallel, behind
the project proxy and with `proxy = false` (the restart cutover), side by side in one run, and in the same
reps the floor: legs doing only the Docker work of a container swap (`leg_floor.py`), a generous ceiling on
the speed-up this machine allows. Each row also shows the machine's busy CPU-seconds per service and how
long all cores were busy at once during the parallel deploy: the time in which legs wait for a core.

Needs a running Docker engine (DOCKER_HOST or WFGEN_TEST_DOCKER_HOST), git, busybox-static and Debian's caddy
(the proxy image is built from it, as in the tests); matplotlib for the timeline (`pip install matplotlib`).
The proxy drains the old version for 0.5 s (the tests' setting; production's default is 10 s). Run from the
repository root:

    python benchmarks/parallel_deploy.py --services 6 --reps 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.leg_floor import FloorFleet  # noqa: E402
from benchmarks.machine_cpu import CpuWatch  # noqa: E402
from tests.support.caddy import benchmark_engine  # noqa: E402
from tests.support.docker import cleanup_project, unique_name  # noqa: E402
from tests.support.fleet import Fleet, make_fleet  # noqa: E402

PHASES = ("lock", "source", "build", "candidate", "health", "switch", "verify", "drain", "cleanup")
MODES = {"proxy": True, "restart": False}  # services.*.proxy


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=6, help="services to deploy (default 6)")
    parser.add_argument(
        "--reps", type=int, default=3, help="repetitions of sequential + parallel (default 3)"
    )
    parser.add_argument(
        "--delay", type=float, default=3.0, help="seconds each container takes to get healthy"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/out"), help="folder for the PNG and JSON"
    )
    return parser.parse_args(argv)


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def deploy(fleet: Fleet, *extra: str) -> dict[str, Any]:
    """One `wfgen deploy all main --force-rebuild --json` run; the JSON result plus each service's status and
    how busy the machine was over the run."""
    with CpuWatch() as cpu:
        done = fleet.wfgen("deploy", "all", "main", "--force-rebuild", "--json", *extra, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(
            f"deploy failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    result: dict[str, Any] = json.loads(done.stdout)
    result["busy_cpu_s"], result["saturated_s"] = cpu.busy_s, cpu.saturated_s
    result["statuses"] = {
        name: json.loads(Path(item["status_path"]).read_text()) for name, item in result["services"].items()
    }
    return result


def figures(result: dict[str, Any], count: int) -> dict[str, float]:
    slowest = max(item["duration_s"] for item in result["services"].values())
    return {
        "wall": result["deploy_wall_s"],
        "total": result["wall_s"],
        "sum": result["sum_s"],
        "slowest": slowest,
        "overhead": (result["deploy_wall_s"] - slowest) / count,
        "cpu": result["busy_cpu_s"] / count,
        "saturated": result["saturated_s"],
    }


def phase_seconds(result: dict[str, Any]) -> dict[str, float]:
    """Mean seconds per phase across the services of one run."""
    spent: dict[str, list[float]] = {phase: [] for phase in PHASES}
    for status in result["statuses"].values():
        marks = [(mark["phase"], at(mark["at"])) for mark in status["phases"]]
        marks.append(("end", at(status["finished_at"])))
        for (phase, start), (_, end) in zip(marks, marks[1:], strict=False):
            if phase in spent:
                spent[phase].append(end - start)
    return {phase: statistics.mean(values) if values else 0.0 for phase, values in spent.items()}


def print_table(mode: str, rows: Rows, count: int) -> float:
    """One line per rep and the medians; CPU is the whole machine's busy time per service, and `saturated`
    how long all cores were busy at once during the parallel deploy (machine_cpu.py)."""
    print(f"\n{mode}:")
    print(f"{'rep':>4} {'seq wall':>9} {'par wall':>9} {'speedup':>8} {'slowest':>8} {'overhead/svc':>13}"
          f" {'seq total':>10} {'par total':>10} {'CPU/svc seq':>12} {'CPU/svc par':>12}"
          f" {'par saturated':>14}")  # fmt: skip
    for index, (seq, par) in enumerate(rows, start=1):
        speedup = seq["wall"] / par["wall"]
        print(f"{index:>4} {seq['wall']:>8.2f}s {par['wall']:>8.2f}s {speedup:>7.2f}x {par['slowest']:>7.2f}s"
              f" {par['overhead']:>12.3f}s {seq['total']:>9.2f}s {par['total']:>9.2f}s"
              f" {seq['cpu']:>11.2f}s {par['cpu']:>11.2f}s {par['saturated']:>13.2f}s")  # fmt: skip
    seq_wall = statistics.median(seq["wall"] for seq, _ in rows)
    par_wall = statistics.median(par["wall"] for _, par in rows)
    overhead = statistics.median(par["overhead"] for _, par in rows)
    print(f" med {seq_wall:>8.2f}s {par_wall:>8.2f}s {seq_wall / par_wall:>7.2f}x {'':>8} {overhead:>12.3f}s")
    return seq_wall / par_wall


def print_phases(runs: dict[str, dict[str, Any]]) -> None:
    """Mean seconds per phase per service of the last rep, for every mode and order side by side."""
    columns = {
        f"{mode} {order[:3]}": phase_seconds(run[order]) for mode, run in runs.items() for order in run
    }
    print("\nmean seconds per phase per service (last rep):")
    print(f"{'phase':>10} " + " ".join(f"{name:>12}" for name in columns))
    for phase in PHASES:
        print(f"{phase:>10} " + " ".join(f"{spent[phase]:>11.2f}s" for spent in columns.values()))


Rows = list[tuple[dict[str, float], dict[str, float]]]


class Bench(NamedTuple):
    rows: Rows  # figures of (sequential, parallel) per rep
    runs: list[dict[str, Any]]  # wfgen's JSON results per rep
    floor: Rows  # the floor's, measured in the same reps (the proxy's fleet only)


def bench_mode(root: Path, mode: str, names: list[str], args: argparse.Namespace, docker_host: str) -> Bench:
    """Cold deploy, then `reps` × (sequential, parallel) of one fleet; on the proxy's fleet each rep also
    runs the floor's sequential and parallel legs, so both see the same machine."""
    project = unique_name("wfgb")
    bench = Bench([], [], [])
    try:
        specs = {name: {"delay_s": args.delay} for name in names}
        fleet = make_fleet(
            root / mode, project, docker_host, specs, max_parallel=args.services, proxied=MODES[mode]
        )
        cold = deploy(fleet)
        print(f"{mode}: cold deploy (builds every image): {cold['deploy_wall_s']:.2f} s wall", flush=True)
        floor = FloorFleet(fleet) if mode == "proxy" else None
        if floor:
            floor.deploy(parallel=True)
        for rep in range(args.reps):
            seq = deploy(fleet, "--max-parallel", "1")
            par = deploy(fleet)
            bench.rows.append((figures(seq, args.services), figures(par, args.services)))
            bench.runs.append({"sequential": seq, "parallel": par})
            walls = f"sequential {seq['deploy_wall_s']:.2f} s, parallel {par['deploy_wall_s']:.2f} s"
            if floor:
                bench.floor.append((floor.deploy(parallel=False), floor.deploy(parallel=True)))
                floor_seq, floor_par = bench.floor[-1]
                walls += f"; floor {floor_seq['wall']:.2f} s, {floor_par['wall']:.2f} s"
            print(f"{mode} rep {rep + 1}: {walls}", flush=True)
    finally:
        cleanup_project(docker_host, project)
    return bench


def timeline(seq: dict[str, Any], par: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = dict(zip(PHASES, plt.get_cmap("tab10").colors, strict=False))
    fig, axes = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for ax, (title, result) in zip(
        axes, (("sequential (--max-parallel 1)", seq), ("parallel", par)), strict=True
    ):
        origin = min(at(s["started_at"]) for s in result["statuses"].values())
        names = list(result["statuses"])
        for row, name in enumerate(reversed(names)):
            status = result["statuses"][name]
            marks = [(m["phase"], at(m["at"])) for m in status["phases"]]
            marks.append(("end", at(status["finished_at"])))
            for (phase, start), (_, end) in zip(marks, marks[1:], strict=False):
                ax.barh(
                    row, end - start, left=start - origin, color=colors.get(phase, "grey"), edgecolor="white"
                )
        ax.set_yticks(range(len(names)), list(reversed(names)))
        ax.set_title(f"{title}: wall {result['deploy_wall_s']:.1f} s")
    axes[1].set_xlabel("seconds since the first service started")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[p]) for p in PHASES]
    fig.legend(handles, PHASES, loc="lower center", ncol=len(PHASES))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    docker_host = benchmark_engine()
    if docker_host is None:
        return 2
    names = [f"svc-{index}" for index in range(args.services)]
    results: dict[str, Bench] = {}
    with tempfile.TemporaryDirectory(prefix="wfgen-bench-") as tmp:
        for mode in MODES:
            results[mode] = bench_mode(Path(tmp), mode, names, args, docker_host)
    speedups = {mode: print_table(mode, bench.rows, args.services) for mode, bench in results.items()}
    floor_rows = results["proxy"].floor
    title = "floor (a container swap's Docker work, same fleet)"
    speedups["floor"] = print_table(title, floor_rows, args.services)
    print(
        f"\n{args.services} services, {os.cpu_count()} cores; goals: speedup >= 5.7x for 6 services, overhead"
        " <= 0.15 s per service."
    )
    print("median speedup: " + ", ".join(f"{mode} {value:.2f}x" for mode, value in speedups.items()))
    print_phases({mode: bench.runs[-1] for mode, bench in results.items()})
    args.out.mkdir(parents=True, exist_ok=True)
    everything: dict[str, Any] = {mode: bench.runs for mode, bench in results.items()}
    everything["floor"] = floor_rows
    (args.out / "parallel_deploy.json").write_text(json.dumps(everything, indent=2) + "\n", encoding="utf-8")
    try:
        last = results["proxy"].runs[-1]
        timeline(last["sequential"], last["parallel"], args.out / "parallel_deploy.png")
        print(f"\ntimeline (proxy): {args.out / 'parallel_deploy.png'}")
    except ImportError:
        print("\nmatplotlib missing: pip install matplotlib for the timeline", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

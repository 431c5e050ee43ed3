"""Benchmark `wfgen deploy` on the swarm lab (tests/support/swarm.py): a fleet of N services x R replicas,
sequential (--max-parallel 1) against parallel in one run, with the seconds each phase of a leg took (from
the legs' own status files); how long Swarm takes to detect a bad update and roll it back, against the
health deadline; and how long `wfgen plan` and `wfgen status` take on the swarm.

Every deploy is a real update: each service gets a new commit first. Needs root, iproute2, docker.io,
docker-registry, busybox-static and Debian's caddy. Run from the repository root:

    python benchmarks/swarm_fleet.py --services 6 --replicas 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from tests.support.fixture_service import ServiceRepo, make_service_repo  # noqa: E402
from tests.support.manifests import toml_table  # noqa: E402
from tests.support.swarm import WEB_PORT, Swarm, SwarmUnavailable  # noqa: E402

PROJECT = "bench"
BASE_PORT = 8081
HEALTH = {"interval_s": 1, "timeout_s": 2, "deadline_s": 15}
HEALTH_COMMAND = ["/bin/busybox", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{WEB_PORT}/health"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=6, help="services in the fleet (default 6)")
    parser.add_argument("--replicas", type=int, default=2, help="replicas of each (default 2)")
    parser.add_argument("--reps", type=int, default=1, help="sequential + parallel pairs (default 1)")
    parser.add_argument("--delay", type=float, default=3.0, help="seconds a task takes to serve (default 3)")
    parser.add_argument("--reads", type=int, default=3, help="timed runs of plan and of status (default 3)")
    return parser.parse_args(argv)


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Bench:
    """services.toml for the fleet on the lab's swarm, a git repo per service, and `wfgen` runs on it."""

    def __init__(self, root: Path, swarm: Swarm, args: argparse.Namespace) -> None:
        self.root, self.swarm = root, swarm
        self.repos: dict[str, ServiceRepo] = {}
        for index in range(args.services):
            name = f"svc-{index}"
            self.repos[name] = make_service_repo(root / "repos", name, port=WEB_PORT, delay_s=args.delay)
        self.write_manifest(args)
        path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        self.env = {**os.environ, "DOCKER_HOST": swarm.manager_host, "PYTHONPATH": path}

    def write_manifest(self, args: argparse.Namespace) -> None:
        sections = [
            toml_table("project", {"name": PROJECT, "branches": ["main"], "max_parallel": args.services,
                                   "deploy_timeout_minutes": 10}),
            toml_table("target", {"kind": "swarm", "manager": "local",
                                  "state_dir": str(self.root / "state")}),
            toml_table("proxy", {"image": self.swarm.images["caddy"], "drain_s": 2}),
            toml_table("build", {"where": "runner", "registry": f"{self.swarm.registry}/wfgen"}),
        ]  # fmt: skip
        for index, (name, repo) in enumerate(self.repos.items()):
            service = {
                "repository": repo.url, "port": BASE_PORT + index, "container_port": WEB_PORT,
                "replicas": args.replicas, "placement": ["node.role == worker"],
                "health": {**HEALTH, "command": HEALTH_COMMAND},
            }  # fmt: skip
            sections.append(toml_table(f"services.{name}", service))
        text = "\n\n".join("\n".join(section) for section in sections) + "\n"
        (self.root / "services.toml").write_text(text, encoding="utf-8")

    def wfgen(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "generator", *args], cwd=self.root, env=self.env, capture_output=True,
            text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def deploy(self, services: str, *extra: str, expect: int = 0) -> dict[str, Any]:
        """`wfgen deploy SERVICES main --json`: its JSON result plus each leg's status file."""
        done = self.wfgen("deploy", services, "main", "--json", *extra)
        if done.returncode != expect:
            raise SystemExit(f"deploy {services} exited {done.returncode}, expected {expect}:\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")  # fmt: skip
        result: dict[str, Any] = json.loads(done.stdout)
        legs = result["services"].items()
        result["statuses"] = {name: json.loads(Path(item["status_path"]).read_text()) for name, item in legs}
        return result

    def new_commits(self, marker: str) -> None:
        for name, repo in self.repos.items():
            repo.write_marker(f"{name} {marker}")


def phase_seconds(result: dict[str, Any]) -> dict[str, float]:
    """Mean seconds per phase across the legs of one run, phases in the order they first appear."""
    spent: dict[str, list[float]] = {}
    for status in result["statuses"].values():
        marks = [(mark["phase"], at(mark["at"])) for mark in status["phases"]]
        marks.append(("end", at(status["finished_at"])))
        for (phase, start), (_, end) in zip(marks, marks[1:], strict=False):
            spent.setdefault(phase, []).append(end - start)
    return {phase: statistics.mean(values) for phase, values in spent.items()}


def print_fleet(runs: list[tuple[dict[str, Any], dict[str, Any]]], args: argparse.Namespace) -> None:
    print(f"\n{args.services} services x {args.replicas} replicas, wall seconds of the deploy stage:")
    print("| rep | sequential | parallel | speedup | sum of legs (par) | slowest leg (par) |")
    print("| --: | ---------: | -------: | ------: | ----------------: | ----------------: |")
    for index, (seq, par) in enumerate(runs, start=1):
        slowest = max(item["duration_s"] for item in par["services"].values())
        print(f"| {index:>3} | {seq['deploy_wall_s']:>10.2f} | {par['deploy_wall_s']:>8.2f} "
              f"| {seq['deploy_wall_s'] / par['deploy_wall_s']:>6.2f}x | {par['sum_s']:>17.2f} "
              f"| {slowest:>17.2f} |")  # fmt: skip
    seq, par = runs[-1]
    columns = {"sequential": phase_seconds(seq), "parallel": phase_seconds(par)}
    phases = [p for p in dict.fromkeys([*columns["sequential"], *columns["parallel"]]) if p != "done"]
    print("\nmean seconds per phase per leg (last rep), and parallel / sequential:")
    print("| phase      | sequential | parallel | ratio |")
    print("| ---------- | ---------: | -------: | ----: |")
    for phase in phases:
        one, many = columns["sequential"].get(phase, 0.0), columns["parallel"].get(phase, 0.0)
        ratio = f"{many / one:.2f}" if one else "-"
        print(f"| {phase:<10} | {one:>10.2f} | {many:>8.2f} | {ratio:>5} |")


def bad_update(bench: Bench) -> dict[str, float]:
    """svc-0 on a version that never gets healthy: seconds from the switch to Swarm's rollback, and to the
    leg's end (the old version serving again)."""
    bench.repos["svc-0"].commit_variant("broken_health")
    result = bench.deploy("svc-0", expect=1)
    status = result["statuses"]["svc-0"]
    if status["result"] != "rolled_back":
        raise SystemExit(f"the bad update ended {status['result']}: {status.get('message')}")
    marks = {mark["phase"]: at(mark["at"]) for mark in status["phases"]}
    bench.repos["svc-0"].commit_variant("ok")
    return {
        "detected": marks["rollback"] - marks["switch"],
        "rolled back": at(status["finished_at"]) - marks["switch"],
    }


READS = {
    "wfgen plan all main": ("plan", "all", "main"),
    "wfgen status": ("status",),
    "wfgen validate": ("validate",),  # the floor: the same start and manifest read, no swarm
}


def timed_reads(bench: Bench, count: int) -> dict[str, list[float]]:
    """Wall seconds of `wfgen plan all main` and `wfgen status` as CLI runs (Python's start included)."""
    found: dict[str, list[float]] = {name: [] for name in READS}
    for _ in range(count):
        for name, argv in READS.items():
            started = time.monotonic()
            done = bench.wfgen(*argv, timeout=120)
            found[name].append(time.monotonic() - started)
            if done.returncode not in (0, 1):  # status exits 1 when a health probe cannot reach a service
                raise SystemExit(f"{name} exited {done.returncode}: {done.stderr[-2000:]}")
    return found


def print_rest(bad: dict[str, float], reads: dict[str, list[float]]) -> None:
    interval, deadline = HEALTH["interval_s"], HEALTH["deadline_s"]
    print(f"\nbad update of svc-0 (health: interval {interval} s, deadline {deadline} s):")
    print("| figure                                      | seconds |")
    print("| ------------------------------------------- | ------: |")
    print(f"| switch -> Swarm reports the rollback        | {bad['detected']:>7.1f} |")
    print(f"| switch -> previous version serves (leg end) | {bad['rolled back']:>7.1f} |")
    print(f"| health deadline                             | {deadline:>7.1f} |")
    print("\nreads on the swarm, whole CLI runs (goal <= 2 s each for plan and status):")
    print("| command             | median |    min |    max |")
    print("| ------------------- | -----: | -----: | -----: |")
    for name, values in reads.items():
        median, low, high = statistics.median(values), min(values), max(values)
        print(f"| {name:<19} | {median:>6.2f} | {low:>6.2f} | {high:>6.2f} |")


def run(swarm: Swarm, root: Path, args: argparse.Namespace) -> None:
    bench = Bench(root, swarm, args)
    cold = bench.deploy("all")
    print(f"cold deploy (builds, pushes, creates every service): {cold['deploy_wall_s']:.2f} s", flush=True)
    runs = []
    for rep in range(args.reps):
        bench.new_commits(f"seq {rep}")
        seq = bench.deploy("all", "--max-parallel", "1")
        bench.new_commits(f"par {rep}")
        par = bench.deploy("all")
        runs.append((seq, par))
        walls = f"sequential {seq['deploy_wall_s']:.2f} s, parallel {par['deploy_wall_s']:.2f} s"
        print(f"rep {rep + 1}: {walls}", flush=True)
    reads = timed_reads(bench, args.reads)
    bad = bad_update(bench)
    print(f"\nswarm lab ({len(swarm.nodes)} nodes) formed in seconds: {swarm.timings}")
    print_fleet(runs, args)
    print_rest(bad, reads)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        swarm = Swarm().start()
    except SwarmUnavailable as exc:
        print(f"the swarm lab cannot start: {exc}", file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="wfgen-swarm-bench-") as tmp:
            run(swarm, Path(tmp), args)
    finally:
        swarm.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

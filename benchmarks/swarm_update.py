"""Benchmark Docker Swarm's own health-gated updates in the swarm lab (tests/support/swarm.py): how long it
takes to form the swarm and push the images, how long a good start-first update and a rolled-back bad one
take, and how many requests fail through the global Caddy while they run.

Needs root, iproute2, docker.io, docker-registry, busybox-static and Debian's caddy. Run from the repository
root:

    python benchmarks/swarm_update.py --reps 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.swarm import Swarm, SwarmUnavailable  # noqa: E402
from tests.support.swarm_services import (  # noqa: E402
    PROXY,
    WEB,
    LoadInNetns,
    deploy_lab_services,
    running,
    settled,
    update,
    wait_for,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=3, help="good and bad updates to time (default 3)")
    parser.add_argument("--nodes", type=int, default=3, help="swarm nodes, the first the manager (default 3)")
    return parser.parse_args(argv)


def row(name: str, values: list[float]) -> str:
    return f"| {name:<36} | {statistics.median(values):>7.1f} | {min(values):>7.1f} | {max(values):>7.1f} |"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures: dict[str, list[float]] = {"good update": [], "bad update (rolled back)": []}
    requests = {"ok": 0, "failed": 0}
    try:
        swarm = Swarm(node_count=max(3, args.nodes)).start()
    except SwarmUnavailable as exc:
        print(f"the swarm lab cannot start: {exc}", file=sys.stderr)
        return 2
    try:
        deploy_lab_services(swarm, swarm.images["web-v1"])
        wait_for("web healthy", lambda: settled(swarm, WEB, swarm.images["web-v1"], 2), timeout=180)
        wait_for("the proxy on every node", lambda: len(running(swarm, PROXY)) == len(swarm.nodes))
        time.sleep(3)  # Caddy's first resolution of the service name
        current = "web-v1"
        for _ in range(max(1, args.reps)):
            for kind, image in (("good update", "web-v2" if current == "web-v1" else "web-v1"),
                                ("bad update (rolled back)", "web-broken")):  # fmt: skip
                load = LoadInNetns(swarm, verbose=False)
                state, seconds = update(swarm, WEB, swarm.images[image], timeout=300)
                result = load.stop()
                expected = "completed" if kind == "good update" else "rollback_completed"
                if state != expected:
                    raise SystemExit(f"{kind}: UpdateStatus.State {state!r}, expected {expected!r}")
                current = image if state == "completed" else current
                figures[kind].append(seconds)
                requests["ok"] += int(result["ok"])
                requests["failed"] += int(result["failed"])
    finally:
        swarm.close()
    print(f"\nswarm lab ({len(swarm.nodes)} nodes) formed in seconds: {swarm.timings}")
    print(f"updates of `web` (2 replicas, start-first, health interval 1s, monitor 3s), {args.reps} of each:")
    print("| figure                               |  median |     min |     max |")
    print("| ------------------------------------ | ------: | ------: | ------: |")
    for name, values in figures.items():
        print(row(f"{name} (s)", values))
    ok, failed = requests["ok"], requests["failed"]
    print(f"requests through Caddy on every node during the updates: {ok} ok, {failed} failed")
    print("goal: 0 failed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

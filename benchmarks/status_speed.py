"""Benchmark `wfgen status` on a deployed fleet of N services: over a real sshd on 127.0.0.1 (one `docker
inspect` of every live container, one image listing and one image inspect for the project, the audit log read
once, the health probes in one command) and against the local engine, side by side in one run.
Goal: at most 2 s for six services over ssh.

Needs a running Docker engine (DOCKER_HOST or WFGEN_TEST_DOCKER_HOST), git, busybox-static, Debian's caddy
and openssh-server (as the tests). Run from the repository root:

    python benchmarks/status_speed.py --services 6 --reps 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.caddy import benchmark_engine  # noqa: E402
from tests.support.docker import cleanup_project, unique_name  # noqa: E402
from tests.support.fleet import Fleet, make_fleet  # noqa: E402
from tests.support.manifests import toml_table  # noqa: E402
from tests.support.sshd import start_sshd  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=6, help="repository services (default 6)")
    parser.add_argument("--reps", type=int, default=5, help="timed runs per target (default 5)")
    return parser.parse_args(argv)


def timed_status(fleet: Fleet, env: dict[str, str]) -> float:
    start = time.monotonic()
    done = fleet.wfgen("status", "--json", timeout=120, **env)
    took = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"status failed (exit {done.returncode}): {done.stderr[-2000:]}")
    serving = {item["serving"] for item in json.loads(done.stdout)["services"]}
    if serving != {True}:
        raise SystemExit(f"expected every service serving: {done.stdout[-2000:]}")
    return took


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    docker_host = benchmark_engine()
    if docker_host is None:
        return 2
    project = unique_name("wfgb")
    times: dict[str, list[float]] = {"local engine": [], "ssh 127.0.0.1": []}
    with tempfile.TemporaryDirectory(prefix="wfgen-bench-") as tmp:
        sshd = start_sshd(Path(tmp) / "sshd", docker_host)
        try:
            names = {f"svc-{index}": {} for index in range(args.services)}
            fleet = make_fleet(Path(tmp) / "fleet", project, docker_host, names, max_parallel=args.services)
            deployed = fleet.wfgen("deploy", "all", "main", "--quiet", timeout=1800)
            if deployed.returncode != 0:
                raise SystemExit(f"deploy failed: {deployed.stdout[-2000:]}{deployed.stderr[-2000:]}")
            local_text = fleet.manifest.read_text(encoding="utf-8")
            remote = sshd.target_config(network=fleet.network, state_dir=str(fleet.state_dir))
            local = (
                f'[target]\nkind = "local"\nnetwork = "{fleet.network}"\nstate_dir = "{fleet.state_dir}"\n'
            )
            ssh_text = local_text.replace(local, "\n".join(toml_table("target", remote)) + "\n")
            for _ in range(args.reps):  # interleaved, so both see the same machine load
                fleet.manifest.write_text(local_text, encoding="utf-8")
                times["local engine"].append(timed_status(fleet, {}))
                fleet.manifest.write_text(ssh_text, encoding="utf-8")
                times["ssh 127.0.0.1"].append(timed_status(fleet, sshd.target_env()))
        finally:
            sshd.stop()
            cleanup_project(docker_host, project)
    print(f"\n`wfgen status` over {args.services} deployed services, whole process:")
    print(f"{'target':>14} {'median':>8} {'min':>8} {'max':>8}")
    for target, values in times.items():
        print(f"{target:>14} {statistics.median(values):>7.2f}s {min(values):>7.2f}s {max(values):>7.2f}s")
    print("goal: <= 2 s over ssh for six services")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

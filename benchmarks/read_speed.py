"""Benchmark the two commands that only read the target, on a deployed fleet of N repository services, over a
real sshd on 127.0.0.1 and against the local engine, side by side in one run. Goal: at most 2 s each for six
services over ssh.

- `wfgen plan all main`: branch heads read with `git ls-remote` on the target, one `docker inspect` of every
  container;
- `wfgen status`: one `docker inspect` of every live container, one image listing and one image inspect for
  the project, the audit log read once, the health probes in one command.

Needs a running Docker engine (DOCKER_HOST or WFGEN_TEST_DOCKER_HOST), git, busybox-static, Debian's caddy
and openssh-server (as the tests). Run from the repository root:

    python benchmarks/read_speed.py --services 6 --reps 5
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
    parser.add_argument("--reps", type=int, default=5, help="timed runs per command and target (default 5)")
    return parser.parse_args(argv)


def timed_plan(fleet: Fleet, env: dict[str, str]) -> float:
    start = time.monotonic()
    done = fleet.wfgen("plan", "all", "main", "--json", timeout=120, **env)
    took = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"plan failed (exit {done.returncode}): {done.stderr[-2000:]}")
    verdicts = {item["verdict"] for item in json.loads(done.stdout)["services"]}
    if verdicts != {"unchanged"}:
        raise SystemExit(f"expected every service unchanged, got {verdicts}")
    return took


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


COMMANDS = {"plan": timed_plan, "status": timed_status}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    docker_host = benchmark_engine()
    if docker_host is None:
        return 2
    project = unique_name("wfgb")
    targets = ("local engine", "ssh 127.0.0.1")
    times: dict[tuple[str, str], list[float]] = {(c, t): [] for c in COMMANDS for t in targets}
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
            settings = {targets[0]: (local_text, {}), targets[1]: (ssh_text, sshd.target_env())}
            for _ in range(args.reps):  # interleaved, so all see the same machine load
                for (command, target), values in times.items():
                    text, env = settings[target]
                    fleet.manifest.write_text(text, encoding="utf-8")
                    values.append(COMMANDS[command](fleet, env))
        finally:
            sshd.stop()
            cleanup_project(docker_host, project)
    print(f"\n`wfgen plan all main` and `wfgen status`, {args.services} deployed services, whole process:")
    print(f"{'command':>8} {'target':>14} {'median':>8} {'min':>8} {'max':>8}")
    for (command, target), values in times.items():
        low, mid, high = min(values), statistics.median(values), max(values)
        print(f"{command:>8} {target:>14} {mid:>7.2f}s {low:>7.2f}s {high:>7.2f}s")
    print("goal: <= 2 s over ssh for six services")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

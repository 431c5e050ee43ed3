"""Whole-process time of the quick `wfgen` commands: what pre-commit and a shell pay on every call.

Usage: python benchmarks/cli_startup.py [--runs 7]
Runs the `wfgen` script installed beside this Python (else `python -m generator`) on a copy of this
repository's services.toml and prints the median of each command against its goal, with a bare
`python -c pass` as the floor no command can go under.

Byte-code is cached (in a temporary folder) as for a pip-installed wheel, even under PYTHONDONTWRITEBYTECODE:
otherwise every run would also compile wfgen's sources, which no installed wfgen does.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOALS = {"--version": 0.12, "--help": 0.12, "validate": 0.25, "render": 0.3, "check": 0.3}


def wfgen_command() -> list[str]:
    script = Path(sys.executable).with_name("wfgen")
    return [str(script)] if script.exists() else [sys.executable, "-m", "generator"]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cached_bytecode(folder: Path) -> dict[str, str]:
    """The environment of every run: byte-code written once to `folder`, then read."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(folder)}


def timed(args: list[str], runs: int, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Medians of wall and CPU seconds; CPU time says more than wall on a machine others are using."""
    walls, cpus = [], []
    for _ in range(runs):
        start, cpu = time.perf_counter(), cpu_seconds()
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)
        walls.append(time.perf_counter() - start)
        cpus.append(cpu_seconds() - cpu)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    wfgen = wfgen_command()
    rows: list[tuple[str, tuple[float, float], float | None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copy(ROOT / "services.toml", folder / "services.toml")
        env = cached_bytecode(folder / "pycache")
        # The first runs compile byte-code and templates; the timed ones find both cached.
        for command in ("render", *GOALS):
            timed([*wfgen, command], 1, folder, env)
        rows.append(("python -c pass", timed([sys.executable, "-c", "pass"], args.runs, folder, env), None))
        for command, goal in GOALS.items():
            rows.append((f"wfgen {command}", timed([*wfgen, command], args.runs, folder, env), goal))
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"median of {args.runs} runs, whole process ({' '.join(Path(part).name for part in wfgen)}){load}")
    print(f"{'command':<16} {'wall':>8} {'cpu':>8} {'goal':>7}")
    for label, (wall, cpu), goal in rows:
        verdict = "" if goal is None else ("  ok" if wall <= goal else "  MISSED")
        goal_text = "" if goal is None else f"{goal:.2f}s"
        print(f"{label:<16} {wall:>7.3f}s {cpu:>7.3f}s {goal_text:>7}{verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

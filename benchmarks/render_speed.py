"""Whole-process time of `wfgen render` and `wfgen check` on the dogfood manifest and a 250-service one.

Usage: python benchmarks/render_speed.py [--runs 7]
Prints a table of medians; goals: render <= 0.5 s (dogfood) and <= 2 s (250 services).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def big_manifest(count: int) -> str:
    lines = ['[project]\nname = "fleet"\nbranches = ["main", "develop"]\nmax_parallel = 20\n']
    lines.append('[infrastructure]\nnetworks = ["fleet-network"]\nsecrets = ["JWT_SECRET"]\n')
    for index in range(count):
        lines.append(
            f'[services.svc-{index:03d}]\nrepository = "fleet/svc-{index:03d}"\nport = {10000 + index}\n'
            f'env = ["JWT_SECRET"]\n'
        )
    return "\n".join(lines)


def timed(args: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
        samples.append(time.perf_counter() - start)
        if done.returncode not in (0,):
            raise SystemExit(f"{' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return statistics.median(samples)


def measure(manifest: Path, runs: int) -> tuple[float, float]:
    wfgen = [sys.executable, "-m", "generator"]
    timed(
        [*wfgen, "render", "--manifest", str(manifest)], 1
    )  # first write; later runs measure the usual no-op
    render = timed([*wfgen, "render", "--manifest", str(manifest)], runs)
    check = timed([*wfgen, "check", "--manifest", str(manifest)], runs)
    return render, check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dogfood = Path(tmp, "dogfood", "services.toml")
        dogfood.parent.mkdir()
        shutil.copy(ROOT / "services.toml", dogfood)
        big = Path(tmp, "big", "services.toml")
        big.parent.mkdir()
        big.write_text(big_manifest(250), encoding="utf-8")
        for label, path, goal in (
            ("dogfood (6 services)", dogfood, 0.5),
            ("generated (250 services)", big, 2.0),
        ):
            render, check = measure(path, args.runs)
            rows.append((label, render, check, goal))
    print(f"median of {args.runs} runs, whole process (python -m generator)")
    print(f"{'manifest':<26} {'render':>9} {'check':>9} {'goal':>7}")
    for label, render, check, goal in rows:
        verdict = "ok" if max(render, check) <= goal else "MISSED"
        print(f"{label:<26} {render:>8.3f}s {check:>8.3f}s {goal:>6.1f}s  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

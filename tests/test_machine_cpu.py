"""The benchmarks' CPU figures (benchmarks/machine_cpu.py): busy seconds read from /proc/stat, and the time
all cores were busy at once, folded from samples."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from benchmarks.machine_cpu import SATURATED, CpuWatch, cpu_ticks, saturated_seconds

TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sum(index * index for index in range(10_000))


def test_ticks_are_of_every_core_since_boot() -> None:
    uptime = float(Path("/proc/uptime").read_text(encoding="ascii").split()[0])
    busy, total = cpu_ticks()
    assert 0 < busy < total <= uptime * (os.cpu_count() or 1) * 1.05 / TICK_S


def test_saturated_seconds_add_up_the_samples_with_every_core_busy() -> None:
    # (time, busy ticks, total ticks) of two cores at 100 ticks a second, sampled every 0.1 s
    samples = [(0.0, 0, 0), (0.1, 20, 20), (0.2, 30, 40), (0.3, 48, 60), (0.4, 48, 80), (0.5, 68, 100)]
    assert saturated_seconds(samples) == pytest.approx(0.3)  # 100 %, 90 % and 100 %; 50 % and 0 % are not
    assert SATURATED == 0.9
    assert saturated_seconds(samples[:1]) == 0.0
    assert saturated_seconds([(0.0, 5, 10), (0.1, 5, 10)]) == 0.0  # no tick between two samples


def test_a_watch_counts_what_ran_under_it() -> None:
    mine = time.process_time()
    with CpuWatch() as watch:
        spin(0.4)
    spent = time.process_time() - mine
    assert watch.busy_s >= spent - 2 * TICK_S
    assert len(watch.samples) >= 3
    assert 0.0 <= watch.saturated_s <= watch.samples[-1][0] - watch.samples[0][0]

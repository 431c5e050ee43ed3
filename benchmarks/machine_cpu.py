"""How busy this machine's cores are while a benchmark runs (Linux's /proc/stat): busy CPU-seconds, and how
long every core was busy at once, the time in which parallel work waits for a core rather than for Docker.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

SAMPLE_S = 0.1
SATURATED = 0.9  # a sample in which the cores were at least this busy counts as all of them busy


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot; (0, 0) where /proc/stat cannot be read."""
    try:
        fields = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()[1:]
    except OSError:
        return 0, 0
    user, nice, system, idle, iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    busy = user + nice + system + irq + softirq + steal  # guest time is counted in user and nice already
    return busy, busy + idle + iowait


def saturated_seconds(samples: Sequence[tuple[float, int, int]]) -> float:
    """Seconds between consecutive (monotonic time, busy ticks, total ticks) samples in which the cores were
    at least SATURATED busy."""
    seconds = 0.0
    for (start, busy0, total0), (end, busy1, total1) in zip(samples, samples[1:], strict=False):
        if total1 > total0 and (busy1 - busy0) / (total1 - total0) >= SATURATED:
            seconds += end - start
    return seconds


class CpuWatch:
    """`with CpuWatch() as watch:` samples the cores every SAMPLE_S; then `busy_s` and `saturated_s`."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> CpuWatch:
        self.samples.append((time.monotonic(), *cpu_ticks()))
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.samples.append((time.monotonic(), *cpu_ticks()))

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self.samples.append((time.monotonic(), *cpu_ticks()))

    @property
    def busy_s(self) -> float:
        return (self.samples[-1][1] - self.samples[0][1]) / os.sysconf("SC_CLK_TCK")

    @property
    def saturated_s(self) -> float:
        return saturated_seconds(sorted(self.samples))

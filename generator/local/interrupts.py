"""Ctrl-C and SIGTERM during `wfgen deploy`: recorded, never raised, so the run decides what each means."""

from __future__ import annotations

import signal
import time
from typing import Any


class Interrupts:
    """Records SIGINT/SIGTERM instead of raising; the main loop cancels on the first, kills on the second."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._saved[sig] = signal.signal(sig, self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()

    def _record(self, signum: int, frame: object) -> None:
        self.times.append(time.monotonic())

    @property
    def requested(self) -> bool:
        return bool(self.times)

    @property
    def kill_requested(self) -> bool:
        return len(self.times) >= 2

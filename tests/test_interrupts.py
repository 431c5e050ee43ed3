from __future__ import annotations

import os
import signal

from generator.local.interrupts import Interrupts


def test_interrupts_count_signals_and_restore_handlers() -> None:
    before = signal.getsignal(signal.SIGINT)
    with Interrupts() as interrupts:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupts.requested and not interrupts.kill_requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert interrupts.kill_requested
    assert signal.getsignal(signal.SIGINT) is before

"""Per-service deploy lock on the target: an atomic `mkdir <state_dir>/locks/<service>` with an `owner` file.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts. The lock lives on the deploy host, so
two runs (two workflow runs, or a workflow and a laptop) deploying the same service never interleave.
While held, a heartbeat thread touches the lock dir every HEARTBEAT_S: a lock is stale only when its mtime,
judged by the target's own clock, says nobody refreshed it for lock_stale_s (its holder died or is cut off).
A holder that ran on this very machine (same kernel boot, same pid namespace, same hostname) and is no longer
running is known dead at once: its lock is broken without waiting for lock_stale_s.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import steplib
from .holder import Holder, holder_name, host_identity, parse_holder, process_start, run_id

if TYPE_CHECKING:  # only annotations: `wfgen validate` reads this module's constants without the target code
    from .transport import Target

POLL_S = 1.0
HEARTBEAT_S = 5.0  # how often a held lock's mtime is refreshed
HEARTBEAT_TIMEOUT_S = 25.0  # one refresh may hang this long (a slow ssh round-trip) before the next is tried
# The shortest lock_stale_s that no live holder can miss: several refreshes in a row, each one hung.
MIN_STALE_S = 4 * (HEARTBEAT_S + HEARTBEAT_TIMEOUT_S)

# The lock's mtime in epoch seconds: GNU stat, else BSD/macOS stat, else 0 (age unknown: never judged stale).
_MTIME = '{ stat -c %Y -- "$d" 2>/dev/null || stat -f %m -- "$d" 2>/dev/null || echo 0; }'
# Try to take the lock; otherwise print the holder: "held", target clock, lock age source (mtime), owner JSON.
# A lock dir whose owner file cannot be written is removed again: nobody could ever release it by token.
_ACQUIRE = (
    'd=$1; mkdir -p -- "$(dirname -- "$d")" || exit 3; '
    'if mkdir -- "$d" 2>/dev/null; then printf "%s\\n" "$2" > "$d/owner.tmp" '
    '&& mv -f -- "$d/owner.tmp" "$d/owner" '
    '&& echo acquired && exit 0; rm -rf -- "$d"; exit 4; fi; '
    f"echo held; date +%s; {_MTIME}; "
    'cat -- "$d/owner" 2>/dev/null; exit 0'
)
# Break a stale lock only if it is still the one we judged stale (same mtime); the rename makes it one-winner.
_BREAK = f'd=$1; [ "$({_MTIME})" = "$2" ] || exit 1; mv -- "$d" "$3" 2>/dev/null || exit 1; rm -rf -- "$3"'
# Release only our own lock: someone may have broken it as stale and taken it since. owner.tmp counts too:
# an acquire cut short between mkdir and the rename of the owner file still left a lock that is ours.
_RELEASE = (
    'd=$1; [ -d "$d" ] || exit 2; grep -qsF -- "$2" "$d/owner" "$d/owner.tmp" || exit 1; '
    'mv -- "$d" "$3" 2>/dev/null || exit 1; rm -rf -- "$3"'
)
# Break the lock of a holder known dead, only while it is still that holder's (its token): move it aside,
# then look again at what was moved. Should a waiter beside us have broken it and taken the lock in between,
# what we moved is that waiter's live lock: it goes back (unless a third one took the place meanwhile).
_BREAK_DEAD = (
    'd=$1; grep -qsF -- "$2" "$d/owner" || exit 1; mv -- "$d" "$3" 2>/dev/null || exit 1; '
    'if grep -qsF -- "$2" "$3/owner"; then rm -rf -- "$3"; exit 0; fi; '
    '[ -e "$d" ] || mv -- "$3" "$d"; exit 1'
)
# Show the lock, if there is one (exit 2: none): "held", target clock, lock age source (mtime), owner JSON.
_SHOW = f'd=$1; [ -d "$d" ] || exit 2; echo held; date +%s; {_MTIME}; cat -- "$d/owner" 2>/dev/null; exit 0'
# Release whatever lock is there, by hand (`wfgen unlock`): only the one that was shown (its owner file).
_UNLOCK = (
    'd=$1; [ -d "$d" ] || exit 2; [ "$(cat -- "$d/owner" 2>/dev/null)" = "$2" ] || exit 1; '
    'mv -- "$d" "$3" 2>/dev/null || exit 1; rm -rf -- "$3"'
)
# Refresh the lock's mtime only while it is ours (exit 1 otherwise); -c never creates a lock that is gone.
_REFRESH = 'd=$1; grep -qsF -- "$2" "$d/owner" "$d/owner.tmp" || exit 1; touch -c -- "$d" || exit 3'


class LockTimeout(Exception):
    """The lock stayed taken for the whole wait."""


def lock_path(target: Target, state_dir: str, name: str) -> str:
    return target.home_path(f"{state_dir.rstrip('/')}/locks/{name}")


def read_holder(target: Target, state_dir: str, name: str) -> Holder | None:
    """Who holds the lock of `name` now; None when nobody does. OSError when the target cannot say."""
    path = lock_path(target, state_dir, name)
    result = target.run(["sh", "-c", _SHOW, "sh", path], timeout=60)
    lines = result.stdout.splitlines()
    if result.returncode == 2:
        return None
    if result.returncode != 0 or lines[:1] != ["held"]:
        problem = result.stderr.strip()[:200] or "no output"
        raise OSError(target.redact(f"cannot read lock {path}: {problem}"))
    return parse_holder(lines[1:])


def release_by_hand(target: Target, state_dir: str, name: str, holder: Holder) -> bool:
    """Remove the lock `holder` was read from; False when it is gone or another one took its place since."""
    path = lock_path(target, state_dir, name)
    grave = f"{path}.unlocked-{secrets.token_hex(8)}"
    return target.run(["sh", "-c", _UNLOCK, "sh", path, holder.text, grave], timeout=60).returncode == 0


class ServiceLock:
    """Take with acquire(); always release() in a finally block."""

    def __init__(self, target: Target, state_dir: str, service: str, heartbeat_s: float = HEARTBEAT_S):
        self.target = target
        self.service = service
        self.path = lock_path(target, state_dir, service)
        self.token = secrets.token_hex(8)
        self.held = False
        self.attempted = False
        self.heartbeat_s = heartbeat_s
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def owner_text(self) -> str:
        owner = {
            "holder": holder_name(),
            "host": socket.gethostname(),
            "host_id": host_identity(),
            "pid": os.getpid(),
            "pid_start": process_start(os.getpid()),
            "run_id": run_id(),
            "since": steplib.now_iso(),
            "token": self.token,
        }
        return json.dumps(owner, sort_keys=True)

    def try_acquire(self) -> Holder | None:
        """Take the lock now, or say who holds it."""
        self.attempted = True  # from here on a cancel may leave the lock dir behind: release() checks
        result = self.target.run(["sh", "-c", _ACQUIRE, "sh", self.path, self.owner_text()], timeout=60)
        lines = result.stdout.splitlines()
        if result.returncode == 0 and lines[:1] == ["acquired"]:
            self.held = True
            self._start_heartbeat()
            return None
        if result.returncode != 0 or lines[:1] != ["held"]:
            problem = result.stderr.strip()[:200] or "no output"
            raise OSError(self.target.redact(f"cannot create lock {self.path}: {problem}"))
        return parse_holder(lines[1:])

    def break_stale(self, holder: Holder) -> bool:
        grave = f"{self.path}.stale-{self.token}"
        argv = ["sh", "-c", _BREAK, "sh", self.path, holder.mtime, grave]
        return self.target.run(argv, timeout=60).returncode == 0

    def acquire(self, wait_s: float, stale_s: float, on_wait: Callable[[Holder], None]) -> None:
        """Poll until the lock is ours, breaking it when older than stale_s; LockTimeout after wait_s."""
        start = time.monotonic()
        announced = break_failed = dead_failed = False
        holder: Holder | None = None
        for _ in range(1_000_000):
            holder = self.try_acquire()
            if holder is None:
                return
            if holder.gone and not dead_failed:
                if self._break_dead(holder):
                    continue
                dead_failed = True
            if stale_s > 0 and holder.age_s > stale_s:
                if self._break(holder, quiet=break_failed):
                    continue
                break_failed = True
            if not announced:
                on_wait(holder)
                announced = True
            left = wait_s - (time.monotonic() - start)
            if left <= 0:
                break
            time.sleep(min(POLL_S, left))
        who = holder.describe() if holder else "another deploy"
        raise LockTimeout(f"locked by {who}; gave up after {wait_s:g} s")

    def _break(self, holder: Holder, quiet: bool) -> bool:
        """Break a stale lock; when that fails, say so once and let the caller wait like for a held lock."""
        if not quiet:
            age = f"{holder.age_s:.0f} s old"
            steplib.log(self.service, f"warning: breaking stale lock held by {holder.describe()} ({age})")
        if self.break_stale(holder):
            return True
        if not quiet:
            where = self.target.redact(self.path)
            steplib.log(self.service, f"warning: could not break the stale lock {where}; waiting instead")
        return False

    def _break_dead(self, holder: Holder) -> bool:
        """Break the lock of a holder that ran here and no longer runs; False when it is not that lock now."""
        token = holder.owner.get("token")
        if not isinstance(token, str) or not token:
            return False
        steplib.log(
            self.service,
            f"warning: breaking the lock of pid {holder.pid} on this host, which is no longer running "
            f"(held since {holder.since})",
        )
        grave = f"{self.path}.dead-{self.token}"
        argv = ["sh", "-c", _BREAK_DEAD, "sh", self.path, token, grave]
        return self.target.run(argv, timeout=60).returncode == 0

    def _start_heartbeat(self) -> None:
        # A daemon thread: it dies with this process, so a killed deploy's lock goes stale after lock_stale_s.
        self._stop.clear()
        self._heartbeat = threading.Thread(
            target=self._refresh_until_stopped, name="lock-heartbeat", daemon=True
        )
        self._heartbeat.start()

    def _refresh_until_stopped(self) -> None:
        argv = ["sh", "-c", _REFRESH, "sh", self.path, self.token]
        while not self._stop.wait(self.heartbeat_s):
            try:
                result = self.target.run(argv, timeout=HEARTBEAT_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - a lost connection: the next refresh tries again
                continue
            if result.returncode == 1:
                steplib.log(self.service, "warning: the lock is no longer ours (broken as stale?)")
                return

    def _stop_heartbeat(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=1)  # a refresh still running cannot touch a released lock (touch -c)
            self._heartbeat = None

    def release(self) -> None:
        """Remove the lock if it is ours, also after an acquire that was cut short before it reported back."""
        self._stop_heartbeat()
        if not self.attempted:
            return
        grave = f"{self.path}.released-{self.token}"
        result = self.target.run(["sh", "-c", _RELEASE, "sh", self.path, self.token, grave], timeout=60)
        was_held, self.held, self.attempted = self.held, False, False
        if was_held and result.returncode != 0:
            steplib.log(self.service, "warning: the lock was no longer ours at release (broken as stale?)")

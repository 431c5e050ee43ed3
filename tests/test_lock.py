"""generator/steps/core/lock.py against a real shell (and a real sshd): take, wait, break, release.

Acquires that could hang or need a signal run in a fresh `python -I -S` child with a timeout, so a regression
fails the test instead of stalling the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generator.steps.core import holder as holders
from generator.steps.core import lock, transport
from generator.steps.core import target as targets
from tests.support.manifests import target_view
from tests.support.sshd import SshServer
from tests.support.stepscripts import PACKAGE_ROOT, step_env

SERVICE = "svc"

# argv: the folder holding generator/, state dir, wait_s, stale_s, cancel after s (0: never), block the stale break (0/1).
DRIVER = """
import signal, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from generator.steps.core import lock, transport

class Cancelled(BaseException):
    pass

def cancel(*_):
    raise Cancelled()

state, wait_s, stale_s, cancel_s, block = sys.argv[2], *map(float, sys.argv[3:6]), sys.argv[6] == "1"
held = lock.ServiceLock(transport.LocalTarget(), state, "svc")
if block:  # a file where the stale lock would be moved to: the real `mv` then fails
    Path(f"{held.path}.stale-{held.token}").write_text("in the way\\n")
signal.signal(signal.SIGALRM, cancel)
started = time.monotonic()
try:
    if cancel_s:
        signal.setitimer(signal.ITIMER_REAL, cancel_s)
    held.acquire(wait_s, stale_s, lambda holder: print("waiting for", holder.describe(), flush=True))
    signal.setitimer(signal.ITIMER_REAL, 0)
    print("result: acquired", flush=True)
except Cancelled:
    print("result: cancelled", flush=True)
except lock.LockTimeout as exc:
    print("result: timeout", exc, flush=True)
except OSError as exc:
    print("result: oserror", exc, flush=True)
finally:
    held.release()
    print(f"elapsed: {time.monotonic() - started:.2f}", flush=True)
"""


def run_driver(
    state: Path,
    *,
    wait_s: float = 2,
    stale_s: float = 0,
    cancel_s: float = 0,
    block_break: bool = False,
    path_dir: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    env = step_env()
    if path_dir is not None:
        env["PATH"] = f"{path_dir}{os.pathsep}{env.get('PATH', os.defpath)}"
    args = [
        str(PACKAGE_ROOT),
        str(state),
        str(wait_s),
        str(stale_s),
        str(cancel_s),
        "1" if block_break else "0",
    ]
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", DRIVER, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def result_line(proc: subprocess.CompletedProcess[str]) -> str:
    return next(line for line in proc.stdout.splitlines() if line.startswith("result: "))


def elapsed(proc: subprocess.CompletedProcess[str]) -> float:
    return float(next(line for line in proc.stdout.splitlines() if line.startswith("elapsed: ")).split()[1])


def make_lock(state: Path, *, age_s: float = 0, holder: str = "ghost", host: str = "gone") -> Path:
    """Somebody else's lock dir, with its owner file, `age_s` seconds old."""
    path = state / "locks" / SERVICE
    path.mkdir(parents=True)
    owner = {"holder": holder, "host": host, "since": "2020-01-01T00:00:00.000Z", "token": "f" * 16}
    (path / "owner").write_text(json.dumps(owner) + "\n")
    if age_s:
        old = time.time() - age_s
        os.utime(path, (old, old))
    return path


def tool_dir(tmp_path: Path, name: str, script: str) -> Path:
    """A directory to put first on PATH holding one shell script `name` (a system tool that behaves otherwise)."""
    directory = tmp_path / f"bin-{name}"
    directory.mkdir()
    path = directory / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return directory


def test_waiter_times_out_and_its_release_leaves_the_holders_lock(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with transport.LocalTarget() as local:
        first = lock.ServiceLock(local, str(state), SERVICE)
        first.acquire(1, 0, lambda holder: pytest.fail("the free lock made us wait"))
        owner = json.loads((state / "locks" / SERVICE / "owner").read_text())
        assert owner["token"] == first.token
        second = lock.ServiceLock(local, str(state), SERVICE)
        seen: list[str] = []
        started = time.monotonic()
        with pytest.raises(lock.LockTimeout, match=r"; gave up after 1\.5 s$"):
            second.acquire(1.5, 0, lambda holder: seen.append(holder.describe()))
        assert time.monotonic() - started >= 1.5
        assert len(seen) == 1 and seen[0].startswith(f"{owner['holder']}@{owner['host']} since ")
        second.release()
        assert json.loads((state / "locks" / SERVICE / "owner").read_text())["token"] == first.token
        first.release()
    assert list((state / "locks").iterdir()) == []


def mtime_age(path: Path) -> float:
    return time.time() - path.stat().st_mtime


def test_a_held_lock_is_kept_fresh_so_no_waiter_breaks_it(tmp_path: Path) -> None:
    """A deploy running longer than lock_stale_s, or a lock whose mtime jumped back, stays its holder's."""
    state = tmp_path / "state"
    path = state / "locks" / SERVICE
    with transport.LocalTarget() as local:
        # A heartbeat of 0.5 s, not the 5 s default: the same refresh, ten times sooner.
        holder = lock.ServiceLock(local, str(state), SERVICE, heartbeat_s=0.5)
        holder.acquire(1, 0, lambda holder: pytest.fail("the free lock made us wait"))
        old = time.time() - 7200
        os.utime(path, (old, old))
        for _ in range(int(4 * holder.heartbeat_s / 0.1)):  # the next refresh is due within heartbeat_s
            if mtime_age(path) < 60:
                break
            time.sleep(0.1)
        assert mtime_age(path) < 60, "the holder never refreshed its lock"
        proc = run_driver(state, wait_s=2, stale_s=60)
        assert result_line(proc).startswith("result: timeout locked by "), proc.stdout + proc.stderr
        assert "breaking stale lock" not in proc.stdout
        assert json.loads((path / "owner").read_text())["token"] == holder.token
        holder.release()
    assert not path.exists()


def test_a_holder_never_refreshes_a_lock_that_is_no_longer_its_own(tmp_path: Path) -> None:
    """Broken as stale and taken by another: the old holder's heartbeat leaves the new lock to age."""
    state = tmp_path / "state"
    with transport.LocalTarget() as local:
        holder = lock.ServiceLock(local, str(state), SERVICE, heartbeat_s=0.1)
        holder.acquire(1, 0, lambda holder: pytest.fail("the free lock made us wait"))
        shutil.rmtree(state / "locks" / SERVICE)
        other = make_lock(state, age_s=7200)
        time.sleep(1)  # ten refresh periods
        assert mtime_age(other) > 7000
        holder.release()
    assert json.loads((other / "owner").read_text())["token"] == "f" * 16


def test_a_stale_lock_that_cannot_be_broken_is_waited_for_not_spun_on(tmp_path: Path) -> None:
    state = tmp_path / "state"
    held = make_lock(state, age_s=7200)
    proc = run_driver(state, wait_s=2, stale_s=60, block_break=True)
    line = result_line(proc)
    assert line.startswith("result: timeout locked by ghost@gone since "), proc.stdout + proc.stderr
    assert line.endswith("; gave up after 2 s")
    assert 2 <= elapsed(proc) < 10
    assert proc.stdout.count("warning: breaking stale lock held by ghost@gone") == 1
    assert proc.stdout.count(f"warning: could not break the stale lock {held}; waiting instead") == 1
    assert (held / "owner").exists()


def test_cancel_between_mkdir_and_the_reply_leaves_no_lock(tmp_path: Path) -> None:
    """The acquire is cut short while the target is still writing the owner file: release() cleans up."""
    state = tmp_path / "state"
    (state / "locks").mkdir(parents=True)
    slow_mv = tool_dir(tmp_path, "mv", 'sleep 1.5\nexec /bin/mv "$@"\n')
    proc = run_driver(state, wait_s=5, cancel_s=0.5, path_dir=slow_mv)
    assert result_line(proc) == "result: cancelled", proc.stdout + proc.stderr
    time.sleep(2)  # the acquire's own mv, orphaned by the cancel, finishes meanwhile
    assert list((state / "locks").iterdir()) == []


def test_owner_file_that_cannot_be_written_leaves_no_lock(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "locks").mkdir(parents=True)
    refusing_mv = tool_dir(tmp_path, "mv", 'echo "mv: cannot move: Operation not permitted" >&2\nexit 1\n')
    proc = run_driver(state, wait_s=2, path_dir=refusing_mv)
    assert result_line(proc).startswith(f"result: oserror cannot create lock {state}/locks/{SERVICE}: ")
    assert list((state / "locks").iterdir()) == []


BSD_STAT = """\
# stat with only the BSD/macOS flags: -f FORMAT, where %m is the mtime in epoch seconds.
if [ "$1" != "-f" ]; then echo "stat: illegal option -- ${1#-}" >&2; exit 1; fi
[ "$2" = "%m" ] || { echo "stat: only %m here" >&2; exit 1; }
shift 2
[ "$1" = "--" ] && shift
exec /usr/bin/stat -c %Y -- "$@"
"""


def test_stale_lock_is_broken_on_a_target_with_bsd_stat(tmp_path: Path) -> None:
    state = tmp_path / "state"
    held = make_lock(state, age_s=7200)
    proc = run_driver(state, wait_s=3, stale_s=60, path_dir=tool_dir(tmp_path, "stat", BSD_STAT))
    assert result_line(proc) == "result: acquired", proc.stdout + proc.stderr
    assert "warning: breaking stale lock held by ghost@gone since " in proc.stdout
    assert not held.exists()


def test_lock_errors_name_the_ssh_user_by_variable(tmp_path: Path, sshd: SshServer) -> None:
    blocker = tmp_path / f"{sshd.user}-home"
    blocker.write_text("a file where the state dir's parent should be\n")
    with targets.open_target(target_view(sshd.target_config()), sshd.target_env()) as remote:
        service_lock = lock.ServiceLock(remote, str(blocker / "state"), SERVICE)
        with pytest.raises(OSError, match="^cannot create lock ") as caught:
            service_lock.acquire(1, 0, lambda holder: None)
        service_lock.release()
    assert "$VPS_USER-home/state/locks/svc" in str(caught.value)
    assert sshd.user not in str(caught.value)


# argv: the folder holding generator/, state dir. Takes the lock, says so, then sleeps until killed.
HOLDER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from generator.steps.core import lock, transport

held = lock.ServiceLock(transport.LocalTarget(), sys.argv[2], "svc")
held.acquire(5, 0, lambda holder: None)
print("held", flush=True)
time.sleep(120)
"""


def start_holder(state: Path) -> subprocess.Popen[str]:
    """A process holding the lock of SERVICE (the owner file names it), until it is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", HOLDER, str(PACKAGE_ROOT), str(state)],
        env=step_env(),
        stdout=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_the_lock_of_a_killed_holder_on_this_host_is_broken_at_once(tmp_path: Path) -> None:
    """`kill -9`: no release, no heartbeat; the next deploy on this machine sees the pid gone, not 300 s."""
    state = tmp_path / "state"
    holder = start_holder(state)
    owner = json.loads((state / "locks" / SERVICE / "owner").read_text())
    assert owner["pid"] == holder.pid and owner["host_id"] == holders.host_identity()
    holder.kill()
    holder.wait()
    proc = run_driver(state, wait_s=10, stale_s=300)
    assert result_line(proc) == "result: acquired", proc.stdout + proc.stderr
    assert elapsed(proc) < 3
    since = holders._local_clock(owner["since"])
    warning = f"svc: warning: breaking the lock of pid {holder.pid} on this host, which is no longer running "
    assert f"{warning}(held since {since})" in proc.stdout
    assert "waiting for" not in proc.stdout


def test_the_lock_of_a_live_holder_on_this_host_is_kept(tmp_path: Path) -> None:
    state = tmp_path / "state"
    holder = start_holder(state)
    try:
        proc = run_driver(state, wait_s=2, stale_s=300)
        assert result_line(proc).startswith("result: timeout locked by "), proc.stdout + proc.stderr
        assert "breaking" not in proc.stdout
    finally:
        holder.kill()
        holder.wait()


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def owned_lock(state: Path, **owner: object) -> Path:
    """A lock whose owner file says `owner` (over a holder on this host, running as this test process)."""
    path = make_lock(state)
    here = {
        "holder": "ghost",
        "host": socket.gethostname(),
        "host_id": holders.host_identity(),
        "pid": os.getpid(),
        "pid_start": holders.process_start(os.getpid()),
        "since": "2020-01-01T00:00:00.000Z",
        "token": "f" * 16,
    }
    (path / "owner").write_text(json.dumps({**here, **owner}) + "\n")
    return path


@pytest.mark.parametrize(
    ("owner", "broken"),
    [
        ({}, False),  # this very process: running
        ({"pid_start": "1"}, True),  # its pid taken by a process that started at another time
        ({"pid": "dead"}, True),  # a pid that no longer runs
        ({"pid": "dead", "host_id": "another-boot pid:[1]"}, False),  # another machine, container or boot
        ({"pid": "dead", "host": "elsewhere"}, False),
        ({"pid": "dead", "host_id": None}, False),  # a holder that could not tell (no /proc)
        ({"pid": "dead", "pid_start": None}, False),
    ],
)
def test_only_a_holder_proven_gone_from_this_host_loses_its_lock(
    tmp_path: Path, owner: dict[str, object], broken: bool
) -> None:
    state = tmp_path / "state"
    if owner.get("pid") == "dead":
        owner = {**owner, "pid": dead_pid()}
    path = owned_lock(state, **owner)
    proc = run_driver(state, wait_s=1, stale_s=300)
    if broken:
        assert result_line(proc) == "result: acquired", proc.stdout + proc.stderr
        assert "svc: warning: breaking the lock of pid " in proc.stdout
    else:
        assert result_line(proc).startswith("result: timeout locked by ghost@"), proc.stdout + proc.stderr
        assert "breaking" not in proc.stdout
        assert json.loads((path / "owner").read_text())["token"] == "f" * 16


def test_a_dead_holders_lock_taken_by_another_meanwhile_is_left_alone(tmp_path: Path) -> None:
    """The lock judged dead was broken and taken by a waiter beside us before our break: theirs stays."""
    state = tmp_path / "state"
    path = owned_lock(state, pid=dead_pid())
    with transport.LocalTarget() as local:
        waiter = lock.ServiceLock(local, str(state), SERVICE)
        holder = waiter.try_acquire()
        assert holder is not None and holder.gone
        shutil.rmtree(path)
        other = lock.ServiceLock(local, str(state), SERVICE)
        other.acquire(1, 0, lambda holder: pytest.fail("the free lock made us wait"))
        assert not waiter._break_dead(holder)
        assert json.loads((path / "owner").read_text())["token"] == other.token
        other.release()

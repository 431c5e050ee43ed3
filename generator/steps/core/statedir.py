"""The state folder on the target (`target.state_dir`): env-files, the audit log, locks and the proxy's admin
socket live there, so nobody but the deploying user may write to it or to a folder on the way to it.

A deploy leg calls `ensure` before anything is written there: it creates the folder with mode 0700 (umask 077,
so the folders `mkdir -p` makes on the way are 0700 too) and refuses, in one line, a folder that another user
owns or that group or others can write to, and a folder on the way that another user than root owns or that
others can write to (a sticky one of root's, such as /tmp, excepted: nobody else can rename what is in it).

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from .transport import Target

# The folder, then each folder on the way to it, one `ls -ldnL` line each (POSIX: mode, links, uid, ...).
_SCRIPT = 'umask 077 && mkdir -p -- "$1" && id -u && for p; do ls -ldnL -- "$p" || exit 3; done'


class UnsafeStateDir(Exception):
    """The state folder cannot be trusted with secrets; one line."""


def on_the_way(state_dir: str) -> list[str]:
    """The state folder and the folders above it wfgen checks, as written (relative: under the home)."""
    path = PurePosixPath(state_dir.removeprefix("~/") if state_dir != "~" else ".")
    chain = [path, *path.parents]
    return [str(item) for item in chain if str(item) not in (".", "/")]


def ensure(target: Target, state_dir: str) -> None:
    """Create the state folder (0700) if missing; UnsafeStateDir when it or a folder on the way is unsafe."""
    shown = on_the_way(state_dir)
    if not shown:
        return
    paths = [target.home_path(item) for item in shown]
    result = target.run(["sh", "-c", _SCRIPT, "sh", *paths], timeout=60)
    lines = result.stdout.splitlines()
    if result.returncode != 0 or len(lines) != len(paths) + 1 or not lines[0].strip().isdigit():
        why = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        raise UnsafeStateDir(f"state folder {state_dir}: cannot create or inspect it: {target.redact(why)}")
    me = int(lines[0])
    for index, (name, line) in enumerate(zip(shown, lines[1:], strict=True)):
        problem = judge(line, me, own=index == 0)
        if problem:
            where = "" if index == 0 else f": {name} on the way to it"
            raise UnsafeStateDir(f"state folder {state_dir}{where} {problem}; wfgen keeps env-files there")


def judge(line: str, me: int, *, own: bool) -> str | None:
    """Why one `ls -ldnL` line shows a folder wfgen must not use; None when it is safe."""
    fields = line.split()
    if len(fields) < 3 or not fields[2].isdigit() or len(fields[0]) < 10:
        return f"cannot be read from 'ls -ldn' ({line[:40]!r})"
    mode, uid = fields[0], int(fields[2])
    if mode[0] != "d":
        return "is not a folder"
    writable = mode[5] == "w" or mode[8] == "w"
    if own:
        if uid != me:
            return f"is owned by uid {uid}, not by the deploying user (uid {me})"
        if writable:
            return f"is writable by group or others ({mode[:10]}): run 'chmod 700' on it"
        return None
    if uid not in (me, 0):
        return f"is owned by uid {uid}, neither the deploying user (uid {me}) nor root"
    sticky = mode[9] in "tT" and uid == 0
    if writable and not sticky:
        return f"is writable by group or others ({mode[:10]})"
    return None

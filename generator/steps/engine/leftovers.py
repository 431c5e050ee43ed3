"""What killed deploys leave behind, removed by the next deploy of the same service once it holds the lock.

A SIGKILL skips every `finally`: the target keeps env-files (secrets), registry logins and clones, the runner
keeps the temporary dir with the SSH key. Holding a service's lock means no other deploy of it runs, so its
env-files and logins on the target are leftovers; clones go only once older than any live deploy could be.
On the runner, temporary dirs carry the pid of the process that made them and go once it is gone.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from ..core.transport import Target

_TOKEN_GLOB = "[0-9a-f]" * 12  # what scratch_name() appends, as a find -name pattern
_RUNNER_DIR = re.compile(r"^wfgen-[a-z]+-([0-9]{1,9})-")  # runner_prefix(); a pid fits in 9 digits

# $1 state dir, $2 service, $3 token pattern, $4 minutes a clone must be older than; prints what it removes.
# An env-file cut short while being written is `.<name>.env.*` (local) or `<name>.env.wfgen-tmp` (ssh).
_SWEEP = (
    "s=$1; n=$2-$3; "
    'if [ -d "$s/env" ]; then find "$s/env" -mindepth 1 -maxdepth 1 -type f '
    '\\( -name "$n.env*" -o -name ".$n.env.*" \\) -print -exec rm -f -- {} +; fi; '
    'if [ -d "$s/docker-config" ]; then find "$s/docker-config" -mindepth 1 -maxdepth 1 -name "$n" '
    "-print -exec rm -rf -- {} +; fi; "
    'if [ -d "$s/src" ]; then find "$s/src" -mindepth 1 -maxdepth 1 -name "$n" -mmin "+$4" '
    "-print -exec rm -rf -- {} +; fi; "
    "exit 0"
)


def sweep_target(target: Target, state_dir: str, service: str, older_than_min: int) -> int:
    """Remove the service's env-files and logins, and its clones older than `older_than_min`; how many."""
    root = target.home_path(state_dir.rstrip("/"))
    argv = ["sh", "-c", _SWEEP, "sh", root, service, _TOKEN_GLOB, str(older_than_min)]
    result = target.run(argv, timeout=120, check=True)
    return len(result.stdout.splitlines())


def sweep_runner(tmp_dir: str | None = None) -> int:
    """Remove this user's temporary wfgen dirs whose process is gone; how many."""
    root = Path(tmp_dir or tempfile.gettempdir())
    try:
        entries = list(root.iterdir())
    except OSError:
        return 0
    removed = 0
    for entry in entries:
        found = _RUNNER_DIR.match(entry.name)
        if not found or _alive(int(found.group(1))):
            continue
        try:
            info = entry.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid <= 1 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True

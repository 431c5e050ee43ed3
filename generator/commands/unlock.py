"""`wfgen unlock`: release a service's deploy lock by hand, after saying whose it was."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from generator.errors import ExitCode, WfgenError
from generator.manifest.loading import load
from generator.steps.core import lock
from generator.steps.core.holder import Holder
from generator.steps.core.steplib import UsageError
from generator.steps.core.target import open_target
from generator.steps.core.transport import CommandFailed, TargetError


class UnlockError(WfgenError):
    """No such service, or a target the environment does not describe (exit 2)."""


@dataclass(frozen=True)
class UnlockOptions:
    manifest: Path
    service: str
    environment: str | None = None  # --env; None: the first of [environments]


def unlock(options: UnlockOptions, stream: TextIO, errors: TextIO) -> int:
    """OK when released; FAILED when the target cannot be reached (or the lock changed while we looked);
    USAGE when the service has no lock held."""
    view = load(options.manifest, options.environment).view
    try:
        name = view.service(options.service).name
        target = open_target(view.target, os.environ)
    except UsageError as exc:
        raise UnlockError(f"unlock: {exc}") from None
    with target:
        try:
            holder = lock.read_holder(target, view.target.state_dir, name)
            if holder is None:
                print(f"{name}: no lock is held; nothing to release", file=errors)
                return ExitCode.USAGE
            print(f"{name}: locked by {whose(holder)}", file=stream)
            released = lock.release_by_hand(target, view.target.state_dir, name, holder)
        except (TargetError, CommandFailed, OSError) as exc:
            print(f"{name}: {target.redact(str(exc))}", file=errors)
            return ExitCode.FAILED
    if not released:
        changed = "the lock changed while it was read (released or taken again); run unlock again"
        print(f"{name}: {changed}", file=errors)
        return ExitCode.FAILED
    print(f"{name}: released the lock", file=stream)
    return ExitCode.OK


def whose(holder: Holder) -> str:
    """`alice on laptop (pid 4242, run 20261206-140211-ab12) since 14:02:11, refreshed 3 s ago`."""
    owner = holder.owner
    if not owner:
        return f"an unknown holder (no owner file), refreshed {holder.age_s:.0f} s ago"
    facts = [f"pid {holder.pid}"] + ([f"run {holder.run}"] if holder.run else [])
    if holder.gone:
        facts.append("no longer running on this host")
    who, host = owner.get("holder", "?"), owner.get("host", "?")
    return f"{who} on {host} ({', '.join(facts)}) since {holder.since}, refreshed {holder.age_s:.0f} s ago"

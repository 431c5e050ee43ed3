"""What a swarm runs, read from the manager's docker CLI as JSON: a service's spec and update status, its
tasks and the nodes they are on. Read-only. Stdlib only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ...core import config
from ...core.transport import CommandFailed, Target
from ..running import Running
from . import stack

# UpdateStatus.State values that end an update (moby api/types/swarm: UpdateState).
DONE = frozenset({"completed", "paused", "rollback_completed", "rollback_paused"})
ROLLED_BACK = frozenset({"rollback_started", "rollback_completed", "rollback_paused"})
SAID_TASKS = 5  # tasks a message names at most: a service may have 100


@dataclass(frozen=True)
class Service:
    id: str
    version: int
    image: str
    replicas: int | None
    labels: dict[str, str]
    update_state: str  # "" before the first update
    update_started: str
    update_message: str


@dataclass(frozen=True)
class Task:
    id: str
    slot: int | None
    node: str  # the node's hostname, or its id when the manager does not know it
    image: str
    desired: str  # "running", "shutdown", ...
    state: str  # "running", "starting", "failed", "rejected", ...
    error: str
    timestamp: str
    message: str = ""  # Status.Message: "started", "unhealthy container", ...

    def describe(self) -> str:
        quiet = {"started", "running", "starting", "shutdown"}
        said = [part for part in (self.error, self.message) if part and part not in quiet]
        error = f": {'; '.join(dict.fromkeys(said))}" if said else ""
        slot = f".{self.slot}" if self.slot is not None else ""
        return f"task{slot} on {self.node or 'no node'} {self.state}{error}"

    def describe_for(self, image: str) -> str:
        """As describe(), saying when the task still runs another image than `image`."""
        return self.describe() + ("" if self.image == image else " (previous image)")


def docker_json(target: Target, *args: str) -> Any:
    """`docker <args>`'s JSON. Objects gone meanwhile (a task Swarm pruned from its history since it was
    listed) are left out: `docker inspect` prints the others and names those on stderr."""
    argv = ["docker", *args]
    result = target.run(argv, timeout=60)
    others = [
        line for line in result.stderr.splitlines() if line.strip() and "no such object" not in line.lower()
    ]
    if result.returncode != 0 and (others or not result.stdout.strip()):
        raise CommandFailed(argv, result)
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        raise CommandFailed(argv, result) from None


def service(target: Target, name: str) -> Service | None:
    """The service, or None when there is none; any other failure raises (a daemon hiccup is not absence)."""
    argv = ["docker", "service", "inspect", name]
    result = target.run(argv, timeout=60)
    if result.returncode != 0 and "no such service" in result.stderr.lower():
        return None
    if result.returncode != 0:
        raise CommandFailed(argv, result)
    item = json.loads(result.stdout)[0]
    spec = item.get("Spec", {})
    status = item.get("UpdateStatus") or {}
    replicated = spec.get("Mode", {}).get("Replicated") or {}
    return Service(
        id=item["ID"],
        version=int(item.get("Version", {}).get("Index", 0)),
        image=spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", ""),
        replicas=replicated.get("Replicas"),
        labels=dict(spec.get("Labels") or {}),
        update_state=str(status.get("State", "")),
        update_started=str(status.get("StartedAt", "")),
        update_message=str(status.get("Message", "")),
    )


def node_names(target: Target) -> dict[str, str]:
    listing = target.run(["docker", "node", "ls", "--format", "{{.ID}} {{.Hostname}}"], timeout=60)
    return dict(line.split(" ", 1) for line in listing.stdout.splitlines() if " " in line)


def tasks(target: Target, name: str) -> list[Task]:
    """The service's tasks (current and recent history), newest first."""
    ids = target.run(["docker", "service", "ps", "-q", "--no-trunc", name], timeout=60, check=True)
    found = docker_json(target, "inspect", *ids.stdout.split()) if ids.stdout.split() else []
    nodes = node_names(target) if found else {}
    made = [
        Task(
            id=item["ID"],
            slot=item.get("Slot"),
            node=nodes.get(item.get("NodeID", ""), item.get("NodeID", "")),
            image=item.get("Spec", {}).get("ContainerSpec", {}).get("Image", ""),
            desired=item.get("DesiredState", ""),
            state=item.get("Status", {}).get("State", ""),
            error=item.get("Status", {}).get("Err", "") or "",
            timestamp=item.get("Status", {}).get("Timestamp", ""),
            message=item.get("Status", {}).get("Message", "") or "",
        )
        for item in found
    ]
    return sorted(made, key=lambda task: task.timestamp, reverse=True)


def converged(found: list[Task], image: str, replicas: int) -> bool:
    """Exactly `replicas` tasks are meant to run, and each runs `image` (running: healthy, for Swarm)."""
    wanted = [task for task in found if task.desired == "running"]
    ready = [task for task in wanted if task.state == "running" and task.image == image]
    return len(ready) == len(wanted) == replicas


def not_converged(found: list[Task], image: str) -> list[Task]:
    """The tasks meant to run that do not run `image` (yet: still on the old one, starting, or on a node
    that is gone), and the newest failed ones."""
    wanted = [t for t in found if t.desired == "running" and not (t.state == "running" and t.image == image)]
    failed = [task for task in found if task.image == image and task.state in {"failed", "rejected"}]
    return wanted + failed[:3]


def update_unfinished(found: list[Task], now: Service, replicas: int) -> str:
    """What to say when no task meant to run is late, yet the deploy did not end: fewer tasks than replicas,
    or an update Swarm never finished (a node lost under it holds it). The tasks, where they run (the first
    few), and the update's state."""
    wanted = [task for task in found if task.desired == "running"]
    if not wanted:
        return "no task runs the new image"
    where = ", ".join(task.describe() for task in wanted[:SAID_TASKS])
    more = f" and {len(wanted) - SAID_TASKS} more" if len(wanted) > SAID_TASKS else ""
    update = f"{now.update_state}: {now.update_message}" if now.update_state else "no update status"
    ended = "ended" if now.update_state in DONE else "did not end"
    count = f"{len(wanted)} of {replicas} tasks run the new image"
    return f"{count} ({where}{more}); Swarm's update {ended} ({update})"


def task_error(found: list[Task], image: str, message: str = "") -> str | None:
    """Why Swarm gave up on the update: the task its UpdateStatus message names ("... of task <id>"), else
    the newest task of `image` with an error."""
    named = message.rsplit(" ", 1)[-1] if " task " in message else ""
    failed = [t for t in found if t.image == image and (t.error or t.state in {"failed", "rejected"})]
    chosen = next((task for task in found if named and task.id.startswith(named)), None)
    chosen = chosen or (failed[0] if failed else None)
    return chosen.describe() if chosen else None


def running_nodes(found: list[Task]) -> list[str]:
    return sorted({task.node for task in found if task.desired == "running" and task.state == "running"})


def proxy_address(target: Target, manifest: config.Manifest) -> str | None:
    """Where a probe from the manager reaches the project proxy's ports: 127.0.0.1 when a proxy task runs on
    the manager itself, else the address of a node where one runs (proxy.placement leaves the manager out,
    or the manager is drained); None when none runs."""
    if service(target, stack.proxy_name(manifest)) is None:
        return None
    nodes = running_nodes(tasks(target, stack.proxy_name(manifest)))
    if not nodes:
        return None
    fmt = "{{.Description.Hostname}} {{.Status.Addr}}"
    listing = target.run(["docker", "node", "inspect", "--format", fmt, "self", *nodes], timeout=60)
    rows = [line.split() for line in listing.stdout.splitlines() if len(line.split()) == 2]
    if listing.returncode != 0:  # two nodes of one hostname, say: the manager's own port, as on one host
        return "127.0.0.1"
    if rows and rows[0][0] in nodes:
        return "127.0.0.1"
    return next((address for _, address in rows[1:] if address not in {"0.0.0.0", "127.0.0.1"}), None)


def running_versions(target: Target, manifest: config.Manifest, names: Iterable[str]) -> dict[str, Running]:
    """What each named service runs on the swarm (read-only); a service Swarm does not have is absent."""
    found: dict[str, Running] = {}
    for name in names:
        now_name = stack.service_name(manifest, manifest.services[name])
        now = service(target, now_name)
        if now is None:
            continue
        up = [task for task in tasks(target, now_name)
              if task.desired == "running" and task.state == "running"]  # fmt: skip
        found[name] = Running(
            commit=now.labels.get("wfgen.commit") or None, running=bool(up), labels=now.labels,
            published=frozenset(), state="running" if up else "not running", image=now.image,
            image_id=now.image, replicas=(len(up), now.replicas or 0),
            started_at=min((task.timestamp for task in up), default=""),  # the oldest task: since when
            nodes=tuple(sorted({task.node for task in up})), name=now_name,
        )  # fmt: skip
    return found

"""check-infrastructure on a swarm: the target is a manager of an active swarm, its nodes, the attachable
overlay network, a registry login, and the proxy on every node. Each check returns (ok, what it found).

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable

from ...core import config
from ...core.transport import CommandFailed, Target
from .. import images
from . import proxy, stack, state

Result = tuple[bool, str]
# A network created a moment ago (by this check, or by a deploy beside it) is inspected with no driver until
# Swarm's allocator has taken it (Docker reads a swarm network's driver from the state the allocator sets):
# wait that long for one before calling the network something else.
ALLOCATION_WAIT_S = 15.0


def scratch_dir(target: Target, manifest: config.Manifest, what: str) -> str:
    return target.home_path(f"{manifest.target.state_dir.rstrip('/')}/{what}/check-{secrets.token_hex(6)}")


def manager(target: Target) -> Result:
    fmt = "{{.Swarm.LocalNodeState}}|{{.Swarm.ControlAvailable}}|{{.Swarm.Managers}}|{{.Swarm.Nodes}}"
    result = target.run(["docker", "info", "--format", fmt], timeout=30)
    node_state, _, rest = result.stdout.strip().partition("|")
    control, _, counts = rest.partition("|")
    if result.returncode != 0 or not node_state:
        return False, (result.stderr.strip().splitlines() or ["docker info failed"])[0][:200]
    if node_state != "active":
        return False, f"swarm is {node_state or 'inactive'}: run 'docker swarm init' on the manager"
    if control != "true":
        return False, "this node is a swarm worker; target a manager"
    managers, _, nodes = counts.partition("|")
    return True, f"manager of an active swarm ({managers} manager(s), {nodes} node(s))"


def nodes(target: Target) -> Result:
    """Every node with its state and availability; fails when no node can run tasks."""
    fmt = "{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}"
    result = target.run(["docker", "node", "ls", "--format", fmt], timeout=30)
    if result.returncode != 0:
        return False, (result.stderr.strip().splitlines() or ["docker node ls failed"])[0][:200]
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()]
    usable = [row for row in rows if row[1:3] == ["Ready", "Active"]]
    shown = ", ".join(f"{row[0]} {row[1].lower()}/{row[2].lower()}" + (" (manager)" if len(row) > 3 else "")
                      for row in rows)  # fmt: skip
    return bool(usable), shown or "no nodes"


def ensure_overlay(target: Target, network: str) -> str:
    """The attachable overlay network services, the proxy and release commands join; created when missing."""
    shown = ["docker", "network", "inspect", "--format", "{{.Driver}} {{.Attachable}}", network]
    found = target.run(shown, timeout=60)
    if found.returncode == 0:
        words = found.stdout.split()
        deadline = time.monotonic() + ALLOCATION_WAIT_S
        while len(words) == 1 and time.monotonic() < deadline:  # no driver yet: see ALLOCATION_WAIT_S
            time.sleep(0.25)
            again = target.run(shown, timeout=60)
            words = again.stdout.split() if again.returncode == 0 else words
        if words != ["overlay", "true"]:
            what = " ".join(words) or "no driver"
            raise OSError(f"network {network} is not an attachable overlay network ({what})")
        return "exists (attachable overlay)"
    argv = ["docker", "network", "create", "--driver", "overlay", "--attachable", network]
    created = target.run(argv, timeout=60)
    if created.returncode != 0 and "already exists" not in created.stderr:
        raise CommandFailed(argv, created)
    return "created (attachable overlay)"


def network(target: Target, manifest: config.Manifest) -> Result:
    try:
        return True, ensure_overlay(target, manifest.target.network)
    except (OSError, CommandFailed) as exc:
        return False, str(exc)[:200]


def registry(target: Target, manifest: config.Manifest) -> Result:
    """A login on the manager with the registry credentials, in a config dir removed right after."""
    build = manifest.build
    user_env, password_env = build.registry_user_env, build.registry_password_env
    if not build.registry or not user_env or not password_env:
        return True, f"{build.registry}: no credentials set; the nodes pull anonymously"
    user, password = os.environ.get(user_env, ""), os.environ.get(password_env, "")
    if not user or not password:
        return False, f"environment variable {user_env if not user else password_env} is not set"
    scratch = scratch_dir(target, manifest, "docker-config")
    try:
        target.run(["sh", "-c", 'umask 077 && mkdir -p -- "$1"', "sh", scratch], timeout=60, check=True)
        images.login(target, build.registry, user, password, config_dir=scratch)
    except (images.ImageError, CommandFailed) as exc:
        return False, str(exc)[:200]
    finally:
        target.run(["rm", "-rf", "--", scratch], timeout=60)
    return True, f"login to {images.registry_host(build.registry)} works"


def proxy_service(target: Target, manifest: config.Manifest, log: Callable[[str], None]) -> Result:
    """Deploy the proxy when missing or stale; it should run one task on each node that is up (and
    matches proxy.placement). A proxy deployed before that runs on no node fails: no node serves."""
    scratch = scratch_dir(target, manifest, "proxy")
    try:
        ensure_overlay(target, manifest.target.network)
        changed = proxy.ensure(target, manifest, scratch, log)
        found = state.tasks(target, stack.proxy_name(manifest))
    except (OSError, CommandFailed) as exc:
        return False, str(exc)[:200]
    nodes = state.running_nodes(found)
    ports = ", ".join(str(service.port) for service in manifest.services.values())
    how = "deployed" if changed else "current"
    placed = f" ({proxy.where(manifest)})" if manifest.proxy.placement else ""
    if not nodes and not changed:
        hint = "is a node up that matches proxy.placement?" if placed else "are the nodes up?"
        return False, f"{how} but running on no node{placed}: {hint}"
    return True, f"{how}; ports {ports} in host mode; running on {', '.join(nodes) or 'no node yet'}{placed}"

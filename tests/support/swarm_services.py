"""The services the swarm lab runs, and how to read what Swarm does with them: the recipe the tests and the
benchmark share (the lab itself: tests/support/swarm.py).

`web`: a dnsrr service (this kernel has no IPVS, so no VIP), 2 replicas on 2 nodes, health-gated, updated
start-first and rolled back by Swarm when a new task fails. `proxy`: Caddy in global mode, publishing
PROXY_PORT on every node in host mode (no routing mesh either), proxying to `web` by its DNS name.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.support.swarm import WEB_PORT, Node, Swarm

NETWORK = "lab-net"
WEB = "web"
PROXY = "proxy"
PROXY_PORT = 8080
LOAD_SCRIPT = Path(__file__).parent / "netns_load.py"
TERMINAL_UPDATE_STATES = {"completed", "paused", "rollback_completed", "rollback_paused"}

# Health timings override the image's HEALTHCHECK (exec form; the test itself comes from the image).
HEALTH = [
    "--health-interval",
    "1s",
    "--health-timeout",
    "2s",
    "--health-retries",
    "2",
    "--health-start-period",
    "0s",
]
# start-first: the new task must be healthy before the old one stops; any failed task rolls the update back.
# How soon Swarm notices a bad task: health fails (interval x retries), then the task is shut down like any
# other (2 s out of DNS, then the stop signal, then up to --stop-grace-period: busybox httpd as PID 1 ignores
# SIGTERM), and only then counts as failed; the rollback ends one --rollback-monitor later.
UPDATE = [
    "--update-order", "start-first", "--update-parallelism", "1", "--update-delay", "0s",
    "--update-monitor", "3s", "--update-failure-action", "rollback", "--update-max-failure-ratio", "0",
    "--rollback-order", "start-first", "--rollback-parallelism", "1", "--rollback-monitor", "3s",
    "--restart-delay", "1s", "--stop-grace-period", "5s",
]  # fmt: skip

# Swarm puts a task into the service's DNS once its healthcheck passes, and takes it out 2 s before sending
# the stop signal (moby's executor: activate/deactivateServiceBinding, defaultGossipConvergeDelay). Caddy
# re-resolves the dnsrr name every second, retries another address when a dial fails, and sets a refusing
# upstream aside for a moment: with this, no request failed during updates in the lab. No idle connections and
# a short dial timeout: for a lost node, whose tasks stay in DNS for seconds (the engine's proxy.py says why).
CADDYFILE = f"""\
{{
	admin off
	auto_https off
}}
:{PROXY_PORT} {{
	reverse_proxy {{
		dynamic a {{
			name {WEB}
			port {WEB_PORT}
			refresh 1s
		}}
		lb_policy round_robin
		lb_try_duration 5s
		lb_try_interval 50ms
		fail_duration 2s
		transport http {{
			dial_timeout 500ms
			keepalive off
		}}
	}}
}}
"""


def check(swarm: Swarm, *args: str, timeout: float = 120) -> str:
    proc = swarm.docker(*args, timeout=timeout)
    assert proc.returncode == 0, f"docker {' '.join(args)}: {proc.stderr.strip()}"
    return proc.stdout


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 90, every: float = 0.5) -> Any:
    """Poll `probe` until it returns something truthy; bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}")


def service(swarm: Swarm, name: str) -> dict[str, Any]:
    return dict(json.loads(check(swarm, "service", "inspect", name))[0])


def update_status(swarm: Swarm, name: str) -> dict[str, Any]:
    """UpdateStatus: {"State": "updating" | "completed" | "rollback_started" | "rollback_completed" | "paused"
    | ..., "StartedAt", "CompletedAt", "Message"}; {} before the first update."""
    return dict(service(swarm, name).get("UpdateStatus") or {})


def update_state(swarm: Swarm, name: str) -> str:
    return str(update_status(swarm, name).get("State", ""))


def tasks(swarm: Swarm, name: str) -> list[dict[str, Any]]:
    """The service's tasks as `docker inspect` gives them, with "NodeName" added."""
    nodes = dict(
        line.split() for line in check(swarm, "node", "ls", "--format", "{{.ID}} {{.Hostname}}").splitlines()
    )
    ids = check(swarm, "service", "ps", "-q", "--no-trunc", name).split()
    found = json.loads(check(swarm, "inspect", *ids)) if ids else []
    return [{**task, "NodeName": nodes.get(task.get("NodeID", ""), "")} for task in found]


def running(swarm: Swarm, name: str) -> list[dict[str, Any]]:
    return [
        t for t in tasks(swarm, name) if t["DesiredState"] == "running" and t["Status"]["State"] == "running"
    ]


def settled(swarm: Swarm, name: str, image: str, replicas: int) -> list[dict[str, Any]] | None:
    """The running tasks when exactly `replicas` run `image` and no other task is meant to run."""
    current = [t for t in tasks(swarm, name) if t["DesiredState"] == "running"]
    ok = [
        t
        for t in current
        if t["Status"]["State"] == "running" and t["Spec"]["ContainerSpec"]["Image"] == image
    ]
    return ok if len(ok) == replicas == len(current) else None


def update(swarm: Swarm, name: str, image: str, timeout: float = 120) -> tuple[str, float]:
    """`docker service update --detach --image`, then wait for a final UpdateStatus.State; (state, seconds).

    The CLI exits 0 even when Swarm rolls the update back (docker/cli#6752): the state is the outcome.
    """
    before = update_status(swarm, name).get("StartedAt")  # the last update's: its final state is no answer
    started = time.monotonic()
    check(swarm, "service", "update", "--detach", "--image", image, name)

    def finished() -> str:
        status = update_status(swarm, name)
        done = status.get("StartedAt") != before and status.get("State") in TERMINAL_UPDATE_STATES
        return str(status["State"]) if done else ""

    state = wait_for(f"{name}'s update to finish", finished, timeout=timeout)
    return state, round(time.monotonic() - started, 1)


class LoadInNetns:
    """netns_load.py inside the bridge's namespace, against every node's published proxy port."""

    def __init__(
        self, swarm: Swarm, max_s: float = 150, verbose: bool = True, nodes: Sequence[Node] = (),
        ports: Sequence[int] = (PROXY_PORT,), pause_s: float = 0.02,
    ) -> None:  # fmt: skip
        self.verbose = verbose
        urls = [f"http://{node.address}:{port}/version" for node in nodes or swarm.nodes for port in ports]
        # Paced: hundreds of requests a second still, without taking a core from the tests running beside.
        argv = [sys.executable, str(LOAD_SCRIPT), "--threads", "4", "--max-s", str(max_s),
                "--pause-s", str(pause_s), *urls]  # fmt: skip
        self.process = swarm.popen_in("br", argv)

    def stop(self) -> dict[str, Any]:
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, err
        result = dict(json.loads(out))
        if self.verbose:
            print(
                f"load: {result['ok']} ok, {result['failed']} failed, {result['bodies']}; {result['failures'][:3]}"
            )
        return result


# One task per node: 2 replicas on 2 nodes. With start-first, the new task needs a third node to start on.
ONE_PER_NODE = ("--replicas-max-per-node", "1")


def deploy_lab_services(swarm: Swarm, image: str, placement: Sequence[str] = ONE_PER_NODE) -> None:
    """The overlay network, `web` on `image` and the global proxy (not waiting for them)."""
    check(swarm, "network", "create", "--driver", "overlay", "--attachable", NETWORK)
    check(
        swarm, "service", "create", "--detach", "--name", WEB, "--network", NETWORK,
        "--endpoint-mode", "dnsrr", "--replicas", "2", *placement,
        *HEALTH, *UPDATE, image,
    )  # fmt: skip
    swarm.docker("config", "create", "caddyfile", "-", input=CADDYFILE.encode())
    check(
        swarm, "service", "create", "--detach", "--name", PROXY, "--mode", "global", "--network", NETWORK,
        "--publish", f"mode=host,target={PROXY_PORT},published={PROXY_PORT}",
        "--config", "source=caddyfile,target=/etc/caddy/Caddyfile",
        swarm.images["caddy"], "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile",
    )  # fmt: skip


def remove_lab_services(swarm: Swarm) -> None:
    swarm.docker("service", "rm", WEB, PROXY)
    swarm.docker("config", "rm", "caddyfile")
    wait_for("the lab's tasks to go", lambda: not tasks_left(swarm), timeout=60)
    swarm.docker("network", "rm", NETWORK)


def tasks_left(swarm: Swarm) -> list[str]:
    """Task containers still on any node."""
    found = []
    for node in swarm.nodes:
        proc = swarm.docker("ps", "-q", "--filter", "label=com.docker.swarm.task", node=node, timeout=30)
        found += proc.stdout.split()
    return found

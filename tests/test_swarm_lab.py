"""The swarm lab works: a real 3-node Docker Swarm, as the Swarm deploy tests need it (tests/support/swarm.py).

The tests run in file order and share services: an attachable overlay network, a dnsrr service `web` (2
replicas on 2 nodes, health-gated), and a global Caddy publishing port 8080 on every node in host mode. This
kernel has no IPVS, so no routing mesh and no service VIPs: `--endpoint-mode dnsrr`, `mode=host` publishing.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.swarm import WEB_PORT, Swarm

NETWORK = "lab-net"
WEB = "web"
PROXY = "proxy"
PROXY_PORT = 8080
LOAD_SCRIPT = Path(__file__).parent / "support" / "netns_load.py"
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
UPDATE = [
    "--update-order", "start-first", "--update-parallelism", "1", "--update-delay", "0s",
    "--update-monitor", "3s", "--update-failure-action", "rollback", "--update-max-failure-ratio", "0",
    "--rollback-order", "start-first", "--rollback-parallelism", "1", "--rollback-monitor", "3s",
    "--restart-delay", "1s", "--stop-grace-period", "5s",
]  # fmt: skip

# Caddy re-resolves the dnsrr name every second (tasks enter DNS only once healthy and leave it before they
# stop), retries another address when a dial fails, and sets a refusing upstream aside for a moment.
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
			dial_timeout 1s
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
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}")


def service(swarm: Swarm, name: str) -> dict[str, Any]:
    return dict(json.loads(check(swarm, "service", "inspect", name))[0])


def update_state(swarm: Swarm, name: str) -> str:
    """UpdateStatus.State ("updating", "completed", "rollback_started", "rollback_completed", ...), "" before
    the first update."""
    return str((service(swarm, name).get("UpdateStatus") or {}).get("State", ""))


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
    started = time.monotonic()
    check(swarm, "service", "update", "--detach", "--image", image, name)
    state = wait_for(
        f"{name}'s update to finish",
        lambda: (s := update_state(swarm, name)) in TERMINAL_UPDATE_STATES and s,
        timeout=timeout,
    )
    return state, round(time.monotonic() - started, 1)


class LoadInNetns:
    """netns_load.py inside the bridge's namespace, against every node's published proxy port."""

    def __init__(self, swarm: Swarm, max_s: float = 150) -> None:
        urls = [f"http://{node.address}:{PROXY_PORT}/version" for node in swarm.nodes]
        argv = [sys.executable, str(LOAD_SCRIPT), "--threads", "4", "--max-s", str(max_s), *urls]
        self.process = swarm.popen_in("br", argv)

    def stop(self) -> dict[str, Any]:
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, err
        result = dict(json.loads(out))
        print(
            f"load: {result['ok']} ok, {result['failed']} failed, {result['bodies']}; {result['failures'][:3]}"
        )
        return result


@pytest.fixture(scope="module")
def lab(swarm: Swarm) -> Iterator[Swarm]:
    """The swarm with the overlay network, `web` on web-v1 and the global proxy; removed afterwards."""
    check(swarm, "network", "create", "--driver", "overlay", "--attachable", NETWORK)
    check(
        swarm, "service", "create", "--detach", "--name", WEB, "--network", NETWORK,
        "--endpoint-mode", "dnsrr", "--replicas", "2", "--replicas-max-per-node", "1",
        *HEALTH, *UPDATE, swarm.images["web-v1"],
    )  # fmt: skip
    swarm.docker("config", "create", "caddyfile", "-", input=CADDYFILE.encode())
    check(
        swarm, "service", "create", "--detach", "--name", PROXY, "--mode", "global", "--network", NETWORK,
        "--publish", f"mode=host,target={PROXY_PORT},published={PROXY_PORT}",
        "--config", "source=caddyfile,target=/etc/caddy/Caddyfile",
        swarm.images["caddy"], "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile",
    )  # fmt: skip
    yield swarm
    swarm.docker("service", "rm", WEB, PROXY)
    swarm.docker("config", "rm", "caddyfile")


def test_one_manager_and_two_workers_are_ready(swarm: Swarm) -> None:
    print(f"swarm formed: {swarm.timings}")
    assert swarm.node_states() == {
        "n1": ("ready", "active", "leader"),
        "n2": ("ready", "active", "worker"),
        "n3": ("ready", "active", "worker"),
    }


def test_the_overlay_network_spans_nodes(lab: Swarm) -> None:
    image = lab.images["web-v1"]
    n2, n3 = lab.node("n2"), lab.node("n3")
    served = lab.docker("run", "-d", "--name", "probe-n2", "--network", NETWORK, image, node=n2)
    assert served.returncode == 0, served.stderr
    try:
        fetched = lab.docker(
            "run", "--rm", "--network", NETWORK, image, "/bin/busybox", "wget", "-q", "-O", "-",
            f"http://probe-n2:{WEB_PORT}/version", node=n3, timeout=60,
        )  # fmt: skip
        assert (fetched.returncode, fetched.stdout.strip()) == (0, "v1"), fetched.stderr
    finally:
        lab.docker("rm", "-f", "probe-n2", node=n2)


def test_a_dnsrr_service_runs_two_healthy_replicas_on_two_nodes(lab: Swarm) -> None:
    started = time.monotonic()
    ready = wait_for("2 healthy web tasks", lambda: settled(lab, WEB, lab.images["web-v1"], 2))
    print(f"web: 2 replicas running (healthy) {time.monotonic() - started:.1f} s after the test started")
    assert len({task["NodeName"] for task in ready}) == 2
    assert service(lab, WEB)["Spec"]["EndpointSpec"]["Mode"] == "dnsrr"


def test_the_global_proxy_answers_on_every_node(lab: Swarm) -> None:
    wait_for("a proxy task on each node", lambda: len(running(lab, PROXY)) == len(lab.nodes))
    for node in lab.nodes:  # from inside each node's own namespace, to its own address
        url = f"http://{node.address}:{PROXY_PORT}/version"
        answer = wait_for(
            f"{url} from {node.name}", lambda n=node, u=url: (r := lab.http_get(n, u))[0] == 200 and r
        )
        assert answer[1].strip() == "v1"


def test_a_good_start_first_update_under_load_fails_no_request(lab: Swarm) -> None:
    load = LoadInNetns(lab)
    time.sleep(2)
    state, seconds = update(lab, WEB, lab.images["web-v2"])
    time.sleep(2)
    result = load.stop()
    print(f"good update: {state} in {seconds} s")
    assert state == "completed"
    assert settled(lab, WEB, lab.images["web-v2"], 2)
    assert result["failed"] == 0, result["failures"]
    assert result["ok"] > 500 and set(result["bodies"]) == {"v1", "v2"}


def test_a_failing_healthcheck_rolls_the_update_back(lab: Swarm) -> None:
    good = lab.images["web-v2"]
    load = LoadInNetns(lab)
    state, seconds = update(lab, WEB, lab.images["web-broken"])
    result = load.stop()
    print(f"bad update: {state} in {seconds} s (health: interval 1s, retries 2; monitor 3s)")
    assert state == "rollback_completed"
    assert service(lab, WEB)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == good
    assert wait_for("web back on v2", lambda: settled(lab, WEB, good, 2))
    assert result["failed"] == 0, result["failures"]
    assert set(result["bodies"]) == {"v2"}


def test_a_stopped_worker_goes_down_and_comes_back(lab: Swarm) -> None:
    node = lab.node("n3")
    lab.stop_node(node)
    started = time.monotonic()
    wait_for("n3 down", lambda: lab.node_states()["n3"][0] == "down", timeout=60)
    print(f"n3 seen down {time.monotonic() - started:.1f} s after its daemon was killed")
    lab.start_node(node)
    started = time.monotonic()
    wait_for("n3 ready", lambda: lab.node_states()["n3"][0] == "ready", timeout=60)
    print(f"n3 ready again {time.monotonic() - started:.1f} s after its daemon answered")

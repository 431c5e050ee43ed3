"""The swarm lab works: a real 3-node Docker Swarm, as the Swarm deploy tests need it (tests/support/swarm.py).

The tests run in file order and share services: an attachable overlay network, a dnsrr service `web` (2
replicas on 2 nodes, health-gated), and a global Caddy publishing port 8080 on every node in host mode. This
kernel has no IPVS, so no routing mesh and no service VIPs: `--endpoint-mode dnsrr`, `mode=host` publishing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.swarm import WEB_PORT, Swarm
from tests.support.swarm_services import (
    NETWORK,
    PROXY,
    PROXY_PORT,
    WEB,
    LoadInNetns,
    deploy_lab_services,
    remove_lab_services,
    running,
    service,
    settled,
    update,
    wait_for,
)


@pytest.fixture(scope="module")
def lab(swarm: Swarm) -> Iterator[Swarm]:
    """The swarm with the overlay network, `web` on web-v1 and the global proxy; removed afterwards."""
    deploy_lab_services(swarm, swarm.images["web-v1"])
    yield swarm
    remove_lab_services(swarm)


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


def test_a_cut_off_worker_goes_down_and_comes_back(lab: Swarm) -> None:
    lab.disconnect("n2")
    started = time.monotonic()
    try:
        wait_for("n2 down", lambda: lab.node_states()["n2"][0] == "down", timeout=60)
        print(f"n2 seen down {time.monotonic() - started:.1f} s after its link went down")
    finally:
        lab.reconnect("n2")
    started = time.monotonic()
    wait_for("n2 ready", lambda: lab.node_states()["n2"][0] == "ready", timeout=60)
    print(f"n2 ready again {time.monotonic() - started:.1f} s after its link came back")


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

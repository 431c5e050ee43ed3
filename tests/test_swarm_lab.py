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
    HEALTH,
    NETWORK,
    ONE_PER_NODE,
    PROXY,
    PROXY_PORT,
    TERMINAL_UPDATE_STATES,
    UPDATE,
    WEB,
    LoadInNetns,
    check,
    deploy_lab_services,
    remove_lab_services,
    running,
    service,
    settled,
    tasks,
    update,
    update_state,
    wait_for,
)

# One worker runs them all, in file order: they share the lab's services, and a worker forms its own lab.
pytestmark = pytest.mark.xdist_group("swarm")


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


def test_an_update_waits_for_a_worker_that_died_under_it(lab: Swarm) -> None:
    """Swarm has no update deadline: a new task on a dead node keeps the update "updating" until the node is
    back (with one task per node there is nowhere else to start it). Whoever drives updates needs its own."""
    v1, v2 = lab.images["web-v1"], lab.images["web-v2"]
    check(
        lab, "service", "create", "--detach", "--name", "solo", "--network", NETWORK, "--endpoint-mode", "dnsrr",
        "--replicas", "1", *ONE_PER_NODE, "--constraint", "node.role==worker", *HEALTH, *UPDATE, v1,
    )  # fmt: skip
    try:
        old = wait_for("solo on v1", lambda: settled(lab, "solo", v1, 1))[0]
        spare = next(node for node in lab.workers if node.name != old["NodeName"])
        check(lab, "service", "update", "--detach", "--image", v2, "solo")
        wait_for(
            f"the new task on {spare.name}",
            lambda: [t for t in tasks(lab, "solo") if t["NodeName"] == spare.name],
        )
        lab.stop_node(spare)
        wait_for(f"{spare.name} down", lambda: lab.node_states()[spare.name][0] == "down", timeout=60)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert update_state(lab, "solo") == "updating"
            assert [t["ID"] for t in running(lab, "solo")] == [old["ID"]]  # the old task keeps serving
            time.sleep(1)
        lab.start_node(spare)
        started = time.monotonic()
        state = wait_for(
            "the update to end", lambda: (s := update_state(lab, "solo")) in TERMINAL_UPDATE_STATES and s
        )
        print(
            f"update with a dead worker: 'updating' until it returned, then {state} {time.monotonic() - started:.1f} s later"
        )
        wait_for(f"{spare.name} ready", lambda: lab.node_states()[spare.name][0] == "ready", timeout=60)
    finally:
        lab.docker("service", "rm", "solo")


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

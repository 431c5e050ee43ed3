"""The benchmark's floor legs (benchmarks/leg_floor.py) on a real engine: they build, start, probe and swap
containers for real, so the ratio the benchmark prints beside wfgen's is measured, not assumed."""

from __future__ import annotations

from pathlib import Path

from benchmarks.leg_floor import FloorFleet
from tests.support.docker import docker
from tests.support.fleet import make_fleet
from tests.support.manifests import TEST_PROXY


def test_floor_legs_replace_each_service_container(
    tmp_path: Path, docker_host: str, docker_project: str
) -> None:
    delay_s = 0.5
    services = {name: {"delay_s": delay_s} for name in ("svc-a", "svc-b")}
    fleet = make_fleet(tmp_path, docker_project, docker_host, services)
    floor = FloorFleet(fleet)

    floor.deploy(parallel=True)
    first = floor_containers(docker_host, docker_project)
    figures = floor.deploy(parallel=False)

    after = floor_containers(docker_host, docker_project)
    assert sorted(after) == [f"{docker_project}-floor-svc-a", f"{docker_project}-floor-svc-b"]
    assert all(after[name] != first[name] for name in after), "the second deploy started new containers"
    assert delay_s + float(TEST_PROXY["drain_s"]) < figures["slowest"] <= figures["sum"] <= figures["wall"]


def floor_containers(docker_host: str, project: str) -> dict[str, str]:
    """name -> container ID of the project's floor containers, stopped ones included."""
    listing = docker(docker_host, "ps", "-a", "--format", "{{.Names}} {{.ID}}", check=True).stdout
    rows = (line.split() for line in listing.splitlines())
    return {name: ident for name, ident in rows if name.startswith(f"{project}-floor-")}

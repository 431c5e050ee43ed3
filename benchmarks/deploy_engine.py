"""Deploy-engine figures on a real Docker engine: cold deploy, `unchanged` redeploy, and port dark time.

    DOCKER_HOST=unix:///path/to/docker.sock python benchmarks/deploy_engine.py [--runs 3]

Cold = no container and no image (build included); unchanged = same commit again; dark time = the longest
stretch without a 200 from the service's port while a new version is switched in (GET every 20 ms).
Everything it creates (temp repo, containers, images) is removed at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.caddy import ensure_caddy_image  # noqa: E402
from tests.support.deploys import DeployBench, Poller  # noqa: E402
from tests.support.docker import candidate_docker_host, cleanup_project, docker, docker_env, unique_name  # noqa: E402
from tests.support.fixture_service import make_service_repo  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

SERVICE = "web"


def remove_deployment(host: str, project: str) -> None:
    """Back to a cold start: no container (live or kept for rollback), no image of the service."""
    names = docker(host, "ps", "-aq", "--filter", f"label=wfgen.project={project}", "--filter",
                   f"label=wfgen.service={SERVICE}").stdout.split()  # fmt: skip
    if names:
        docker(host, "rm", "-f", *names)
    tags = docker(
        host, "images", "--format", "{{.Repository}}:{{.Tag}}", f"{project}/{SERVICE}"
    ).stdout.split()
    if tags:
        docker(host, "rmi", "-f", *tags)


def checked(run_result, what: str) -> float:  # type: ignore[no-untyped-def]
    expected = "unchanged" if what == "unchanged" else "deployed"
    if run_result.status.get("result") != expected:
        raise SystemExit(
            f"{what} deploy ended {run_result.status.get('result')}:\n{run_result.stdout}{run_result.stderr}"
        )
    return float(run_result.seconds)


def measure(runs: int, workdir: Path, host: str, project: str, proxied: bool) -> dict[str, list[float]]:
    repo = make_service_repo(workdir / "repos", SERVICE)
    port = free_port()
    url = f"http://127.0.0.1:{port}/index.html"
    bench = DeployBench(workdir=workdir, env=docker_env(host), service=SERVICE)
    health = {"interval_s": 0.2, "timeout_s": 2.0, "deadline_s": 30.0}
    bench.write(
        {
            SERVICE: {
                "repository": repo.url,
                "port": port,
                "container_port": 3000,
                "health": health,
                "proxy": proxied,
            }
        },
        project={"name": project, "keep_images": 2},
    )
    figures: dict[str, list[float]] = {"cold": [], "unchanged": [], "dark": [], "stall": []}
    for i in range(runs):
        remove_deployment(host, project)
        repo.write_marker(f"cold-{i}")
        figures["cold"].append(checked(bench.deploy(), "cold"))
        for _ in range(2):
            figures["unchanged"].append(checked(bench.deploy(), "unchanged"))
    for i in range(runs):
        repo.write_marker(f"v{i}")
        # Short timeouts see the port itself; 1 s ones see what a client whose SYN is dropped waits for.
        pollers = {"dark": Poller(url, timeout=0.2), "stall": Poller(url, timeout=5.0)}
        for poller in pollers.values():
            poller.start()
        run = bench.deploy()
        for name, poller in pollers.items():
            figures[name].append(poller.stop().longest_gap)
        checked(run, "cutover")
    return figures


def row(name: str, values: list[float]) -> str:
    median, low, high = statistics.median(values), min(values), max(values)
    return f"| {name:<36} | {median:>8.2f} | {low:>8.2f} | {high:>8.2f} | {len(values):>3} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold deploys and cutovers to time (default 3)")
    args = parser.parse_args(argv)
    host = candidate_docker_host()
    ensure_caddy_image(host)
    results = {}
    for mode, proxied in (("behind the proxy", True), ("proxy = false", False)):
        project = unique_name("wfgb")
        with tempfile.TemporaryDirectory(prefix="wfgen-bench-") as tmp:
            try:
                results[mode] = measure(max(1, args.runs), Path(tmp), host, project, proxied)
            finally:
                cleanup_project(host, project)
    for mode, figures in results.items():
        cold, unchanged = statistics.median(figures["cold"]), statistics.median(figures["unchanged"])
        print(f"\n{mode}:")
        print("| figure (seconds)                     |   median |      min |      max |   n |")
        print("| ------------------------------------ | -------: | -------: | -------: | --: |")
        print(row("cold deploy (build + cutover)", figures["cold"]))
        print(row("unchanged redeploy", figures["unchanged"]))
        print(row("port dark in a cutover (0.2 s polls)", figures["dark"]))
        print(row("longest client wait (5 s timeout)", figures["stall"]))
        print(f"unchanged / cold = {unchanged / cold:.1%} (goal: <= 10 %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

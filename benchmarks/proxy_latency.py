"""Latency the project proxy adds: the same app container asked directly and through the proxy, in one run.

    DOCKER_HOST=unix:///path/to/docker.sock python benchmarks/proxy_latency.py [--requests 2000]

The proxy is the one wfgen runs (steps/engine/proxy.py, its real config), with the FROM-scratch Caddy image
the tests build from Debian's caddy package. The app (busybox httpd) runs under its live name and publishes
its port on 127.0.0.1, so both paths are loopback: direct is client → app; proxied is client → Caddy → app.
Each path is timed with a new connection per request, then over one kept-alive client connection, interleaved
in rounds so drift on a shared machine hits both alike. Prints p50/p99. Removes what it creates.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator.steps.core import config_load
from generator.steps.core.transport import LocalTarget
from generator.steps.engine.proxy import Proxy, wanted_ports
from tests.support.caddy import ensure_caddy_image  # noqa: E402
from tests.support.docker import candidate_docker_host, cleanup_project, docker, unique_name  # noqa: E402
from tests.support.fixture_service import BUSYBOX  # noqa: E402
from tests.support.load import percentile  # noqa: E402
from tests.support.manifests import manifest_toml, write_resolved_manifest  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

APP_PORT = 3000
ROUNDS = 10


def timings(port: int, count: int, keep_alive: bool) -> list[float]:
    result: list[float] = []
    conn: http.client.HTTPConnection | None = None
    for _ in range(count):
        started = time.perf_counter()
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/version", headers={} if keep_alive else {"Connection": "close"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status} from port {port}")
        result.append(time.perf_counter() - started)
        if not keep_alive or response.will_close:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()
    return result


def must(docker_host: str, *args: str) -> str:
    done = docker(docker_host, *args, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"docker {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def app(docker_host: str, root: Path, project: str) -> str:
    context = root / "app"
    (context / "www").mkdir(parents=True)
    (context / "busybox").write_bytes(BUSYBOX.read_bytes())
    (context / "busybox").chmod(0o755)
    (context / "www" / "version").write_text("v1\n")
    cmd = ["/bin/busybox", "httpd", "-f", "-p", str(APP_PORT), "-h", "/www"]
    (context / "Dockerfile").write_text(
        f"FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nCMD {json.dumps(cmd)}\n"
    )
    must(docker_host, "build", "-q", "-t", f"{project}/app:1", str(context))
    return f"{project}/app:1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per path and connection mode")
    args = parser.parse_args(argv)
    docker_host = candidate_docker_host()
    image = ensure_caddy_image(docker_host)
    project = unique_name("wfgl")
    public = free_port()
    with tempfile.TemporaryDirectory(prefix="wfgen-latency-") as tmp:
        root = Path(tmp)
        try:
            text = manifest_toml(
                {"web": {"repository": "o/web", "port": public, "container_port": APP_PORT}},
                project={"name": project},
                target={"state_dir": str(root / "state")},
                proxy={"image": image},
            )
            manifest = config_load.load(write_resolved_manifest(root, text))
            os.environ["DOCKER_HOST"] = docker_host  # the proxy's docker commands run here (a local target)
            must(docker_host, "network", "create", manifest.target.network)
            Proxy(LocalTarget(), manifest, print).ensure(wanted_ports(manifest))
            tag = app(docker_host, root, project)
            live = f"{project}-web"
            must(docker_host, "run", "-d", "--name", live, "--network", manifest.target.network,
                 "-p", f"127.0.0.1::{APP_PORT}", tag)  # fmt: skip
            direct = int(must(docker_host, "port", live, f"{APP_PORT}/tcp").splitlines()[0].rsplit(":", 1)[1])
            time.sleep(1)
            paths = {"direct": direct, "proxy": public}
            spent: dict[tuple[str, bool], list[float]] = {(p, k): [] for p in paths for k in (False, True)}
            per_round = max(1, args.requests // ROUNDS)
            for _ in range(ROUNDS):
                for (path, keep_alive), values in spent.items():
                    values += timings(paths[path], per_round, keep_alive)
        finally:
            cleanup_project(docker_host, project)
    print(f"\n{'path':>7} {'connection':>11} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for (path, keep_alive), values in spent.items():
        p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
        print(
            f"{path:>7} {'kept alive' if keep_alive else 'new':>11} {len(values):>9} {p50:>8.2f} {p99:>8.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

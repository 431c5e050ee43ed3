"""generator/steps/engine/proxy.py with a real Caddy in real Docker: start, routes, new ports, restarts, the socket."""

from __future__ import annotations

import json
import socket
import ssl
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from generator.steps.core import config, config_load
from generator.steps.core.transport import LocalTarget
from generator.steps.engine import proxy_config as pc
from generator.steps.engine.proxy import Proxy, ProxyError, proxy_lock, wanted_ports
from tests.support.deploys import fetch
from tests.support.docker import docker
from tests.support.fixture_service import BUSYBOX
from tests.support.manifests import manifest_toml, write_resolved_manifest
from tests.support.ports import free_port
from tests.support.stepscripts import run_step

APP_PORT = 3000


def app_image(docker_host: str, project: str, version: str, tmp_path: Path) -> str:
    """`<project>/app:<version>`: busybox httpd serving /version (the text `version`) and /health."""
    context = tmp_path / f"app-{version}"
    (context / "www").mkdir(parents=True)
    (context / "busybox").write_bytes(BUSYBOX.read_bytes())
    (context / "busybox").chmod(0o755)
    (context / "www" / "version").write_text(version + "\n")
    (context / "www" / "health").write_text("ok\n")
    cmd = ["/bin/busybox", "httpd", "-f", "-p", str(APP_PORT), "-h", "/www"]
    (context / "Dockerfile").write_text(
        f"FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nCMD {json.dumps(cmd)}\n"
    )
    tag = f"{project}/app:{version}"
    assert docker(docker_host, "build", "-q", "-t", tag, str(context), timeout=300).returncode == 0
    return tag


class Fleet:
    """A manifest of proxied services on free ports, the Proxy of it, and app containers on live names."""

    def __init__(self, tmp_path: Path, project: str, image: str, docker_host: str):
        self.tmp_path, self.project, self.image, self.docker_host = tmp_path, project, image, docker_host
        self.state = tmp_path / "state"
        self.services: dict[str, dict[str, Any]] = {}
        self.proxy_table: dict[str, Any] = {"image": image, "drain_s": 0.5}
        self.lines: list[str] = []

    def add(self, name: str, **table: Any) -> int:
        port = free_port()
        self.services[name] = {
            "repository": f"letzgo/{name}",
            "port": port,
            "container_port": APP_PORT,
            **table,
        }
        return port

    def manifest(self) -> config.Manifest:
        text = manifest_toml(
            self.services,
            project={"name": self.project},
            target={"state_dir": str(self.state), "network": f"{self.project}-net"},
            proxy=self.proxy_table,
        )
        return config_load.load(write_resolved_manifest(self.tmp_path, text))

    def proxy(self) -> Proxy:
        return Proxy(LocalTarget(), self.manifest(), self.lines.append)

    def ensure(self) -> str:
        manifest = self.manifest()
        docker(self.docker_host, "network", "create", manifest.target.network)
        proxy = Proxy(LocalTarget(), manifest, self.lines.append)
        with proxy_lock(LocalTarget(), manifest, self.lines.append):
            return proxy.ensure(wanted_ports(manifest))

    def serve(self, service: str, version: str) -> None:
        """The app `version` under the service's live name, on the project network, no published port."""
        image = app_image(self.docker_host, self.project, version, self.tmp_path)
        name = f"{self.project}-{service}"
        docker(self.docker_host, "rm", "-f", name)
        started = docker(
            self.docker_host, "run", "-d", "--name", name, "--network", f"{self.project}-net", image
        )
        assert started.returncode == 0, started.stderr


def inside(docker_host: str, container: str, image: str, port: int) -> int:
    """Exit code of a TCP connect to 127.0.0.1:port from the network namespace of `container`."""
    probe = docker(
        docker_host, "run", "--rm", "--network", f"container:{container}", image,
        "/bin/busybox", "sh", "-c", 'echo | /bin/busybox nc -w 2 127.0.0.1 "$1"', "sh", str(port), timeout=60,
    )  # fmt: skip
    return probe.returncode


def https_get(port: int, host: str, path: str, cafile: Path) -> str:
    """GET over TLS to 127.0.0.1:port with SNI and Host `host`, verified against `cafile`; the body."""
    context = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            for _ in range(1000):
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.decode("utf-8", "replace").partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200"), head
    return body.strip()


def wait_answer(url: str, want: str, timeout: float = 15) -> tuple[int | None, str]:
    deadline = time.monotonic() + timeout
    answer: tuple[int | None, str] = (None, "")
    while time.monotonic() < deadline:
        answer = fetch(url)
        if answer[0] == 200 and answer[1].strip() == want:
            break
        time.sleep(0.1)
    return answer


@pytest.fixture
def fleet(
    tmp_path: Path, docker_project: str, caddy_image: str, docker_host: str, monkeypatch: pytest.MonkeyPatch
) -> Fleet:
    monkeypatch.setenv("DOCKER_HOST", docker_host)  # the proxy's commands run here, on a local target
    return Fleet(tmp_path, docker_project, caddy_image, docker_host)


def test_ensure_starts_the_proxy_publishing_only_proxied_ports(fleet: Fleet, docker_host: str) -> None:
    web, api = fleet.add("web"), fleet.add("api")
    direct = fleet.add("raw", proxy=False)
    assert fleet.ensure() == "started"
    fleet.serve("web", "w1")
    fleet.serve("api", "a1")
    assert wait_answer(f"http://127.0.0.1:{web}/version", "w1")[1].strip() == "w1"
    assert wait_answer(f"http://127.0.0.1:{api}/version", "a1")[1].strip() == "a1"
    running = fleet.proxy().inspect()
    assert running is not None and running.running
    assert running.ports == {web, api} and direct not in running.ports
    assert {"web", "api"} <= running.aliases, "the short service names reach the live version through it"
    assert fleet.ensure() == "running", "a second check changes nothing"


def test_admin_endpoint_is_a_unix_socket_in_a_private_folder(fleet: Fleet, docker_host: str) -> None:
    web = fleet.add("web")
    fleet.ensure()
    admin = fleet.state / "proxy" / "admin"
    assert stat.S_IMODE(admin.stat().st_mode) == 0o700
    assert stat.S_ISSOCK((admin / pc.ADMIN_SOCKET_NAME).stat().st_mode)
    live = json.loads(fleet.proxy().admin("GET", "/config/"))
    assert live["admin"]["listen"] == f"unix/{pc.ADMIN_DIR}/{pc.ADMIN_SOCKET_NAME}"
    bindings = docker(
        docker_host, "inspect", "--format", "{{json .HostConfig.PortBindings}}", fleet.proxy().name
    )
    assert "2019/tcp" not in json.loads(bindings.stdout)
    # Inside the proxy's own network namespace nothing listens on Caddy's default admin port; the service's
    # port answers there, which shows the probe itself works.
    image = app_image(docker_host, fleet.project, "probe", fleet.tmp_path)
    assert inside(docker_host, fleet.proxy().name, image, web) == 0
    assert inside(docker_host, fleet.proxy().name, image, 2019) != 0


def test_a_new_service_gets_a_listener_and_its_port(fleet: Fleet) -> None:
    web = fleet.add("web")
    fleet.ensure()
    fleet.serve("web", "w1")
    api = fleet.add("api")
    assert fleet.ensure() == "recreated, routes loaded"
    assert any(f"port {api} added" in line for line in fleet.lines), fleet.lines
    fleet.serve("api", "a1")
    assert wait_answer(f"http://127.0.0.1:{api}/version", "a1")[1].strip() == "a1"
    assert wait_answer(f"http://127.0.0.1:{web}/version", "w1")[1].strip() == "w1"


def test_routes_survive_a_restart_and_a_kill(fleet: Fleet, docker_host: str) -> None:
    web = fleet.add("web")
    fleet.ensure()
    fleet.serve("web", "w1")
    name = f"{fleet.project}-proxy"
    for how in (("restart", "-t", "2", name), ("kill", name)):
        assert docker(docker_host, *how).returncode == 0
        if how[0] == "kill":
            assert docker(docker_host, "start", name).returncode == 0
        assert wait_answer(f"http://127.0.0.1:{web}/version", "w1")[1].strip() == "w1", how[0]
    assert fleet.ensure() == "running", "the autosaved config is the manifest's: nothing to load"


def test_a_port_some_other_container_holds_is_a_one_line_error(fleet: Fleet, docker_host: str) -> None:
    web = fleet.add("web")
    blocker = f"{fleet.project}-blocker"
    image = app_image(docker_host, fleet.project, "b", fleet.tmp_path)
    assert (
        docker(docker_host, "run", "-d", "--name", blocker, "-p", f"{web}:{APP_PORT}", image).returncode == 0
    )
    with pytest.raises(ProxyError, match=rf"cannot start {fleet.project}-proxy: .*{web}"):
        fleet.ensure()


def test_domain_is_served_over_https_with_the_internal_ca(fleet: Fleet, docker_host: str) -> None:
    fleet.proxy_table.update(http_port=free_port(), https_port=free_port(), tls="internal")
    fleet.add("web", domain="web.wfgen.test")
    fleet.ensure()
    fleet.serve("web", "w1")
    https = fleet.proxy_table["https_port"]
    root = fleet.state / "proxy" / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    body, problem = "", ""
    for _ in range(100):  # the certificate is issued on the first handshake; give the CA a moment
        try:
            body = https_get(https, "web.wfgen.test", "/version", root)
            break
        except (OSError, ssl.SSLError, AssertionError) as exc:
            problem = repr(exc)
            time.sleep(0.2)
    assert body == "w1", problem
    with pytest.raises(ssl.SSLError):
        https_get(https, "other.wfgen.test", "/version", root)


def test_check_infrastructure_reports_a_port_another_container_holds(
    fleet: Fleet, docker_host: str, docker_env: dict[str, str]
) -> None:
    web = fleet.add("web")
    blocker = f"{fleet.project}-blocker"
    image = app_image(docker_host, fleet.project, "b", fleet.tmp_path)
    assert (
        docker(docker_host, "run", "-d", "--name", blocker, "-p", f"{web}:{APP_PORT}", image).returncode == 0
    )
    fleet.manifest()
    check = run_step(
        "check_infrastructure",
        "--manifest",
        str(fleet.tmp_path / "manifest.json"),
        env=docker_env,
        timeout=180,
    )
    assert check.returncode == 1, check.stdout
    assert f"✗ proxy {fleet.project}-proxy — port {web} is held by {blocker}" in check.stdout


def test_a_state_dir_too_long_for_the_admin_socket_is_named(fleet: Fleet, docker_env: dict[str, str]) -> None:
    fleet.add("web")
    fleet.state = fleet.tmp_path / ("s" * 100)
    fleet.manifest()
    check = run_step(
        "check_infrastructure",
        "--manifest",
        str(fleet.tmp_path / "manifest.json"),
        env=docker_env,
        timeout=180,
    )
    assert check.returncode == 1, check.stdout
    row = next(
        line for line in check.stdout.splitlines() if line.startswith(f"✗ proxy {fleet.project}-proxy")
    )
    assert "bytes long; a unix socket path holds at most 107: choose a shorter target.state_dir" in row

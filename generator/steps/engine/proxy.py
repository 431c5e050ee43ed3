"""The project proxy on the target: one Caddy container, `<project>-proxy`, that owns the public ports.

check-infrastructure calls `ensure()` once before any leg: it starts the proxy when missing, recreates it
when its image, aliases or the ports it must publish changed (Docker cannot publish a port on a running
container), and loads the routes the manifest implies through the admin API (a unix socket in a 0700 folder
under the state dir, never TCP). A deploy leg calls it only when the proxy is missing or lacks its port (a
deploy without check-infrastructure), and when it moves a service that still publishes its own port behind
the proxy. Both hold the proxy lock while they do. Secrets never enter the proxy.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..core import config
from ..core.lock import ServiceLock
from ..core.transport import CommandFailed, Target
from . import proxy_config as pc

LOCK_NAME = "_proxy"  # beside the services' locks; a service name cannot start with '_'
LOCK_WAIT_S = 120.0
ADMIN_WAIT_S = 20.0
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes on Linux, with the terminating NUL
STOP_TIMEOUT_S = 5
_PORT_ROW = re.compile(r"(?:[\d.]+|\[[0-9a-f:]*\]):(\d+)->\d+/tcp")


class ProxyError(Exception):
    """The proxy cannot be started or configured; the message is one line."""


@dataclass(frozen=True)
class Running:
    """What `docker inspect` says of the proxy container."""

    image: str
    running: bool
    ports: frozenset[int]
    aliases: frozenset[str]


def live_name(manifest: config.Manifest, service: config.Service) -> str:
    """The name of the container that serves a service: the proxy dials it, a deploy renames onto it."""
    return f"{manifest.project.name}-{service.name}"


def proxied(manifest: config.Manifest) -> list[config.Service]:
    return [service for service in manifest.services.values() if service.proxy]


def routes(manifest: config.Manifest) -> list[pc.Route]:
    return [
        pc.Route(s.name, s.port, f"{live_name(manifest, s)}:{s.container_port}", s.domain)
        for s in proxied(manifest)
    ]


def wanted_ports(manifest: config.Manifest) -> list[int]:
    ports = {service.port for service in proxied(manifest)}
    if any(service.domain for service in proxied(manifest)):
        ports |= {manifest.proxy.http_port, manifest.proxy.https_port}
    return sorted(ports)


def publishers(target: Target) -> dict[int, str]:
    """Host port -> the container that publishes it, for every running container on the target."""
    listing = target.run(["docker", "ps", "--format", "{{.Names}}\t{{.Ports}}"], timeout=60, check=True)
    held: dict[int, str] = {}
    for line in listing.stdout.splitlines():
        name, _, ports = line.partition("\t")
        for port in _PORT_ROW.findall(ports):
            held.setdefault(int(port), name)
    return held


@contextlib.contextmanager
def proxy_lock(target: Target, manifest: config.Manifest, log: Callable[[str], None]) -> Iterator[None]:
    """Only one check or deploy at a time may recreate the proxy."""
    lock = ServiceLock(target, manifest.target.state_dir, LOCK_NAME)
    lock.acquire(
        LOCK_WAIT_S,
        manifest.project.lock_stale_s,
        lambda holder: log(f"waiting for the proxy lock held by {holder.describe()}"),
    )
    try:
        yield
    finally:
        lock.release()


class Proxy:
    def __init__(self, target: Target, manifest: config.Manifest, log: Callable[[str], None]):
        self.target, self.manifest, self.log = target, manifest, log
        self.name = manifest.proxy.container
        self.root = target.home_path(posixpath.join(manifest.target.state_dir, "proxy"))
        self.socket = posixpath.join(self.root, "admin", pc.ADMIN_SOCKET_NAME)

    # --- the container ---

    def plan_ports(self) -> tuple[list[int], dict[int, str]]:
        """(the ports the proxy can publish now, {port: container} for wanted ports another one holds).

        A service deployed before the proxy holds its own port until its next deploy moves it behind."""
        held = {port: name for port, name in publishers(self.target).items() if name != self.name}
        wanted = wanted_ports(self.manifest)
        return [port for port in wanted if port not in held], {
            port: held[port] for port in wanted if port in held
        }

    def moves_behind(self, port: int, holder: str) -> bool:
        """Whether `holder` is the live container of a proxied service on `port`, awaiting its next deploy."""
        return any(s.port == port and live_name(self.manifest, s) == holder for s in proxied(self.manifest))

    def ensure_for(self, service: config.Service, held_by_it: bool) -> None:
        """Before a deploy of `service`: the proxy runs and publishes its port (or the port's old holder is
        the service itself, which the deploy moves behind the proxy). Cheap when all is in place."""
        current = self.inspect()
        if current and current.running and (service.port in current.ports or held_by_it):
            return
        with proxy_lock(self.target, self.manifest, self.log):
            ports, _held = self.plan_ports()
            self.ensure(ports)

    def inspect(self) -> Running | None:
        fmt = (
            "{{.Config.Image}}|{{.State.Running}}|{{json .HostConfig.PortBindings}}|"
            "{{json .NetworkSettings.Networks}}"
        )
        result = self.target.run(["docker", "container", "inspect", "--format", fmt, self.name], timeout=60)
        if result.returncode != 0:
            if "no such" in result.stderr.lower():
                return None
            raise CommandFailed(["docker", "container", "inspect", self.name], result)
        try:
            image, running, bindings, networks = result.stdout.strip().split("|", 3)
            ports = {int(key.split("/")[0]) for key in (json.loads(bindings) or {})}
            endpoint = (json.loads(networks) or {}).get(self.manifest.target.network) or {}
        except ValueError:  # JSONDecodeError included: not what this docker inspect format prints
            raise CommandFailed(["docker", "container", "inspect", self.name], result) from None
        return Running(image, running == "true", frozenset(ports), frozenset(endpoint.get("Aliases") or ()))

    def ensure(self, ports: list[int]) -> str:
        """Start, restart or recreate the proxy so that it publishes exactly `ports`; what was done."""
        if len(self.socket.encode()) > MAX_SOCKET_PATH:  # else: "does not answer on its admin socket"
            raise ProxyError(
                f"the proxy's admin socket {self.socket} is {len(self.socket.encode())} bytes long; a unix "
                f"socket path holds at most {MAX_SOCKET_PATH}: choose a shorter target.state_dir"
            )
        self.prepare_folders()
        current = self.inspect()
        aliases = {service.name for service in proxied(self.manifest)}
        if current is None:
            self.run(ports)
            done = "started"
        elif (
            current.image != self.manifest.proxy.image
            or current.ports != set(ports)
            or not aliases <= current.aliases
        ):
            self.log(
                f"recreating {self.name}: {self.why(current, ports)}; its ports refuse connections meanwhile"
            )
            self.target.run(["docker", "stop", "-t", str(STOP_TIMEOUT_S), self.name], timeout=60)
            self.target.run(["docker", "rm", "-f", self.name], timeout=60, check=True)
            try:
                self.run(ports)
            except ProxyError:  # e.g. a new port that a process outside Docker holds: back as it was
                self.run(sorted(current.ports), current.image)
                raise
            done = "recreated"
        elif not current.running:
            self.target.run(["docker", "start", self.name], timeout=60, check=True)
            done = "restarted"
        else:
            done = "running"
        self.wait_admin()
        if self.load_routes():
            done += ", routes loaded"
        return done

    def why(self, current: Running, ports: list[int]) -> str:
        if current.image != self.manifest.proxy.image:
            return f"image {current.image} -> {self.manifest.proxy.image}"
        added, removed = sorted(set(ports) - current.ports), sorted(current.ports - set(ports))
        parts = [f"port {p} added" for p in added] + [f"port {p} removed" for p in removed]
        return ", ".join(parts) or "service aliases changed"

    def prepare_folders(self) -> None:
        """admin/ (0700: whoever reaches its socket controls the proxy), config/ (initial config), data/."""
        admin, conf, data = (posixpath.join(self.root, part) for part in ("admin", "config", "data"))
        script = 'umask 077 && mkdir -p -- "$1" "$2" "$3" && chmod 700 -- "$1"'
        self.target.run(["sh", "-c", script, "sh", admin, conf, data], timeout=60, check=True)
        initial = pc.dumps(pc.config(self.desired_apps()))
        self.target.put_file(posixpath.join(conf, posixpath.basename(pc.INITIAL_CONFIG)), initial, mode=0o600)

    def run(self, ports: list[int], image: str | None = None) -> None:
        ids = self.target.run(["sh", "-c", 'printf "%s:%s" "$(id -u)" "$(id -g)"'], timeout=30, check=True)
        args = ["docker", "run", "-d", "--name", self.name, "--restart", "unless-stopped"]
        args += ["--network", self.manifest.target.network, "--user", ids.stdout.strip()]
        args += ["--label", f"wfgen.project={self.manifest.project.name}", "--label", "wfgen.role=proxy"]
        for service in proxied(self.manifest):
            args += ["--network-alias", service.name]  # `<service>:<port>` inside the network: the live one
        for port in ports:
            args += ["-p", f"{port}:{port}"]
        for part, inside in (("admin", pc.ADMIN_DIR), ("config", pc.CONFIG_DIR), ("data", pc.DATA_DIR)):
            args += ["-v", f"{posixpath.join(self.root, part)}:{inside}"]
        args += ["-e", f"XDG_CONFIG_HOME={pc.CONFIG_DIR}", "-e", f"XDG_DATA_HOME={pc.DATA_DIR}"]
        args += ["-e", f"HOME={pc.DATA_DIR}", "--entrypoint", "caddy", image or self.manifest.proxy.image]
        args += ["run", "--resume", "--config", pc.INITIAL_CONFIG]
        result = self.target.run(args, timeout=300)
        if result.returncode != 0:
            self.target.run(["docker", "rm", "-f", self.name], timeout=60)
            raise ProxyError(f"cannot start {self.name}: {docker_error(result.stderr)[:300]}")

    # --- the admin API ---

    def admin(self, method: str, path: str, body: pc.JSON | None = None, *, check: bool = True) -> str:
        argv, data = pc.admin_request(self.socket, method, path, body)
        result = self.target.run(argv, input=data, timeout=pc.CURL_TIMEOUT_S + 20)
        if check and result.returncode != 0:
            detail = (result.stdout.strip() or result.stderr.strip() or "no answer")[:300]
            raise ProxyError(f"proxy admin {method} {path}: {detail}")
        return result.stdout

    def wait_admin(self) -> None:
        deadline = time.monotonic() + ADMIN_WAIT_S
        for _ in range(1000):
            argv, _ = pc.admin_request(self.socket, "GET", "/config/")
            if self.target.run(argv, timeout=pc.CURL_TIMEOUT_S + 20).returncode == 0:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        raise ProxyError(f"{self.name} does not answer on its admin socket within {ADMIN_WAIT_S:g} s")

    def desired_apps(self) -> pc.JSON:
        settings = self.manifest.proxy
        return pc.apps(
            routes(self.manifest),
            http_port=settings.http_port,
            https_port=settings.https_port,
            tls=settings.tls,
        )

    def load_routes(self) -> bool:
        """Make the live config's apps what the manifest implies, in one request; False when already so."""
        wanted = self.desired_apps()
        current = json.loads(self.admin("GET", "/config/apps") or "null")
        if current == wanted:
            return False
        self.admin("POST", "/config/apps", wanted)
        return True


def docker_error(stderr: str) -> str:
    """The line of a failed `docker run` that says what went wrong: newer clients end with a hint to run
    `docker run --help`, which names neither the port nor the container."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    said = [line for line in lines if not line.startswith("Run 'docker")]
    return (said or lines or ["no output"])[-1]

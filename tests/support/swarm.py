"""A real multi-node Docker Swarm on this machine: one dockerd per network namespace, joined by a bridge.

Layout (nothing gets an address in the caller's namespace):

    netns <prefix>-br : bridge br0 (SUBNET .2) + Debian's docker-registry on .2:5000
    netns <prefix>-n1 : eth0 (SUBNET .11), dockerd, swarm manager
    netns <prefix>-nK : eth0 (SUBNET .1K), dockerd, swarm worker

The test process reaches each daemon through its unix socket on the filesystem (`Node.docker_host`) and sends
network traffic from inside a namespace (`Swarm.exec_in`). Every daemon has a private data/exec root, vfs
storage, its own cgroup parent, the registry as an insecure registry and a DNS server that refuses at once
(its own address: nothing listens on port 53), so no lookup waits on a resolver that cannot answer here.

Usable from a pytest session fixture (`skip_or_fail` on missing infrastructure) and from a benchmark script
(`Swarm(...).start()` raises `SwarmUnavailable` with the reason). `close()` tears everything down, also after
a failure half way through `start()`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.caddy import CADDY, build_image, caddy_version
from tests.support.docker import docker
from tests.support.fixture_service import BUSYBOX, dockerfile

SUBNET = "10.211.0"  # the nodes' link; lives only inside the lab's namespaces
LOCAL_POOL = "base=10.212.0.0/16,size=24"  # each daemon's bridge networks (docker0, docker_gwbridge)
SWARM_POOL = "10.213.0.0/16"  # overlay networks
REGISTRY_PORT = 5000
REGISTRY_BIN = Path("/usr/bin/docker-registry")
DOCKERD_TIMEOUT_S = 60.0
JOIN_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0
# Run in the daemon's private mount namespace before it starts: its resolv.conf, and a tmpfs where dockerd
# 20.10 writes the overlay load balancers' hosts/resolv.conf whatever its --data-root (libnetwork's fixed
# /var/lib/docker/network/files), so the nodes neither share nor leave those files.
LAUNCH = (
    'mount --bind "$0" /etc/resolv.conf && mkdir -p /var/lib/docker/network/files'
    ' && mount -t tmpfs -o size=16m,mode=0755 wfsw /var/lib/docker/network/files && exec "$@"'
)
SET_HOSTNAME = "import os, socket, sys; socket.sethostname(sys.argv[1]); os.execvp(sys.argv[2], sys.argv[2:])"
WEB_PORT = 3000  # what the lab's busybox images serve on
# Exec form: a scratch image has no /bin/sh, and `docker service create --health-cmd` is always CMD-SHELL.
# Services keep this test and override the timings (--health-interval, ...): the daemon merges the two.
HEALTHCHECK = (
    "HEALTHCHECK --interval=2s --timeout=2s --retries=2 "
    f'CMD ["/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:{WEB_PORT}/health"]\n'
)
# The lab's images, built on the manager and pushed; `Swarm.images` maps each key to a pinned reference.
WEB_VARIANTS = {"web-v1": ("ok", "v1"), "web-v2": ("ok", "v2"), "web-broken": ("broken_health", "broken")}


class SwarmUnavailable(RuntimeError):
    """The machine cannot run the lab (not root, a tool missing, a daemon that would not start)."""


@dataclass
class Node:
    name: str  # "n1"
    netns: str
    address: str
    workdir: Path
    manager: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.workdir / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def cgroup_parent(self) -> str:
        return f"/{self.netns}"


def missing_infrastructure() -> str | None:
    """Why this machine cannot run the lab, or None."""
    if os.geteuid() != 0:
        return "the swarm lab needs root (network namespaces, dockerd)"
    for tool, package in (
        ("ip", "iproute2"),
        ("dockerd", "docker.io"),
        ("docker", "docker.io"),
        ("nsenter", "util-linux"),
    ):
        if shutil.which(tool) is None:
            return f"{tool} not found: apt-get install {package}"
    for path, package in ((REGISTRY_BIN, "docker-registry"), (BUSYBOX, "busybox-static"), (CADDY, "caddy")):
        if not path.is_file():
            return f"{path} not found: apt-get install {package}"
    return None


def run(argv: Sequence[str], *, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if check and proc.returncode != 0:
        raise SwarmUnavailable(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    return proc


@dataclass
class Swarm:
    """`with Swarm(node_count=3) as swarm: ...`; `swarm.nodes[0]` is the manager."""

    node_count: int = 3
    prefix: str = field(default_factory=lambda: f"wfsw{secrets.token_hex(3)}")
    log: bool = True
    nodes: list[Node] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)  # key -> registry/repo@sha256:...
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase of start()
    workdir: Path = field(init=False)
    _namespaces: list[str] = field(default_factory=list)
    _registry: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.node_count <= 9:
            raise ValueError(f"node_count must be 1..9, not {self.node_count}")
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))  # short: unix socket paths

    # -- what tests use ----------------------------------------------------------------------------------

    @property
    def bridge_netns(self) -> str:
        return f"{self.prefix}-br"

    @property
    def registry(self) -> str:
        """host:port of the lab's registry, reachable from every node (and every node's containers)."""
        return f"{SUBNET}.2:{REGISTRY_PORT}"

    @property
    def manager(self) -> Node:
        return self.nodes[0]

    @property
    def manager_host(self) -> str:
        return self.manager.docker_host

    @property
    def workers(self) -> list[Node]:
        return self.nodes[1:]

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def docker(
        self, *args: str, node: Node | None = None, timeout: float = 120, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The docker CLI against `node`'s daemon (the manager by default)."""
        return docker((node or self.manager).docker_host, *args, timeout=timeout, input=input)

    def exec_in(
        self, node: Node | str, argv: Sequence[str], *, timeout: float = 60, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run argv inside a node's network namespace (a node, a node name, or "br" for the bridge's)."""
        netns = self._netns_of(node)
        return run(["ip", "netns", "exec", netns, *argv], timeout=timeout, check=check)

    def popen_in(self, node: Node | str, argv: Sequence[str]) -> subprocess.Popen[str]:
        """Start argv inside a node's network namespace; stdout/stderr are pipes (text)."""
        return subprocess.Popen(
            ["ip", "netns", "exec", self._netns_of(node), *argv],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )  # fmt: skip

    def http_get(self, node: Node | str, url: str, *, timeout: float = 5) -> tuple[int, str]:
        """(status, body) of GET url sent from inside a namespace; status 0 when nothing answered."""
        code = (
            "import sys, urllib.request\n"
            "try:\n"
            f"    r = urllib.request.urlopen(sys.argv[1], timeout={timeout!r})\n"
            "    print(r.status); print(r.read().decode('utf-8', 'replace'), end='')\n"
            "except urllib.error.HTTPError as e:\n"
            "    print(e.code)\n"
            "except Exception as e:\n"
            "    print(0); print(repr(e), end='')\n"
        )
        proc = self.exec_in(node, [sys.executable, "-c", code, url], timeout=timeout + 30)
        status, _, body = proc.stdout.partition("\n")
        return (int(status) if status.strip().isdigit() else 0), body

    def stop_node(self, node: Node | str) -> None:
        """A node dies as when it loses power: its link goes down, then its dockerd, containerd and containers
        are killed (SIGKILL). The link first: killing takes a moment, and a dying node must not answer."""
        target = node if isinstance(node, Node) else self.node(node)
        self._link(target, "down")
        self._kill_node(target, grace_s=0)

    def start_node(self, node: Node | str) -> None:
        """Bring a stopped node back; it rejoins the swarm from its data root."""
        target = node if isinstance(node, Node) else self.node(node)
        self._link(target, "up")
        self._start_dockerd(target)
        self._wait_engine(target)

    def disconnect(self, node: Node | str) -> None:
        """Cut a node's link (its daemon keeps running, unreachable): what a network partition looks like."""
        self._link(node, "down")

    def reconnect(self, node: Node | str) -> None:
        self._link(node, "up")

    def node_states(self) -> dict[str, tuple[str, str, str]]:
        """hostname -> (Status.State, Spec.Availability, ManagerStatus.Leader or role), from the manager."""
        ids = self.docker("node", "ls", "-q").stdout.split()
        proc = self.docker("node", "inspect", *ids)
        states = {}
        for item in json.loads(proc.stdout or "[]"):
            role = "leader" if item.get("ManagerStatus", {}).get("Leader") else item["Spec"]["Role"]
            states[item["Description"]["Hostname"]] = (
                item["Status"]["State"],
                item["Spec"]["Availability"],
                role,
            )
        return states

    # -- lifecycle -----------------------------------------------------------------------------------------

    def __enter__(self) -> Swarm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Swarm:
        """Namespaces, registry, daemons, swarm, images; tears down what it made when a step fails."""
        reason = missing_infrastructure()
        if reason:
            self.close()
            raise SwarmUnavailable(reason)
        try:
            self._timed("network", self._make_network)
            self._timed("registry", self._start_registry)
            self._timed("daemons", self._start_daemons)
            self._timed("swarm", self._form_swarm)
            self._timed("images", self._push_images)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop daemons and registry, kill leftovers, delete namespaces, cgroups and files. Idempotent."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()  # all at once: each may take seconds to stop its containers
        for node in self.nodes:
            self._kill_node(node, grace_s=STOP_GRACE_S)
        if self._registry is not None:
            _stop(self._registry, grace_s=5)
            self._registry = None
        for netns in reversed(self._namespaces):
            self._kill_netns_processes(netns)
            run(["ip", "netns", "delete", netns], check=False)
        self._namespaces.clear()
        for node in self.nodes:
            _remove_cgroups(node.cgroup_parent)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- the steps of start() -----------------------------------------------------------------------------

    def _timed(self, phase: str, step: Callable[[], None]) -> None:
        started = time.monotonic()
        step()
        self.timings[phase] = round(time.monotonic() - started, 2)
        self._say(f"{phase}: {self.timings[phase]:.1f} s")

    def _say(self, text: str) -> None:
        if self.log:
            print(f"[swarm {self.prefix}] {text}", file=sys.stderr, flush=True)

    def _add_netns(self, name: str) -> None:
        run(["ip", "netns", "add", name])
        self._namespaces.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])

    def _make_network(self) -> None:
        bridge = self.bridge_netns
        self._add_netns(bridge)
        run(["ip", "-n", bridge, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", bridge, "addr", "add", f"{SUBNET}.2/24", "dev", "br0"])
        run(["ip", "-n", bridge, "link", "set", "br0", "up"])
        for index in range(1, self.node_count + 1):
            name = f"n{index}"
            node = Node(
                name=name, netns=f"{self.prefix}-{name}", address=f"{SUBNET}.{10 + index}",
                workdir=self.workdir / name, manager=index == 1,
            )  # fmt: skip
            node.workdir.mkdir()
            self._add_netns(node.netns)
            run(["ip", "-n", bridge, "link", "add", f"p{index}", "type", "veth", "peer", "name", "eth0",
                 "netns", node.netns])  # fmt: skip
            run(["ip", "-n", bridge, "link", "set", f"p{index}", "master", "br0", "up"])
            run(["ip", "-n", node.netns, "addr", "add", f"{node.address}/24", "dev", "eth0"])
            run(["ip", "-n", node.netns, "link", "set", "eth0", "up"])
            # mounted over /etc/resolv.conf for the daemon: lookups fail at once instead of timing out
            (node.workdir / "resolv.conf").write_text(
                f"nameserver {node.address}\noptions timeout:1 attempts:1\n"
            )
            self.nodes.append(node)

    def _start_registry(self) -> None:
        config = self.workdir / "registry.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.workdir / 'registry'}\n"
            f"http:\n  addr: {self.registry}\n"
        )
        with (self.workdir / "registry.log").open("wb") as log:
            self._registry = subprocess.Popen(
                ["ip", "netns", "exec", self.bridge_netns, str(REGISTRY_BIN), "serve", str(config)],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self._registry.poll() is None:
            if self.http_get("br", f"http://{self.registry}/v2/", timeout=2)[0] == 200:
                return
            time.sleep(0.3)
        tail = (self.workdir / "registry.log").read_text(errors="replace")[-500:]
        raise SwarmUnavailable(f"docker-registry did not answer at {self.registry} within 20 s: {tail}")

    def _start_dockerd(self, node: Node) -> None:
        node.socket.unlink(missing_ok=True)
        (node.workdir / "docker.pid").unlink(missing_ok=True)  # a killed daemon's: it is not running
        argv = [
            # Not `ip netns exec`: it mounts a fresh /sys, hiding the cgroup mounts dockerd needs. A private
            # mount namespace keeps the daemon's mounts (netns files, shm) to itself; its own UTS namespace
            # gives the node its name (swarm names a node after its hostname).
            "unshare", "--mount", "--uts", "--propagation", "slave", "--",
            "nsenter", f"--net=/run/netns/{node.netns}", "--",
            "sh", "-c", LAUNCH, str(node.workdir / "resolv.conf"),
            sys.executable, "-c", SET_HOSTNAME, node.name, "dockerd",
            "--storage-driver=vfs", "--data-root", str(node.workdir / "data"),
            "--exec-root", str(node.workdir / "exec"), "--pidfile", str(node.workdir / "docker.pid"),
            "--host", node.docker_host, "--insecure-registry", self.registry,
            "--default-address-pool", LOCAL_POOL, "--dns", node.address,
            "--cgroup-parent", node.cgroup_parent, "--log-level", "warn",
        ]  # fmt: skip
        log = (node.workdir / "dockerd.log").open("ab")
        with log:
            node.process = subprocess.Popen(
                argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
            )

    def _wait_engine(self, node: Node) -> None:
        deadline = time.monotonic() + DOCKERD_TIMEOUT_S
        while time.monotonic() < deadline:
            if node.process is not None and node.process.poll() is not None:
                break
            if node.socket.exists() and self.docker("version", node=node, timeout=10).returncode == 0:
                return
            time.sleep(0.5)
        tail = (node.workdir / "dockerd.log").read_text(errors="replace")[-1500:]
        raise SwarmUnavailable(
            f"dockerd of {node.name} did not answer within {DOCKERD_TIMEOUT_S:g} s: {tail}"
        )

    def _start_daemons(self) -> None:
        for node in self.nodes:
            self._start_dockerd(node)
        for node in self.nodes:
            self._wait_engine(node)

    def _form_swarm(self) -> None:
        manager = self.manager
        self._check(
            "swarm", "init", "--advertise-addr", manager.address, "--listen-addr", f"{manager.address}:2377",
            "--default-addr-pool", SWARM_POOL, "--default-addr-pool-mask-length", "24",
            "--dispatcher-heartbeat", "2s", "--task-history-limit", "2",
        )  # fmt: skip
        token = self._check("swarm", "join-token", "-q", "worker").stdout.strip()
        for worker in self.workers:
            self._check(
                "swarm", "join", "--token", token, "--advertise-addr", worker.address,
                "--listen-addr", f"{worker.address}:2377", f"{manager.address}:2377", node=worker,
                timeout=JOIN_TIMEOUT_S,
            )  # fmt: skip
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while time.monotonic() < deadline:
            states = self.node_states()
            if len(states) == len(self.nodes) and all(s[0] == "ready" for s in states.values()):
                return
            time.sleep(0.5)
        raise SwarmUnavailable(f"nodes not ready within {JOIN_TIMEOUT_S:g} s: {self.node_states()}")

    def _push_images(self) -> None:
        with tempfile.TemporaryDirectory(prefix="wfsw-img-") as tmp:
            for key, (variant, marker) in WEB_VARIANTS.items():
                context = Path(tmp) / key
                (context / "www").mkdir(parents=True)
                shutil.copy2(BUSYBOX, context / "busybox")
                (context / "Dockerfile").write_text(dockerfile(variant, WEB_PORT, 0.0) + HEALTHCHECK)
                (context / "www" / "version").write_text(f"{marker}\n")
                if variant != "broken_health":
                    (context / "www" / "health").write_text("ok\n")
                self.images[key] = self.build_and_push(f"wfsw-web:{marker}", context)
        tag = f"{self.registry}/wfsw-caddy:{caddy_version()}"
        build_image(self.manager_host, tag)
        self.images["caddy"] = self.push(tag)

    def build_and_push(self, name: str, context: Path) -> str:
        """Build `context` on the manager as registry/name, push it, return registry/repo@digest."""
        tag = f"{self.registry}/{name}"
        self._check("build", "-q", "-t", tag, str(context), timeout=600)
        return self.push(tag)

    def push(self, tag: str) -> str:
        self._check("push", "-q", tag, timeout=600)
        digests = self._check("image", "inspect", "--format", "{{json .RepoDigests}}", tag).stdout
        repo = tag.rsplit(":", 1)[0]
        for ref in json.loads(digests):
            if ref.startswith(f"{repo}@"):
                return str(ref)
        raise SwarmUnavailable(f"no digest for {tag} after pushing it: {digests.strip()}")

    def _check(
        self, *args: str, node: Node | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = self.docker(*args, node=node, timeout=timeout)
        if proc.returncode != 0:
            raise SwarmUnavailable(f"docker {' '.join(args[:3])} on {(node or self.manager).name} failed: "
                                   f"{proc.stderr.strip()[-800:]}")  # fmt: skip
        return proc

    # -- teardown pieces -----------------------------------------------------------------------------------

    def _netns_of(self, node: Node | str) -> str:
        if isinstance(node, Node):
            return node.netns
        return self.bridge_netns if node == "br" else self.node(node).netns

    def _link(self, node: Node | str, state: str) -> None:
        index = (node if isinstance(node, Node) else self.node(node)).name[1:]
        run(["ip", "-n", self.bridge_netns, "link", "set", f"p{index}", state])

    def _kill_node(self, node: Node, grace_s: float) -> None:
        if node.process is not None and grace_s > 0:
            _stop(node.process, grace_s)
        self._kill_netns_processes(node.netns)  # dockerd, containerd, shims: in the node's namespace
        _kill_cgroups(node.cgroup_parent)  # the containers: in their own namespaces, under this cgroup
        if node.process is not None:
            if node.process.poll() is None:
                node.process.kill()
            node.process.wait(timeout=30)
            node.process = None

    def _kill_netns_processes(self, netns: str) -> None:
        for _ in range(10):
            pids = [int(pid) for pid in run(["ip", "netns", "pids", netns], check=False).stdout.split()]
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.3)


def _stop(process: subprocess.Popen[bytes], grace_s: float) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)


CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_dirs(parent: str) -> list[Path]:
    """Every cgroup under `parent` in every v1 hierarchy (or the v2 tree), deepest first."""
    roots = [CGROUP_ROOT / parent.strip("/")]
    roots += [hierarchy / parent.strip("/") for hierarchy in CGROUP_ROOT.iterdir() if hierarchy.is_dir()]
    found = [path for root in roots if root.is_dir() for path in [root, *root.rglob("*")] if path.is_dir()]
    return sorted(set(found), key=lambda path: len(path.parts), reverse=True)


def _kill_cgroups(parent: str) -> None:
    for _ in range(10):
        pids: set[int] = set()
        for folder in _cgroup_dirs(parent):
            try:
                pids.update(int(pid) for pid in (folder / "cgroup.procs").read_text().split())
            except OSError:
                continue
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.3)


def _remove_cgroups(parent: str) -> None:
    _kill_cgroups(parent)
    for folder in _cgroup_dirs(parent):
        try:
            folder.rmdir()
        except OSError:
            pass

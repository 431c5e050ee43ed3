"""A real OpenSSH server on 127.0.0.1 for tests, with throwaway host and client keys."""

from __future__ import annotations

import getpass
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.docker import candidate_docker_host
from tests.support.ports import free_port
from tests.support.processes import stop_process
from tests.support.requires import require_executable, skip_or_fail

SSHD = "/usr/sbin/sshd"
HINT = "apt-get install openssh-server openssh-client"


@dataclass
class SshServer:
    host: str
    port: int
    user: str
    key_path: Path
    private_key: str
    known_hosts: str
    workdir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    netns: str | None = None  # the network namespace the client runs in to reach it (None: this one)

    def target_env(self, prefix: str = "VPS") -> dict[str, str]:
        """Env vars for an ssh target: PREFIX_HOST, PREFIX_USER, PREFIX_SSH_KEY, PREFIX_KNOWN_HOSTS."""
        return {
            f"{prefix}_HOST": self.host,
            f"{prefix}_USER": self.user,
            f"{prefix}_SSH_KEY": self.private_key,
            f"{prefix}_KNOWN_HOSTS": self.known_hosts,
        }

    def target_config(self, prefix: str = "VPS", **overrides: object) -> dict[str, object]:
        """The services.toml `[target]` table pointing at this server via target_env(prefix)."""
        config: dict[str, object] = {
            "kind": "ssh",
            "host_env": f"{prefix}_HOST",
            "user_env": f"{prefix}_USER",
            "ssh_key_env": f"{prefix}_SSH_KEY",
            "known_hosts_env": f"{prefix}_KNOWN_HOSTS",
            "port": self.port,
            "connect_timeout_s": 5,
        }
        config.update(overrides)
        return config

    def ssh_argv(self, *remote: str) -> list[str]:
        """An ssh command line (pinned host key, test key) that runs `remote` on this server."""
        inside = ["ip", "netns", "exec", self.netns] if self.netns else []
        return [
            *inside, "ssh", "-F", "/dev/null", "-p", str(self.port), "-i", str(self.key_path),
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.workdir / 'known_hosts'}",
            f"{self.user}@{self.host}", *remote,
        ]  # fmt: skip

    def run(self, *remote: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.ssh_argv(*remote), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )

    @property
    def log(self) -> str:
        path = self.workdir / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wfgen-test", "-f", str(path)],
        check=True, capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _config(workdir: Path, port: int, docker_host: str | None, host: str) -> str:
    lines = [
        f"Port {port}",
        f"ListenAddress {host}",
        f"HostKey {workdir / 'host_ed25519'}",
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
        f"PidFile {workdir / 'sshd.pid'}",
        "StrictModes no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        # Parallel deploys open several connections at once; the default 10:30:100 drops some at random.
        "MaxStartups 100",
        "MaxSessions 100",
        "LogLevel VERBOSE",
    ]
    # SHLVL=1: bash, root's login shell, runs ~/.bashrc before every command sshd starts unless it is nested. A
    # VPS's stock ~/.bashrc returns at once when not interactive; a machine whose ~/.bashrc starts a version
    # manager pays 0.1 s of CPU for each of the suite's thousands of ssh commands (measured: 110 ms against 3).
    env = ["SHLVL=1", *([f"DOCKER_HOST={docker_host}"] if docker_host else [])]
    lines.append(f"SetEnv {' '.join(env)}")
    return "\n".join(lines) + "\n"


def start_sshd(
    workdir: Path,
    docker_host: str | None = None,
    timeout: float = 20.0,
    *,
    netns: tuple[str, str] | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
) -> SshServer:
    """Start sshd on a free 127.0.0.1 port and wait until a real `ssh ... true` succeeds.

    netns=(server's, client's): sshd runs in the first network namespace, listening on `host:port`, and the
    client reaches it from the second (as a machine reaches another on their network)."""
    require_executable(SSHD, HINT)
    require_executable("ssh", HINT)
    require_executable("ssh-keygen", HINT)
    try:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        skip_or_fail(f"sshd needs /run/sshd: {exc}")
    workdir.mkdir(parents=True, exist_ok=True)
    _keygen(workdir / "host_ed25519")
    _keygen(workdir / "client_ed25519")
    (workdir / "authorized_keys").write_text((workdir / "client_ed25519.pub").read_text())
    port = port or free_port()
    host_pub = (workdir / "host_ed25519.pub").read_text().split()
    known_hosts = f"[{host}]:{port} {host_pub[0]} {host_pub[1]}\n"
    (workdir / "known_hosts").write_text(known_hosts)
    config = workdir / "sshd_config"
    config.write_text(_config(workdir, port, docker_host, host))
    inside = ["ip", "netns", "exec", netns[0]] if netns else []
    with (workdir / "sshd.log").open("wb") as log:
        process = subprocess.Popen([*inside, SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    server = SshServer(
        host=host,
        port=port,
        user=getpass.getuser(),
        key_path=workdir / "client_ed25519",
        private_key=(workdir / "client_ed25519").read_text(),
        known_hosts=known_hosts,
        workdir=workdir,
        process=process,
        netns=netns[1] if netns else None,
    )
    _wait_ready(server, timeout)
    return server


def _wait_ready(server: SshServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.poll() is not None:
            break
        try:
            proc = server.run("true", timeout=10)
        except subprocess.TimeoutExpired:
            continue
        if proc.returncode == 0:
            return
        last = proc.stderr.strip()
        time.sleep(0.2)
    server.stop()
    skip_or_fail(f"sshd did not accept a login within {timeout:g} s: {last or server.log[-500:]}")


BASE_TOOLS = ("sh", "env", "true", "printf", "cat", "df", "mkdir", "rm", "date", "grep", "docker")


def start_sshd_with_tools(workdir: Path, names: tuple[str, ...] = BASE_TOOLS) -> SshServer:
    """A real sshd whose sessions see a PATH with only these tools (a forced command in authorized_keys)."""
    server = start_sshd(workdir, docker_host=candidate_docker_host())
    tools = workdir / "bin"
    tools.mkdir()
    for name in names:
        found = shutil.which(name)
        if found:
            (tools / name).symlink_to(found)
    force_setup(server, f"PATH={tools}; export PATH")
    return server


def start_sshd_with_home(workdir: Path) -> SshServer:
    """A real sshd whose sessions have HOME=<workdir>/home/<user>: a home path that names the user, as on a VPS."""
    server = start_sshd(workdir, docker_host=candidate_docker_host())
    home = workdir / "home" / server.user
    home.mkdir(parents=True)
    force_setup(server, f"HOME={home}; export HOME")
    return server


def force_setup(server: SshServer, setup: str) -> None:
    """Run the shell commands `setup` before every session's own command (a forced command in authorized_keys)."""
    keys = server.workdir / "authorized_keys"
    forced = f'command="{setup}; exec sh -c \\"$SSH_ORIGINAL_COMMAND\\""'
    keys.write_text(f"{forced} {keys.read_text().strip()}\n")

"""Where deploy commands run: this machine, or a host reached over SSH. One API, two transports:
open_target picks the manifest's; the API and the local transport are in transport.py.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import config, steplib
from .transport import (
    CommandResult,
    LocalTarget,
    Target,
    TargetError,
    decode,
    last_line,
)

SSH_FAILED = 255


# Writes stdin to "$1" atomically with mode "$2"; paths arrive as arguments, never spliced into the script.
_PUT_FILE_SCRIPT = (
    'umask 077 && mkdir -p -- "$(dirname -- "$1")" && cat > "$1.wfgen-tmp" '
    '&& chmod "$2" "$1.wfgen-tmp" && mv -f -- "$1.wfgen-tmp" "$1"'
)


@dataclass(frozen=True)
class SshSettings:
    host: str
    user: str
    port: int
    private_key: str
    known_hosts: str | None
    connect_timeout: float = 10
    host_env: str = "host"  # the names of the variables holding host and user: what we print instead
    user_env: str = "user"


def normalize_key(text: str) -> str:
    """Accept keys pasted with literal `\\n`, CRLF, or without the final newline."""
    if "\n" not in text.strip() and "\\n" in text:
        text = text.replace("\\n", "\n")
    return text.replace("\r\n", "\n").strip() + "\n"


def _cleanup_dir(path: str, control_args: list[str]) -> None:
    """Stop the shared connection (if any) and delete the key, known-hosts file and control socket."""
    if Path(path, "cm").exists():
        try:
            subprocess.run(
                ["ssh", *control_args, "-O", "exit", "wfgen-target"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            pass  # the master exits by itself after ControlPersist
    shutil.rmtree(path, ignore_errors=True)


class SshTarget(Target):
    """Commands run on a remote host through the system OpenSSH client, multiplexed over one connection."""

    kind = "ssh"

    def __init__(self, settings: SshSettings):
        if settings.host.startswith("-") or settings.user.startswith("-"):
            raise steplib.UsageError("target: host and user must not start with '-'")
        self.settings = settings
        # Host and user come from secrets: name the variables, never print their values.
        self.description = f"${settings.user_env}@${settings.host_env}:{settings.port}"
        self._dir = tempfile.mkdtemp(prefix=steplib.runner_prefix("ssh"))
        key_file = Path(self._dir, "id")
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(normalize_key(settings.private_key))
        self.key_path = str(key_file)
        self._base = self._base_args()
        self._finalizer = weakref.finalize(self, _cleanup_dir, self._dir, self._base)
        self._home: str | None = None
        self._master_lock = threading.Lock()

    def _base_args(self) -> list[str]:
        s = self.settings
        args = ["-F", "/dev/null", "-p", str(s.port), "-l", s.user, "-i", self.key_path]
        opts = {
            "BatchMode": "yes",
            "ConnectTimeout": str(max(1, round(s.connect_timeout))),
            "ServerAliveInterval": "15",
            "ServerAliveCountMax": "3",
            "IdentitiesOnly": "yes",
            "LogLevel": "ERROR",
            "ControlPath": str(Path(self._dir, "cm")),
        }
        if s.known_hosts is None:
            opts.update(
                StrictHostKeyChecking="no", UserKnownHostsFile="/dev/null", GlobalKnownHostsFile="/dev/null"
            )
        else:
            kh = Path(self._dir, "known_hosts")
            kh.write_text(normalize_key(s.known_hosts), encoding="utf-8")
            opts.update(
                StrictHostKeyChecking="yes", UserKnownHostsFile=str(kh), GlobalKnownHostsFile="/dev/null"
            )
        for name, value in opts.items():
            args += ["-o", f"{name}={value}"]
        return args

    @property
    def _control_socket(self) -> Path:
        return Path(self._dir, "cm")

    def _ensure_master(self) -> None:
        # ControlMaster=auto would fork the persistent master with our captured stderr pipe still open,
        # so the first command would block until ControlPersist expires; start it detached instead.
        with self._master_lock:
            if not self._control_socket.exists():
                self._start_master()

    def _start_master(self) -> None:
        with tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.run(
                    ["ssh", *self._base, "-o", "ControlMaster=yes", "-o", "ControlPersist=60", "-f", "-N",
                     self.settings.host],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                    timeout=self.settings.connect_timeout + 20, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise TargetError(f"cannot reach {self.description}: timed out") from None
            err.seek(0)
            message = self.redact(last_line(decode(err.read())))
        if proc.returncode != 0:
            raise TargetError(
                f"cannot reach {self.description}: {message or f'ssh exited {proc.returncode}'}"
            )

    def _command(
        self, argv: list[str], env: dict[str, str] | None
    ) -> tuple[list[str], dict[str, str] | None]:
        self._ensure_master()
        remote = shlex.join(["env", *(f"{k}={v}" for k, v in env.items()), *argv] if env else argv)
        return ["ssh", *self._base, "-o", "ControlMaster=no", self.settings.host, remote], None

    def _check_transport(self, result: CommandResult) -> None:
        if result.returncode == SSH_FAILED and not self._control_socket.exists():
            detail = self.redact(last_line(result.stderr))
            raise TargetError(f"lost connection to {self.description}: {detail}")

    def redact(self, text: str) -> str:
        """The home directory (once known) becomes `~`, the host and user the names of their variables.

        Whole words only: a user named `deploy` must not turn "deployed" into "$VPS_USERed"."""
        for value, name in (
            (self._home if self._home and len(self._home) > 1 else "", "~"),
            (self.settings.host, f"${self.settings.host_env}"),
            (self.settings.user, f"${self.settings.user_env}"),
        ):
            if value:
                text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", name.replace("\\", r"\\"), text)
        return text

    def home_path(self, path: str) -> str:
        if path.startswith("/"):
            return path
        if self._home is None:
            result = self.run(["sh", "-c", 'printf %s "$HOME"'], timeout=30, check=True)
            self._home = result.stdout.strip() or "."
        relative = path[2:] if path.startswith("~/") else path
        return f"{self._home.rstrip('/')}/{relative}" if relative not in ("", "~") else self._home

    def put_file(self, remote_path: str, data: bytes, mode: int = 0o600) -> None:
        argv = ["sh", "-c", _PUT_FILE_SCRIPT, "sh", self.home_path(remote_path), format(mode, "o")]
        self.run(argv, input=data, timeout=60, check=True)

    def close(self) -> None:
        self._finalizer()


def _require(environ: Mapping[str, str], name: str | None, key: str) -> str:
    if not name:
        raise steplib.UsageError(f"target.{key} is not set in the manifest")
    value = environ.get(name, "")
    if not value.strip():
        raise steplib.UsageError(f"environment variable {name} is not set (target.{key})")
    return value


def open_target(target: config.Target, environ: Mapping[str, str] = os.environ) -> Target:
    """The manifest's target; a missing env var is a UsageError naming the variable, never its value."""
    if target.kind == "local" or target.manager == "local":
        return LocalTarget()
    assert target.port is not None  # config_load.load: set for kind 'ssh' and a swarm's ssh manager
    insecure = target.insecure_ignore_host_key
    settings = SshSettings(
        host=_require(environ, target.host_env, "host_env").strip(),
        user=_require(environ, target.user_env, "user_env").strip(),
        port=target.port,
        private_key=_require(environ, target.ssh_key_env, "ssh_key_env"),
        known_hosts=None if insecure else _require(environ, target.known_hosts_env, "known_hosts_env"),
        connect_timeout=float(target.connect_timeout_s),
        host_env=str(target.host_env),
        user_env=str(target.user_env),
    )
    if insecure:
        steplib.error(
            "target",
            f"warning: insecure_ignore_host_key is true: the host key of ${settings.host_env} is not checked",
        )
    return SshTarget(settings)

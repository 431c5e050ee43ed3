"""Running commands where deploys happen: the Target interface every transport implements, its results and
errors, and the local transport (this machine). Stdlib only: vendored with the step scripts.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

TIMED_OUT = 124


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class TargetError(Exception):
    """The target cannot be reached or refuses us; the message is one line without secrets."""


class CommandFailed(Exception):
    """A command run with check=True exited non-zero (or timed out: returncode 124)."""

    def __init__(self, argv: list[str], result: CommandResult):
        self.argv = argv
        self.result = result
        detail = last_line(result.stderr) or last_line(result.stdout) or "no output"
        super().__init__(f"{argv[0] if argv else '?'} exited {result.returncode}: {detail}")


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def decode(data: bytes | None) -> str:
    return data.decode("utf-8", errors="replace") if data else ""


class Target:
    """Runs argument lists on the deploy host. Use as a context manager so temp files are removed."""

    kind: str = ""
    description: str = ""

    def run(
        self,
        argv: list[str],
        *,
        input: bytes | None = None,  # noqa: A002 - mirrors subprocess.run
        timeout: float = 60,
        check: bool = False,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        stdin = subprocess.DEVNULL if input is None else None
        return self._execute(argv, env=env, timeout=timeout, check=check, input=input, stdin=stdin)

    def run_stream(
        self,
        argv: list[str],
        *,
        stdin_file: IO[bytes] | None,
        timeout: float,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        """Like run, with stdin read from an open binary file (e.g. a tar piped into `docker build -`)."""
        if stdin_file is None:
            return self._execute(argv, env=env, timeout=timeout, check=False, stdin=subprocess.DEVNULL)
        try:
            stdin_file.fileno()
        except (OSError, AttributeError, ValueError):
            return self._execute(argv, env=env, timeout=timeout, check=False, input=stdin_file.read())
        return self._execute(argv, env=env, timeout=timeout, check=False, stdin=stdin_file)

    def put_file(self, remote_path: str, data: bytes, mode: int = 0o600) -> None:
        raise NotImplementedError

    def home_path(self, path: str) -> str:
        raise NotImplementedError

    def redact(self, text: str) -> str:
        """Text that may name the target, with its secret values (SSH host, user, home) replaced by names."""
        return text

    def close(self) -> None:
        """Nothing to release by default."""

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _command(
        self, argv: list[str], env: dict[str, str] | None
    ) -> tuple[list[str], dict[str, str] | None]:
        raise NotImplementedError

    def _execute(
        self, argv: list[str], *, env: dict[str, str] | None, timeout: float, check: bool, **kwargs: Any
    ) -> CommandResult:
        if not argv:
            raise ValueError("empty command")
        result = self._spawn(argv, env=env, timeout=timeout, **kwargs)
        self._check_transport(result)
        if check and result.returncode != 0:
            raise CommandFailed(argv, result)
        return result

    def _spawn(
        self, argv: list[str], *, env: dict[str, str] | None, timeout: float, **kwargs: Any
    ) -> CommandResult:
        """Run one command through this transport and collect its result (no checks)."""
        command, process_env = self._command(argv, env)
        try:
            proc = subprocess.run(command, capture_output=True, timeout=timeout, env=process_env, **kwargs)
        except subprocess.TimeoutExpired as exc:
            return CommandResult(TIMED_OUT, decode(exc.stdout), f"timed out after {timeout:g} s")
        except FileNotFoundError:
            return CommandResult(127, "", f"{argv[0]}: command not found")
        return CommandResult(proc.returncode, decode(proc.stdout), decode(proc.stderr))

    def _check_transport(self, result: CommandResult) -> None:
        """Raise TargetError when the transport (not the command) failed."""


class LocalTarget(Target):
    """Commands run here, as argument lists, never through a shell."""

    kind = "local"
    description = "local docker"

    def _command(
        self, argv: list[str], env: dict[str, str] | None
    ) -> tuple[list[str], dict[str, str] | None]:
        return list(argv), ({**os.environ, **env} if env else None)

    def home_path(self, path: str) -> str:
        return str(Path.home() / Path(path).expanduser())

    def put_file(self, remote_path: str, data: bytes, mode: int = 0o600) -> None:
        target = Path(self.home_path(remote_path))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            Path(tmp).chmod(mode)
            Path(tmp).replace(target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

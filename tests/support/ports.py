"""Free loopback ports picked at run time (the Docker engine and sshd are shared)."""

from __future__ import annotations

import random
import socket
import time


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 20.0) -> bool:
    """True once host:port accepts a connection; bounded by `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def free_offset(ports: list[int]) -> int:
    """A port offset (a `port_offset` of [environments]) that moves every port to one free a moment ago."""
    for _ in range(200):
        offset = random.randint(1000, 20000)
        moved = [port + offset for port in ports]
        if max(moved) < 65000 and all(_free(port) for port in moved):
            return offset
    raise AssertionError("no free port offset found in 200 tries")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True

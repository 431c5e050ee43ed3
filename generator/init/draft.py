"""What `wfgen init` learned about a project, before it becomes TOML: drafts of services and notes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from generator.manifest.fields import check_env_name, check_health_path

FIRST_FREE_PORT = 3000
MAX_NAME = 63
_NOT_NAME = re.compile(r"[^a-z0-9-]+")
# An HTTP URL on the container itself, as curl and wget probes in healthchecks name it, with or without a
# scheme (`curl --fail localhost:80/health-check`); a port given as a variable is left to the manifest's port.
_LOCAL_URL = re.compile(
    r"(?:(?<=\s)|(?<=^)|(?<=['\"=]))(?:https?://)?(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])"
    r"(?::(?:(?P<port>\d{1,5})|\$\{?\w+\}?))?(?P<path>/[^\s'\"|;&)]*)?(?=[\s'\"|;&)]|$)"
)
_HTTP_CLIENT = re.compile(r"\b(curl|wget)\b")
RESERVED_NAMES = {"proxy": "the project proxy is <project>-proxy"}


@dataclass
class HealthDraft:
    path: str | None = None  # None: no HTTP check found; the manifest gets the default and a comment
    container_port: int | None = None  # the port the probe URL names, when it names one
    interval_s: float | None = None
    timeout_s: float | None = None
    start_grace_s: float | None = None
    retries: int | None = None


@dataclass
class ServiceDraft:
    name: str
    origin: str  # the compose service or folder it came from, named in comments
    path: str
    port: int
    dockerfile: str = "Dockerfile"
    build_target: str | None = None
    container_port: int | None = None
    env: list[str] = field(default_factory=list)
    vars: dict[str, str] = field(default_factory=dict)  # plain configuration values, never a secret's
    health: HealthDraft = field(default_factory=HealthDraft)
    depends_on: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ProjectDraft:
    name: str
    source: str  # how it was made, e.g. "--from-compose compose.yaml", for the header
    services: list[ServiceDraft] = field(default_factory=list)
    tcp: list[str] = field(default_factory=list)
    infrastructure_notes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def secrets(self) -> list[str]:
        return sorted({name for service in self.services for name in service.env})


def sanitize_name(text: str, fallback: str) -> str:
    """A manifest name: lowercase letters, digits and '-', starting with a letter or digit."""
    name = _NOT_NAME.sub("-", text.lower()).strip("-")[:MAX_NAME].rstrip("-")
    return name or fallback


def unique_name(text: str, taken: set[str], fallback: str = "service") -> str:
    base = sanitize_name(text, fallback)
    if base in RESERVED_NAMES:
        base = f"{base}-service"
    name, number = base, 2
    while name in taken:
        suffix = f"-{number}"
        name, number = base[: MAX_NAME - len(suffix)] + suffix, number + 1
    taken.add(name)
    return name


def is_env_name(name: str) -> bool:
    try:
        check_env_name(name)
    except ValueError:
        return False
    return True


def probe_of(command: str) -> tuple[str, int | None] | None:
    """(path, port) of the local URL a curl or wget command probes; None for any other check."""
    if not _HTTP_CLIENT.search(command):
        return None
    found = _LOCAL_URL.search(command)
    if found is None:
        return None
    path = found.group("path") or "/"
    try:
        check_health_path(path)
    except ValueError:
        return None
    port = int(found.group("port")) if found.group("port") else None
    return path, port if port is not None and 1 <= port <= 65535 else None


class PortPool:
    """Host ports handed out so far; a taken or missing port gets the next free one from 3000 upward.
    Reserved ports (the ones the compose file publishes explicitly) go to their owner only."""

    def __init__(self, reserved: dict[int, str] | None = None) -> None:
        self.owner: dict[int, str] = {}
        self.reserved = dict(reserved or {})

    def claim(self, port: int | None, name: str) -> tuple[int, str | None]:
        """The port to use for `name`, and a note when it is not the one asked for."""
        if port is not None and port not in self.owner and self.reserved.get(port, name) == name:
            self.owner[port] = name
            return port, None
        free = FIRST_FREE_PORT
        while free in self.owner or free in self.reserved:
            free += 1
        self.owner[free] = name
        if port is None:
            return free, f"no published port found: port {free} is the next free one from {FIRST_FREE_PORT}"
        owner = self.owner.get(port) or self.reserved[port]
        return free, f"host port {port} is already used by {owner}: moved to {free}"

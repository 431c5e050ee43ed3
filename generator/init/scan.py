"""A folder scan -> a ProjectDraft: each sub-folder holding a Dockerfile becomes a path service."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from generator.errors import InitError
from generator.init.draft import HealthDraft, PortPool, ProjectDraft, ServiceDraft, probe_of, unique_name

ANSWER_HEALTH = "make the service answer GET /health, or change the path"
_INSTRUCTION = re.compile(r"^\s*(EXPOSE|HEALTHCHECK|ARG|ENV)\s+(.*)$", re.IGNORECASE)
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::?-([^}]*))?\}|(\w+))")
_DEFAULT = re.compile(r"^(\w+)=(\S*)")


def draft_from_scan(folder: Path, manifest_dir: Path, project: str, display: str) -> ProjectDraft:
    if not folder.is_dir():
        raise InitError(f"{display}: no such folder")
    try:
        base = PurePosixPath(*folder.resolve().relative_to(manifest_dir.resolve()).parts)
    except ValueError:
        raise InitError(f"{display}: must be inside the folder of the manifest it writes") from None
    draft = ProjectDraft(name=project, source=f"--scan {display}")
    taken: set[str] = set()
    pool = PortPool()
    for child in sorted(p for p in folder.iterdir() if p.is_dir() and (p / "Dockerfile").is_file()):
        draft.services.append(_service(child, base / child.name, taken, pool))
    if not draft.services:
        raise InitError(f"{display}: no sub-folder holds a Dockerfile")
    return draft


def _service(folder: Path, path: PurePosixPath, taken: set[str], pool: PortPool) -> ServiceDraft:
    name = unique_name(folder.name, taken)
    exposed, health = _read_dockerfile(folder / "Dockerfile")
    notes: list[str] = []
    container = exposed or health.container_port
    port, moved = pool.claim(container, name)
    if moved and exposed is None:
        moved = f"no EXPOSE in the Dockerfile: port {port} is the next free one; check the container's port"
    notes += [moved] if moved else []
    if name != folder.name:
        notes.append(f"named {name} in services.toml")
    if health.path is None:
        notes.append(f"no HEALTHCHECK probing an HTTP URL in the Dockerfile: {ANSWER_HEALTH}")
    return ServiceDraft(
        name=name,
        origin=f"folder {path.as_posix()}",
        path=path.as_posix(),
        port=port,
        container_port=container if container is not None and container != port else None,
        health=health,
        notes=notes,
    )


def _read_dockerfile(path: Path) -> tuple[int | None, HealthDraft]:
    """The first port of the first EXPOSE, and the health path of a HEALTHCHECK's curl or wget URL."""
    text = path.read_text(encoding="utf-8", errors="replace").replace("\\\n", " ")
    exposed: int | None = None
    health = HealthDraft()
    defaults: dict[str, str] = {}  # ARG and ENV defaults, so `EXPOSE $PORT` reads as the port it names
    for line in text.splitlines():
        found = _INSTRUCTION.match(line)
        if found is None:
            continue
        word, rest = found.group(1).upper(), _expand(found.group(2), defaults)
        if word in {"ARG", "ENV"}:
            default = _DEFAULT.match(found.group(2).strip())
            if default is not None:
                defaults[default.group(1)] = _expand(default.group(2).strip("\"'"), defaults)
        elif word == "EXPOSE" and exposed is None:
            first = rest.split()[0].split("/")[0] if rest.split() else ""
            exposed = int(first) if first.isdigit() and 1 <= int(first) <= 65535 else None
        elif word == "HEALTHCHECK":
            probe = probe_of(rest)
            if probe is not None:
                health.path, health.container_port = probe
    return exposed, health


def _expand(text: str, defaults: dict[str, str]) -> str:
    """$NAME, ${NAME} and ${NAME:-default} from the ARG and ENV lines above."""

    def value(found: re.Match[str]) -> str:
        name = found.group(1) or found.group(3)
        return defaults.get(name, found.group(2) or found.group(0))

    return _VARIABLE.sub(value, text)

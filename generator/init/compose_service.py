"""One compose service -> a ServiceDraft: its source folder, port, health check, environment, depends_on,
and a note for each key it does not map."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from generator.init import compose_keys as keys
from generator.init.compose_file import ComposeError, line_of, names
from generator.init.draft import RESERVED_NAMES, PortPool, ServiceDraft, sanitize_name

# Keys init reads; any other key of a service is listed as not mapped.
READ = {
    "build",
    "ports",
    "environment",
    "env_file",
    "healthcheck",
    "depends_on",
    "expose",
    "profiles",
    "restart",
}
ANY_LOCAL = {None, "0.0.0.0", "::", ""}
NO_HEALTH = "no HTTP health check found: make the service answer GET /health, or change the path"


@dataclass
class ComposeContext:
    """What every service's mapping needs to know about the whole file."""

    data: Any
    display: str
    compose_dir: Path
    manifest_dir: Path
    wfgen_names: dict[str, str] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)  # image-only service -> its check, or ""
    dropped: dict[str, str] = field(default_factory=dict)  # built service not deployed -> why, in a few words

    def line(self, *loc: str | int) -> int:
        return line_of(self.data, loc)


def service_draft(
    name: str, spec: Mapping[str, Any], pool: PortPool, compose: ComposeContext
) -> ServiceDraft:
    wfgen_name = compose.wfgen_names[name]
    notes: list[str] = []
    if wfgen_name != name:
        why = RESERVED_NAMES.get(sanitize_name(str(name), "service"))
        notes.append(f"named {wfgen_name} in services.toml" + (f": {why}" if why else ""))
    build = keys.read_build(spec["build"])
    folder = source_folder(spec["build"], compose)
    assert folder is not None  # _deployed kept only the services whose build is inside
    notes += build.notes
    health, health_notes = keys.read_healthcheck(spec.get("healthcheck"))
    notes += health_notes
    published, port_notes = _published(spec.get("ports") or [])
    notes += port_notes
    container = published.container if published else _first_expose(spec) or health.container_port
    wanted = published.host if published and published.host else container
    if published and published.host is None:
        notes.append(f"compose publishes {container} on a random host port: port {container} here")
    if not published and container is not None:
        notes.append(f"compose publishes no port: the container's port {container} is the host port here")
    port, moved = pool.claim(wanted, wfgen_name)
    notes += [moved] if moved else []
    if published and published.host_ip not in ANY_LOCAL:
        notes.append(f"ports: the binding to {published.host_ip} is not mapped; wfgen publishes port {port}")
    if health.path is None:
        notes.append(NO_HEALTH)
        if container is None:
            notes.append("no port and no health check: wfgen deploys services that answer HTTP; a worker "
                         f"needs an HTTP health endpoint (GET /health on port {port} here)")  # fmt: skip
    env, plain, env_notes = _environment(name, spec, compose)
    notes += env_notes
    depends_on, dependency_notes = _depends_on(spec.get("depends_on"), compose)
    notes += dependency_notes + _other_keys(spec)
    return ServiceDraft(
        name=wfgen_name,
        origin=f"compose service {name}",
        path=folder,
        port=port,
        dockerfile=build.dockerfile or "Dockerfile",
        build_target=build.target,
        container_port=container if container is not None and container != port else None,
        env=env,
        vars=plain,
        health=health,
        depends_on=depends_on,
        notes=notes,
    )


def _environment(
    name: str, spec: Mapping[str, Any], compose: ComposeContext
) -> tuple[list[str], dict[str, str], list[str]]:
    """(secret names, plain values, notes) from `environment` and the names in `env_file`."""
    env, plain, notes = keys.read_environment(spec.get("environment"))
    if spec.get("env_file") is not None:
        found, file_notes = keys.env_file_names(spec["env_file"], _env_files(name, spec["env_file"], compose))
        env += [item for item in found if item not in plain]
        notes += file_notes
    env, name_notes = keys.usable_env(env)
    return env, plain, notes + name_notes


def _env_files(name: str, value: Any, compose: ComposeContext) -> dict[str, Path]:
    """Each env_file entry and its path; one outside the manifest's folder (symlinks resolved) is refused."""
    root = compose.manifest_dir.resolve()
    found: dict[str, Path] = {}
    for entry in value if isinstance(value, list) else [value]:
        relative = str(entry.get("path", "")) if isinstance(entry, Mapping) else str(entry)
        path = (compose.compose_dir / relative).resolve()
        if not path.is_relative_to(root):
            loc = ("services", name, "env_file")
            message = f"{relative} is outside the project folder; init reads no file outside it"
            raise ComposeError(compose.display, compose.line(*loc), message, loc)
        found[relative] = path
    return found


def source_folder(build: Any, compose: ComposeContext) -> str | None:
    """The build context as a folder relative to the manifest; None when it is a URL or outside."""
    context = keys.read_build(build).context
    if "://" in context or context.startswith("git@"):
        return None
    folder = Path(os.path.normpath(compose.compose_dir.resolve() / context))
    try:
        relative = folder.relative_to(compose.manifest_dir.resolve())
    except ValueError:
        return None
    return PurePosixPath(*relative.parts).as_posix() if relative.parts else "."


def _published(entries: list[Any]) -> tuple[keys.Published | None, list[str]]:
    notes: list[str] = []
    chosen: keys.Published | None = None
    for entry in entries:
        published = keys.read_port(entry)
        if isinstance(published, str):
            notes.append(f"ports {published}")
        elif chosen is None:
            chosen = published
        else:
            notes.append(f"ports: only the first port is mapped, not {published.container}")
    return chosen, notes


def _first_expose(spec: Mapping[str, Any]) -> int | None:
    for entry in spec.get("expose") or []:
        text = str(entry).split("/")[0]
        if text.isdigit() and 1 <= int(text) <= 65535:
            return int(text)
    return None


def _depends_on(value: Any, compose: ComposeContext) -> tuple[list[str], list[str]]:
    entries = dict(value) if isinstance(value, Mapping) else dict.fromkeys(value or [], None)
    depends_on: list[str] = []
    notes: list[str] = []
    for dependency, options in entries.items():
        condition = options.get("condition") if isinstance(options, Mapping) else None
        if dependency in compose.wfgen_names:
            depends_on.append(compose.wfgen_names[dependency])
            if condition and condition != "service_started":
                notes.append(
                    f"depends_on {dependency}: condition {condition}; wfgen deploys this one "
                    "after that deploy passed its health check"
                )
        elif dependency in compose.dropped:
            notes.append(
                f"depends_on {dependency}: not deployed by wfgen ({compose.dropped[dependency]}); dropped"
            )
        elif compose.images.get(dependency):
            notes.append(
                f"depends_on {dependency}: image only; deploys check {compose.images[dependency]} instead"
            )
        elif dependency in compose.images:
            notes.append(f"depends_on {dependency}: image only and publishes no port; not checked")
        else:
            notes.append(f"depends_on {dependency}: no such service in the compose file")
    return depends_on, notes


def _other_keys(spec: Mapping[str, Any]) -> list[str]:
    notes: list[str] = []
    if spec.get("profiles"):
        notes.append(f"profiles {names(spec['profiles'])}: wfgen deploys every service")
    if spec.get("restart") is not None and str(spec["restart"]) not in {"always", "unless-stopped"}:
        notes.append(f"restart {names([spec['restart']])}: wfgen keeps its containers running")
    other = [key for key in spec if key not in READ]
    if other:
        notes.append(f"not mapped: {names(other)}")
    return notes

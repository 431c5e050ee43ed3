"""A compose file -> a ProjectDraft: services it builds become wfgen services, image-only ones checks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from generator.init import compose_keys as keys
from generator.init.compose_file import ComposeError, line_of, names, read_compose
from generator.init.draft import PortPool, ProjectDraft, ServiceDraft, unique_name

# Keys init reads; any other key of a service is listed as not mapped.
READ = {"build", "ports", "environment", "env_file", "healthcheck", "depends_on", "expose", "profiles"}
ANY_LOCAL = {None, "0.0.0.0", "::", ""}
TOP_LEVEL_READ = {"services", "version", "name"}


@dataclass
class ComposeDraft:
    project: ProjectDraft
    warnings: list[str] = field(default_factory=list)  # `file:line: key: ...` lines for stderr


def draft_from_compose(path: Path, manifest_dir: Path, project: str, display: str) -> ComposeDraft:
    data = read_compose(path, display)
    services: dict[str, Any] = data["services"]
    draft = ComposeDraft(ProjectDraft(name=project, source=f"--from-compose {display}"))
    built = [name for name, spec in services.items() if isinstance(spec, Mapping) and "build" in spec]
    taken: set[str] = set()
    wfgen_names = {name: unique_name(str(name), taken) for name in built}
    pool = PortPool()
    images: dict[str, str] = {}  # image-only service -> its check, or "" when it has none
    for name, spec in services.items():
        if name not in wfgen_names:
            images[name] = _image_check(str(name), spec, draft.project)
    for name in built:
        service = _service(name, services[name], wfgen_names, images, pool, path.parent, manifest_dir)
        if service is None:
            draft.project.notes.append(f"{name}: its build context is outside {manifest_dir.name or '.'}")
            continue
        draft.project.services.append(service)
        if service.notes:
            line = line_of(data, ("services", name))
            draft.warnings += [f"{display}:{line}: services.{name}: {note}" for note in service.notes]
    others = [key for key in data if key not in TOP_LEVEL_READ and not str(key).startswith("x-")]
    if others:
        draft.project.notes.append(f"top-level keys not mapped: {names(others)}")
        draft.warnings.append(f"{display}:{line_of(data, (others[0],))}: not mapped: {names(others)}")
    if not draft.project.services:
        raise ComposeError(
            display,
            line_of(data, ("services",)),
            "no service with a build inside this folder: nothing for wfgen to deploy",
            ("services",),
        )
    return draft


def _image_check(name: str, spec: Any, project: ProjectDraft) -> str:
    image = str(spec.get("image", "")) if isinstance(spec, Mapping) else ""
    what = f"{name} (image {image})" if image else name
    for entry in spec.get("ports", []) if isinstance(spec, Mapping) else []:
        published = keys.read_port(entry)
        if isinstance(published, keys.Published) and published.host is not None:
            host = "127.0.0.1" if published.host_ip in ANY_LOCAL else published.host_ip
            check = f"[{host}]:{published.host}" if ":" in str(host) else f"{host}:{published.host}"
            project.tcp.append(check)
            project.infrastructure_notes.append(
                f"{what}: not deployed by wfgen; deploys check that {check} answers"
            )
            return check
    project.infrastructure_notes.append(f"{what}: not deployed by wfgen, publishes no port: not checked")
    return ""


def _service(
    name: str,
    spec: Mapping[str, Any],
    wfgen_names: dict[str, str],
    images: dict[str, str],
    pool: PortPool,
    compose_dir: Path,
    manifest_dir: Path,
) -> ServiceDraft | None:
    notes: list[str] = []
    context, dockerfile, build_notes = keys.read_build(spec["build"])
    folder = _source_folder(context, compose_dir, manifest_dir)
    if folder is None:
        return None
    notes += build_notes
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
    port, moved = pool.claim(wanted, wfgen_names[name])
    notes += [moved] if moved else []
    env_names = keys.environment_names(spec.get("environment"))
    if spec.get("env_file") is not None:
        found, env_notes = keys.env_file_names(spec["env_file"], compose_dir)
        env_names += found
        notes += env_notes
    env, env_notes = keys.usable_env(env_names)
    notes += env_notes
    depends_on, dependency_notes = _depends_on(spec.get("depends_on"), wfgen_names, images)
    notes += dependency_notes + _other_keys(spec)
    return ServiceDraft(
        name=wfgen_names[name],
        origin=f"compose service {name}",
        path=folder,
        port=port,
        dockerfile=dockerfile or "Dockerfile",
        container_port=container if container is not None and container != port else None,
        env=env,
        health=health,
        depends_on=depends_on,
        notes=notes,
    )


def _source_folder(context: str, compose_dir: Path, manifest_dir: Path) -> str | None:
    """The build context as a folder relative to the manifest; None when it is a URL or outside."""
    if "://" in context or context.startswith("git@"):
        return None
    folder = Path(os.path.normpath(compose_dir.resolve() / context))
    try:
        relative = folder.relative_to(manifest_dir.resolve())
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


def _depends_on(
    value: Any, wfgen_names: dict[str, str], images: dict[str, str]
) -> tuple[list[str], list[str]]:
    entries = dict(value) if isinstance(value, Mapping) else dict.fromkeys(value or [], None)
    depends_on: list[str] = []
    notes: list[str] = []
    for dependency, options in entries.items():
        condition = options.get("condition") if isinstance(options, Mapping) else None
        if dependency in wfgen_names:
            depends_on.append(wfgen_names[dependency])
            if condition and condition != "service_started":
                notes.append(
                    f"depends_on {dependency}: condition {condition}; wfgen deploys this one "
                    "after that deploy passed its health check"
                )
        elif images.get(dependency):
            notes.append(f"depends_on {dependency}: image only; deploys check {images[dependency]} instead")
        elif dependency in images:
            notes.append(f"depends_on {dependency}: image only and publishes no port; not checked")
        else:
            notes.append(f"depends_on {dependency}: no such service in the compose file")
    return depends_on, notes


def _other_keys(spec: Mapping[str, Any]) -> list[str]:
    notes: list[str] = []
    if spec.get("profiles"):
        notes.append(f"profiles {names(spec['profiles'])}: wfgen deploys every service")
    other = [key for key in spec if key not in READ]
    if other:
        notes.append(f"not mapped: {names(other)}")
    return notes

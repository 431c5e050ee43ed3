"""A compose file -> a ProjectDraft: services it builds become wfgen services, image-only ones checks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from generator.init import compose_keys as keys
from generator.init.compose_file import ComposeError, line_of, names, read_compose
from generator.init.draft import (
    RESERVED_NAMES,
    PortPool,
    ProjectDraft,
    ServiceDraft,
    sanitize_name,
    unique_name,
)
from generator.init.oneoff import one_off_reason, release_hint

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
TOP_LEVEL_READ = {"services", "version", "name"}
NO_HEALTH = "no HTTP health check found: make the service answer GET /health, or change the path"


@dataclass
class ComposeDraft:
    project: ProjectDraft
    display: str
    notes: list[tuple[int, str]] = field(default_factory=list)  # (line, "key: note"): every note, for stderr

    def note(self, line: int, text: str) -> None:
        self.notes.append((line, text))

    @property
    def warnings(self) -> list[str]:
        """`file:line: key: note` lines in the order of the compose file."""
        return [
            f"{self.display}:{line}: {text}" for line, text in sorted(self.notes, key=lambda item: item[0])
        ]


@dataclass
class _Compose:
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


def draft_from_compose(path: Path, manifest_dir: Path, project: str, display: str) -> ComposeDraft:
    data = read_compose(path, display)
    services: dict[str, Any] = data["services"]
    draft = ComposeDraft(ProjectDraft(name=project, source=f"--from-compose {display}"), display)
    compose = _Compose(data, display, path.parent, manifest_dir)
    built = [name for name, spec in services.items() if isinstance(spec, Mapping) and "build" in spec]
    deployed = _deployed(built, services, compose, draft)
    taken: set[str] = set()
    compose.wfgen_names = {name: unique_name(str(name), taken) for name in deployed}
    for name, spec in services.items():
        if name not in built:
            compose.images[name] = _image_check(str(name), spec, draft, compose)
    pool = PortPool(_explicit_ports(services, deployed, compose))
    drafted = [_service(name, services[name], pool, compose) for name in deployed]
    _secret_everywhere(drafted)
    for name, service in zip(deployed, drafted, strict=True):
        draft.project.services.append(service)
        line = compose.line("services", name)
        for note in service.notes:
            draft.note(line, f"services.{name}: {note}")
    others = [key for key in data if key not in TOP_LEVEL_READ and not str(key).startswith("x-")]
    if others:
        draft.project.notes.append(f"top-level keys not mapped: {names(others)}")
        draft.note(compose.line(others[0]), f"not mapped: {names(others)}")
    if not draft.project.services:
        raise ComposeError(
            display,
            compose.line("services"),
            "no service with a build inside this folder: nothing for wfgen to deploy",
            ("services",),
        )
    return draft


def _secret_everywhere(services: list[ServiceDraft]) -> None:
    """A name that is a secret for one service is one for all: infrastructure.secrets lists every secret name,
    and a name is a plain value or a secret, never both."""
    secret = {name for service in services for name in service.env}
    for service in services:
        for name in [name for name in service.vars if name in secret]:
            del service.vars[name]
            service.env.append(name)
            note = f"environment {name}: a secret in another service, so a secret name here too"
            service.notes.append(note)


def _deployed(
    built: list[str], services: Mapping[str, Any], compose: _Compose, draft: ComposeDraft
) -> list[str]:
    """The built services wfgen deploys; the others (one-off jobs, builds outside the folder) get a note."""
    deployed: list[str] = []
    for name in built:
        reason = one_off_reason(name, services)
        if reason is None and _source_folder(services[name]["build"], compose) is None:
            reason = f"its build context is outside {compose.manifest_dir.name or '.'}"
            compose.dropped[name] = "build outside this folder"
        elif reason is not None:
            compose.dropped[name] = "a one-off job"
            hint = release_hint(name, services, built)
            reason = f"{reason}; not a long-running service, not deployed{hint}"
        else:
            deployed.append(name)
            continue
        draft.project.notes.append(f"{name}: {reason}")
        draft.note(compose.line("services", name), f"services.{name}: {reason}")
    return deployed


def _explicit_ports(services: Mapping[str, Any], deployed: list[str], compose: _Compose) -> dict[int, str]:
    """Host ports the compose file publishes by number, so no invented port takes one of them."""
    reserved: dict[int, str] = {}
    for name, spec in services.items():
        if name not in deployed and name in compose.dropped:
            continue
        for entry in (spec.get("ports") or []) if isinstance(spec, Mapping) else []:
            published = keys.read_port(entry)
            if isinstance(published, keys.Published) and published.host is not None:
                reserved.setdefault(published.host, compose.wfgen_names.get(name, str(name)))
                if name in deployed:
                    break  # a deployed service keeps its first port only
    return reserved


def _image_check(name: str, spec: Any, draft: ComposeDraft, compose: _Compose) -> str:
    image = str(spec.get("image", "")) if isinstance(spec, Mapping) else ""
    what = f"{name} (image {image})" if image else name
    check = ""
    for entry in spec.get("ports", []) if isinstance(spec, Mapping) else []:
        published = keys.read_port(entry)
        if isinstance(published, keys.Published) and published.host is not None:
            host = "127.0.0.1" if published.host_ip in ANY_LOCAL else published.host_ip
            check = f"[{host}]:{published.host}" if ":" in str(host) else f"{host}:{published.host}"
            break
    project = draft.project
    if check:
        project.tcp.append(check)
        note = f"not deployed by wfgen; deploys check that {check} answers"
    else:
        note = "not deployed by wfgen, publishes no port: not checked"
    project.infrastructure_notes.append(f"{what}: {note}")
    draft.note(compose.line("services", name), f"services.{name}: {note}")
    return check


def _service(name: str, spec: Mapping[str, Any], pool: PortPool, compose: _Compose) -> ServiceDraft:
    wfgen_name = compose.wfgen_names[name]
    notes: list[str] = []
    if wfgen_name != name:
        why = RESERVED_NAMES.get(sanitize_name(str(name), "service"))
        notes.append(f"named {wfgen_name} in services.toml" + (f": {why}" if why else ""))
    build = keys.read_build(spec["build"])
    folder = _source_folder(spec["build"], compose)
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
    name: str, spec: Mapping[str, Any], compose: _Compose
) -> tuple[list[str], dict[str, str], list[str]]:
    """(secret names, plain values, notes) from `environment` and the names in `env_file`."""
    env, plain, notes = keys.read_environment(spec.get("environment"))
    if spec.get("env_file") is not None:
        found, file_notes = keys.env_file_names(spec["env_file"], _env_files(name, spec["env_file"], compose))
        env += [item for item in found if item not in plain]
        notes += file_notes
    env, name_notes = keys.usable_env(env)
    return env, plain, notes + name_notes


def _env_files(name: str, value: Any, compose: _Compose) -> dict[str, Path]:
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


def _source_folder(build: Any, compose: _Compose) -> str | None:
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


def _depends_on(value: Any, compose: _Compose) -> tuple[list[str], list[str]]:
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

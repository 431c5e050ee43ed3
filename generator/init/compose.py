"""A compose file -> a ProjectDraft: services it builds become wfgen services, image-only ones checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.init import compose_keys as keys
from generator.init.compose_file import ComposeError, names, read_compose
from generator.init.compose_service import ANY_LOCAL, ComposeContext, service_draft, source_folder
from generator.init.draft import PortPool, ProjectDraft, ServiceDraft, unique_name
from generator.init.oneoff import one_off_reason, release_hint

TOP_LEVEL_READ = {"services", "version", "name"}


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


def draft_from_compose(path: Path, manifest_dir: Path, project: str, display: str) -> ComposeDraft:
    data = read_compose(path, display)
    services: dict[str, Any] = data["services"]
    draft = ComposeDraft(ProjectDraft(name=project, source=f"--from-compose {display}"), display)
    compose = ComposeContext(data, display, path.parent, manifest_dir)
    built = [name for name, spec in services.items() if isinstance(spec, Mapping) and "build" in spec]
    deployed = _deployed(built, services, compose, draft)
    taken: set[str] = set()
    compose.wfgen_names = {name: unique_name(str(name), taken) for name in deployed}
    for name, spec in services.items():
        if name not in built:
            compose.images[name] = _image_check(str(name), spec, draft, compose)
    pool = PortPool(_explicit_ports(services, deployed, compose))
    drafted = [service_draft(name, services[name], pool, compose) for name in deployed]
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
    built: list[str], services: Mapping[str, Any], compose: ComposeContext, draft: ComposeDraft
) -> list[str]:
    """The built services wfgen deploys; the others (one-off jobs, builds outside the folder) get a note."""
    deployed: list[str] = []
    for name in built:
        reason = one_off_reason(name, services)
        if reason is None and source_folder(services[name]["build"], compose) is None:
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


def _explicit_ports(
    services: Mapping[str, Any], deployed: list[str], compose: ComposeContext
) -> dict[int, str]:
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


def _image_check(name: str, spec: Any, draft: ComposeDraft, compose: ComposeContext) -> str:
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

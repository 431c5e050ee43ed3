"""`wfgen init`: write a commented services.toml from a compose file or a folder scan, then the next steps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from generator.errors import ExitCode, InitError
from generator.init.compose import draft_from_compose
from generator.init.draft import ProjectDraft, sanitize_name
from generator.init.scan import draft_from_scan
from generator.init.toml import manifest_text
from generator.manifest.target import Target
from generator.manifest.validate import parse_manifest
from generator.render.output import write_atomic

# Docker Compose looks for these, in this order, when no file is named.
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
WORKFLOW_NAME = "Deploy Services (Parallel)"


@dataclass(frozen=True)
class InitOptions:
    manifest: Path
    from_compose: Path | None = None
    scan: Path | None = None
    force: bool = False
    stdout: bool = False


def init(options: InitOptions, out: TextIO, err: TextIO) -> int:
    """Writes the manifest (or prints it with stdout) and the next steps; InitError when it cannot."""
    manifest_dir = options.manifest.parent
    if not options.stdout and options.manifest.exists() and not options.force:
        raise InitError(f"{options.manifest}: already exists; --force overwrites it, --stdout prints instead")
    project = sanitize_name(manifest_dir.resolve().name, "app")
    draft = _draft(options, manifest_dir, project, err)
    text = manifest_text(draft)
    parse_manifest(text, str(options.manifest))  # what init writes must pass 'wfgen validate' as it is
    if options.stdout:
        out.write(text)
        _next_steps(draft, options.manifest, written=False, stream=err)
        return ExitCode.OK
    write_atomic(options.manifest, text.encode("utf-8"))
    _next_steps(draft, options.manifest, written=True, stream=out)
    return ExitCode.OK


def _draft(options: InitOptions, manifest_dir: Path, project: str, err: TextIO) -> ProjectDraft:
    if options.from_compose is not None and options.scan is not None:
        raise InitError("pass --from-compose or --scan, not both")
    if options.scan is not None:
        scanned = draft_from_scan(options.scan, manifest_dir, project, str(options.scan))
        for service in scanned.services:
            for note in service.notes:
                err.write(f"{service.path}/Dockerfile: services.{service.name}: {note}\n")
        return scanned
    compose = options.from_compose or _compose_here(manifest_dir)
    draft = draft_from_compose(compose, manifest_dir, project, _display(compose, manifest_dir))
    for line in draft.warnings:
        err.write(line + "\n")
    return draft.project


def _compose_here(folder: Path) -> Path:
    for name in COMPOSE_FILES:
        if (folder / name).is_file():
            return folder / name
    raise InitError(f"pass --from-compose FILE or --scan DIR (no {', '.join(COMPOSE_FILES)} here)")


def _display(path: Path, folder: Path) -> str:
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return str(path)


def _next_steps(draft: ProjectDraft, manifest: Path, *, written: bool, stream: TextIO) -> None:
    target = Target()
    secrets = [target.host_env, target.user_env, target.ssh_key_env, target.known_hosts_env, *draft.secrets]
    services = ", ".join(service.name for service in draft.services)
    what = f"wrote {manifest}" if written else f"{manifest} (printed, not written)"
    stream.write(
        f"{what}: {len(draft.services)} service(s): {services}\n"
        "next steps:\n"
        f"  1. read the comments in {manifest.name}: what could not be mapped is listed there\n"
        f"  2. create these repository secrets on GitHub: {', '.join(secrets)}\n"
        "  3. wfgen render\n"
        f"  4. commit {manifest.name}, .github/workflows/ and .github/wfgen/, and push\n"
        f"  5. Actions -> {WORKFLOW_NAME} -> Run workflow: services 'all', branch main\n"
    )

"""Docker images of a service: names, labels, build (from a directory or a streamed tar), registry, pruning.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from ..core import config, steplib
from ..core.transport import CommandResult, Target

TAIL_LINES = 20


class ImageError(Exception):
    """Building, pushing or pulling an image failed; `tail` holds the last lines of the tool's output."""

    def __init__(self, message: str, tail: list[str] | None = None):
        super().__init__(message)
        self.tail = tail or []


def image_name(manifest: config.Manifest, service: str, commit: str) -> str:
    name = f"{manifest.project.name}/{service}:{commit[:12]}"
    registry = manifest.build.push_registry()
    if registry is not None:
        return f"{registry.rstrip('/')}/{name}"
    return name


def image_labels(project: str, service: str, commit: str, branch: str) -> dict[str, str]:
    """The labels of every image wfgen builds: status, plan, rollback and prune read them."""
    return {
        "wfgen.project": project,
        "wfgen.service": service,
        "wfgen.commit": commit,
        "wfgen.branch": branch,
        "wfgen.built-at": steplib.now_iso(),
    }


def image_id(host: Target, ref: str) -> str | None:
    result = host.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], timeout=60)
    return result.stdout.strip() or None if result.returncode == 0 else None


def tail(result: CommandResult, lines: int = TAIL_LINES) -> list[str]:
    text = (result.stdout + "\n" + result.stderr).splitlines()
    return [line for line in text if line.strip()][-lines:]


def registry_host(registry: str) -> str:
    """ghcr.io/owner -> ghcr.io; 127.0.0.1:5000 -> 127.0.0.1:5000."""
    return registry.split("/", 1)[0]


def _config_env(config_dir: str | None) -> dict[str, str] | None:
    """DOCKER_CONFIG for a throwaway client config, so a login's credentials do not outlive the deploy."""
    return {"DOCKER_CONFIG": config_dir} if config_dir else None


def login(host: Target, registry: str, user: str, password: str, config_dir: str | None = None) -> None:
    """docker login with the password on stdin, never on a command line; stored in config_dir when given."""
    argv = ["docker", "login", "--username", user, "--password-stdin", registry_host(registry)]
    result = host.run(argv, input=password.encode(), timeout=120, env=_config_env(config_dir))
    if result.returncode != 0:
        lines = [line.replace(password, "***") for line in tail(result, 3)]
        raise ImageError(f"docker login to {registry_host(registry)} failed", lines)


def push(host: Target, image: str, timeout: float, config_dir: str | None = None) -> None:
    result = host.run(["docker", "push", "--quiet", image], timeout=timeout, env=_config_env(config_dir))
    if result.returncode != 0:
        raise ImageError(f"docker push {image} failed", tail(result))


def pull(host: Target, image: str, timeout: float, config_dir: str | None = None) -> None:
    result = host.run(["docker", "pull", "--quiet", image], timeout=timeout, env=_config_env(config_dir))
    if result.returncode != 0:
        raise ImageError(f"docker pull {image} on the target failed", tail(result))


def _created_key(created: str) -> str:
    """Docker trims trailing zeros of the fraction; pad it so the text sorts like the time."""
    stamp, _, fraction = created.rstrip("Z").partition(".")
    return f"{stamp}.{fraction.ljust(9, '0')}"


@dataclass(frozen=True)
class KeptImage:
    """One reference of an image wfgen built, kept on the target."""

    created: str  # as docker says it, UTC
    ident: str
    ref: str  # repo:tag, or the id when untagged
    labels: Mapping[str, str]
    digests: tuple[str, ...] = ()  # repo@sha256:... once pushed or pulled: what a swarm service runs

    @property
    def commit(self) -> str | None:
        return self.labels.get("wfgen.commit") or None

    @property
    def built(self) -> str:
        """When wfgen built it: its `wfgen.built-at` label, else Docker's Created. BuildKit gives a rebuild
        whose steps all came from its cache the Created time of the first build; the label is always new."""
        return self.labels.get("wfgen.built-at") or self.created

    @property
    def tagged(self) -> bool:
        return self.ref != self.ident


def project_images(host: Target, project: str, service: str | None = None) -> list[KeptImage]:
    """The project's images (or one service's), newest first, in one listing and one inspect for them all."""
    only = ["--filter", f"label=wfgen.service={service}"] if service else []
    listing = host.run(
        ["docker", "images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}",
         *only, "--filter", f"label=wfgen.project={project}"],
        timeout=60,
    )  # fmt: skip
    refs: dict[str, list[str]] = {}
    for ident, _, ref in (line.partition(" ") for line in listing.stdout.splitlines()):
        if ident and ref:
            refs.setdefault(ident, []).append(ident if "<none>" in ref else ref.strip())
    if listing.returncode != 0 or not refs:
        return []
    fmt = "{{.Id}} {{.Created}} {{json .RepoDigests}} {{json .Config.Labels}}"
    inspect = host.run(["docker", "image", "inspect", "--format", fmt, *refs], timeout=60)
    found: dict[str, KeptImage] = {}
    for ident, created, digests, labels in (
        (line.split(" ", 3) + ["", "", ""])[:4] for line in inspect.stdout.splitlines()
    ):
        found[ident] = KeptImage(created, ident, "", _labels(labels), _digests(digests))
    rows = [replace(found[i], ref=ref) for i in refs if i in found for ref in sorted(refs[i])]
    return sorted(rows, key=lambda row: (_created_key(row.built), row.ident, row.ref), reverse=True)


def _digests(text: str) -> tuple[str, ...]:
    try:
        found = json.loads(text or "null")
    except json.JSONDecodeError:
        return ()
    return tuple(str(item) for item in found) if isinstance(found, list) else ()


def _labels(text: str) -> dict[str, str]:
    try:
        labels = json.loads(text or "null")
    except json.JSONDecodeError:
        return {}
    return labels if isinstance(labels, dict) else {}


def kept_refs(rows: Sequence[KeptImage]) -> dict[str, list[str]]:
    """The commits a rollback can go to, each with its tagged references, newest first. An untagged image
    (one a rebuild of its commit replaced) is left to prune: a rollback always runs a tag."""
    refs: dict[str, list[str]] = {}
    for row in rows:
        if row.commit and row.tagged:
            refs.setdefault(row.commit, []).append(row.ref)
    return refs


def prune(host: Target, rows: Sequence[KeptImage], keep: int, protect: Collection[str]) -> list[str]:
    """Untag all but the newest `keep` of a service's images (`project_images`, newest first); never the
    ones whose ids are in `protect`."""
    newest: list[str] = []
    for row in rows:
        if row.ident not in newest:
            newest.append(row.ident)
    keep_ids = set(newest[: max(keep, 0)]) | set(protect)
    removed: list[str] = []
    for row in rows:
        if row.ident not in keep_ids and host.run(["docker", "rmi", row.ref], timeout=120).returncode == 0:
            removed.append(row.ref)
    return removed

"""What a deploy would change, asked from the target: for each selected service, the commit its branch would
deploy against the commit running now (the container's labels) and the configuration fingerprint, and the
verdict `new`, `deploy` or `unchanged`. Looks, never touches.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from ..core import config, order, runconfig
from ..core.names import is_commit
from ..core.transport import CommandFailed, Target
from . import source
from .proxy import live_name
from .running import Running
from .swarm import state as swarm_state

LOOKUPS_AT_ONCE = 8
LOG_LINES = 5
LOOKUP_TIMEOUT_S = 60.0
SHORT = 7
# One `docker container inspect` answers for every service: these fields, `|`-separated (labels last: JSON).
INSPECT_FIELDS = (
    "{{.Name}}", "{{.State.Running}}", "{{.State.Status}}", "{{.State.ExitCode}}", "{{.State.StartedAt}}",
    "{{.State.FinishedAt}}", "{{.Image}}", "{{.Config.Image}}", "{{json .HostConfig.PortBindings}}",
    "{{json .Config.Labels}}",
)  # fmt: skip


@dataclass(frozen=True)
class Assessment:
    service: str
    verdict: str  # new | deploy | unchanged
    reason: str
    running: str | None  # commit
    desired: str | None
    changes: tuple[str, ...]  # `abc1234 subject` of what changed in between, where that is cheap to read
    wave: int  # 1-based: the deploy job of its dependency depth
    needs: tuple[str, ...]  # selected dependencies, deployed first
    outside: tuple[str, ...]  # dependencies not selected: this one deploys against what runs

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "changes": list(self.changes), "needs": list(self.needs),
                "outside": list(self.outside)}  # fmt: skip


def short(commit: str | None) -> str:
    return commit[:SHORT] if commit else "-"


def probe_host(target: Target, manifest: config.Manifest) -> str | None:
    """Where the target reaches the services' public ports: itself, or on a swarm a node that runs the
    proxy (None when none does)."""
    if manifest.target.kind == "swarm":
        return swarm_state.proxy_address(target, manifest)
    return "127.0.0.1"


def running_versions(target: Target, manifest: config.Manifest, names: Iterable[str]) -> dict[str, Running]:
    """What serves each named service now (or is stopped under its live name), in one `docker inspect`; a
    service with no container is absent. On a swarm: its Swarm services."""
    if manifest.target.kind == "swarm":
        return swarm_state.running_versions(target, manifest, names)
    containers = {live_name(manifest, manifest.services[name]): name for name in names}
    if not containers:
        return {}
    argv = ["docker", "container", "inspect", "--format", "|".join(INSPECT_FIELDS), *containers]
    result = target.run(argv, timeout=60)
    found: dict[str, Running] = {}
    for line in result.stdout.splitlines():
        fields = line.split("|", len(INSPECT_FIELDS) - 1)
        name = containers.get(fields[0].lstrip("/"))
        if name is None:
            continue
        try:
            _, running, state, code, started, finished, image_id, image, bindings, labels_json = fields
            labels, ports = json.loads(labels_json) or {}, json.loads(bindings) or {}
        except ValueError:  # too few fields, or not JSON where JSON belongs
            raise CommandFailed(argv, result) from None
        published = frozenset(
            int(bound["HostPort"])
            for binds in ports.values()
            for bound in binds or ()
            if bound.get("HostPort")
        )
        found[name] = Running(
            labels.get("wfgen.commit") or None, running == "true", labels, published, state,
            int(code) if code.lstrip("-").isdigit() else 0, started, finished, image, image_id,
        )  # fmt: skip
    # A missing container is "No such container"; anything else (the engine is down) must not read as "new".
    other = [line for line in result.stderr.splitlines() if line.strip() and "no such" not in line.lower()]
    if result.returncode != 0 and (other or not result.stderr.strip()):
        raise CommandFailed(argv, result)
    return found


def desired_commit(
    service: config.Service, ref: str, repo_root: str, builder: Target, timeout: float = LOOKUP_TIMEOUT_S
) -> tuple[str | None, str | None]:
    """(commit, None) as a deploy would resolve it, asked from `builder`, or (None, why not)."""
    try:
        return source.head_commit(service, ref, repo_root, builder, timeout), None
    except source.SourceError as exc:
        return None, builder.redact(str(exc))


def change_log(service: config.Service, repo_root: str, running: str, desired: str) -> tuple[str, ...]:
    """The commits between the running and the desired version that touch a folder service, newest first."""
    if not service.path or running == desired or not is_commit(running):
        return ()
    ancestry = _git(repo_root, "merge-base", "--is-ancestor", running, desired)
    if ancestry is None:
        return ()
    if ancestry.returncode == 1:  # left behind by a force-push, or deployed from another branch
        return (
            f"{short(running)} is not an ancestor of {short(desired)} (history rewritten, or another branch)",
        )
    if ancestry.returncode != 0:
        return (f"{short(running)} is not in this checkout's history",)
    found = _git(repo_root, "log", f"--max-count={LOG_LINES + 1}", "--format=%h %s", f"{running}..{desired}",
                 "--", service.path, *service.paths)  # fmt: skip
    if found is None or found.returncode != 0:
        return ()
    lines = found.stdout.splitlines()
    return (*lines[:LOG_LINES], *(["…"] if len(lines) > LOG_LINES else []))


def _git(repo_root: str, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return source.run_git(repo_root, *args, timeout=30)
    except source.SourceError:
        return None


def config_change(
    manifest: config.Manifest,
    service: config.Service,
    running: Running,
    salt: bytes | None,
    environ: Mapping[str, str],
) -> str | None:
    """What of the configuration differs from the running container's fingerprint (names only), or None.
    Secrets this process is not given are compared by name only."""
    if salt is None:
        return "no configuration fingerprint on the target yet"
    known = {name: environ[name] for name in service.env if environ.get(name)}
    unknown = [f"env {name}" for name in service.env if name not in known]
    settings = runconfig.run_config(service, manifest.target.network, known)
    settings.update({name: None for name in unknown})
    return runconfig.difference(running.labels, runconfig.fingerprint(settings, salt), unknown)


def judge(
    service: config.Service,
    now: Running | None,
    desired: str | None,
    problem: str | None,
    changed: str | None,
    force: bool,
) -> tuple[str, str]:
    """(verdict, reason)."""
    if now is None:
        return "new", f"nothing runs yet ({problem})" if problem else "nothing runs yet"
    if problem:
        return "deploy", problem
    if force:
        return "deploy", "force rebuild"
    if not now.running:
        return "deploy", "the container is stopped"
    if now.commit != desired:
        return "deploy", f"{short(now.commit)} → {short(desired)}"
    if changed:
        return "deploy", f"configuration changed: {changed}"
    if service.proxy and service.port in now.published:
        return "deploy", f"publishes port {service.port} itself and moves behind the proxy"
    return "unchanged", f"{short(desired)} runs already"


def assess(
    manifest: config.Manifest,
    target: Target,
    builder: Target,
    selected: list[str],
    branch: str,
    *,
    force: bool,
    repo_root: str,
    environ: Mapping[str, str],
) -> list[Assessment]:
    """The verdict for each selected service, in manifest order."""
    services = [manifest.services[name] for name in selected]
    # First and alone: it opens the ssh connection the lookups share, and an unreachable target fails once,
    # not once per waiting lookup.
    now = running_versions(target, manifest, selected)
    with ThreadPoolExecutor(max_workers=LOOKUPS_AT_ONCE) as pool:
        wanted = pool.map(lambda s: desired_commit(s, s.ref or branch, repo_root, builder), services)
        salt_future = pool.submit(runconfig.read_salt, target, manifest.target.state_dir)
        desired = list(wanted)
        salt = salt_future.result()
    depth = order.depths(manifest.dependencies())
    chosen = set(selected)
    found = []
    for service, (commit, problem) in zip(services, desired, strict=True):
        running = now.get(service.name)
        changed = config_change(manifest, service, running, salt, environ) if running else None
        verdict, reason = judge(service, running, commit, problem, changed, force)
        log = (
            change_log(service, repo_root, running.commit, commit)
            if running and running.commit and commit
            else ()
        )
        found.append(Assessment(
            service.name, verdict, reason, running.commit if running else None, commit, log,
            depth[service.name] + 1,
            tuple(dep for dep in service.depends_on if dep in chosen),
            tuple(dep for dep in service.depends_on if dep not in chosen),
        ))  # fmt: skip
    return found

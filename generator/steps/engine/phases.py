"""The phases of a deploy around the engine's delivery, whatever the engine: leftovers of killed deploys, the
env-file, the release command and the prune of old images (deployment.py runs them in order).

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

import os
import shlex
from typing import Protocol

from ..core import config, runconfig, steplib
from ..core.audit import audit_path, read_audit, rollback_commit, service_deploys
from ..core.transport import Target
from . import images, leftovers, release
from .delivery import Container, Delivery, Outcome


class Deploy(Protocol):
    """What these phases need of the deploy in progress (deployment.Deployment is one)."""

    manifest: config.Manifest
    service: config.Service
    name: str
    state_dir: str
    commit: str | None
    target: Target
    cut: Delivery | None
    cleanups: list[tuple[str, list[str]]]

    def log(self, message: str) -> None: ...
    def phase(self, name: str, message: str) -> None: ...


def sweep_leftovers(deploy: Deploy, minutes: int, expected: tuple[type[BaseException], ...]) -> None:
    """Remove what killed deploys of this service left behind (we hold its lock); a failure only warns."""
    try:
        removed = leftovers.sweep_target(deploy.target, deploy.state_dir, deploy.name, minutes)
        removed += release.remove_leftovers(deploy.target, deploy.manifest.project.name, deploy.name)
        removed += leftovers.sweep_runner()
    except expected as exc:
        deploy.log(f"warning: removing leftovers of interrupted deploys failed: {exc}")
        return
    if removed:
        deploy.log(f"removed {removed} leftover(s) of interrupted deploys")


def is_unchanged(deploy: Deploy, image: str, old: Container | None) -> bool:
    """What runs is this image, with this configuration, and healthy: nothing to deploy."""
    if old is None or not old.running:
        return False
    cut = deploy.cut
    assert cut is not None and cut.config is not None
    if not cut.runs_image(image, old):
        return False
    reason = cut.must_redeploy()
    if reason:
        deploy.log(f"{reason}; redeploying {image}")
        return False
    changed = runconfig.difference(old.labels, cut.config)
    if changed:
        deploy.log(f"configuration changed: {changed}; redeploying {image}")
        return False
    if cut.healthy():
        return True
    deploy.log("the running version has this image but fails its health check; redeploying it")
    return False


def env_values(service: config.Service) -> dict[str, str]:
    """The service's secrets from this process's environment; Outcome when one is missing or multi-line."""
    values: dict[str, str] = {}
    for name in service.env:
        value = os.environ.get(name, "")
        if not value:
            raise Outcome("failed", f"environment variable {name} is not set (services.{service.name}.env)")
        if "\n" in value or "\r" in value:
            raise Outcome(
                "failed", f"environment variable {name} contains a line break; --env-file cannot pass it"
            )
        values[name] = value
    return values


def put_env_file(deploy: Deploy, env: dict[str, str]) -> str | None:
    """The container's environment, secrets and plain values, in one file only the user can read,
    removed when the leg ends: values never meet argv or a shell."""
    values = {**deploy.service.vars, **env}  # disjoint: the manifest refuses a name in both
    if not values:
        return None
    data = "".join(f"{name}={value}\n" for name, value in values.items()).encode()
    relative = f"{deploy.state_dir.rstrip('/')}/env/{steplib.scratch_name(deploy.name)}.env"
    path = deploy.target.home_path(relative)
    deploy.cleanups.append(("target", ["rm", "-f", "--", path]))
    deploy.target.put_file(relative, data, mode=0o600)
    return path


def run_release(deploy: Deploy, env_file: str | None) -> None:
    """The service's release command in a one-off container of the new image, before anything of the
    delivery: a failure leaves the running version untouched. Under the service's lock, as all of this.

    On a swarm too: a container on the manager, attached to the overlay network, not a Swarm job. The same
    code then reads its output in order (`docker logs`), its exit code (`docker wait`), bounds it by its
    timeout and removes it on a cancel; a job would need its task polled and its logs fetched from whichever
    node ran it. The manager already holds the image: it pulled it to learn the digest."""
    command = deploy.service.release
    if command is None:
        return
    assert deploy.cut is not None
    deploy.cut.ensure_network()
    image = deploy.cut.release_image()
    project = deploy.manifest.project.name
    one_off = release.Release(
        project, deploy.name, deploy.manifest.target.network, image, command, env_file,
        release.container_name(project, deploy.name),
    )  # fmt: skip
    cleanup = ("target", ["docker", "rm", "-f", one_off.name])
    deploy.cleanups.append(cleanup)  # before it starts: a cancel removes it from finish()
    deploy.phase("release", f"running release command: {shlex.join(command)}")
    try:
        took, tail = release.run(deploy.target, one_off, deploy.service.release_timeout_s)
    except release.ReleaseFailed as exc:
        for line in exc.tail:
            steplib.quote(line)
        last = f" (last output: {exc.tail[-1].strip()})" if exc.tail else ""
        raise Outcome("failed", f"{exc}{last}; running container untouched") from None
    deploy.cleanups.remove(cleanup)
    for line in tail:
        steplib.quote(line)
    deploy.log(f"release command done in {took:.1f} s")


def prune(deploy: Deploy, image: str, old: Container | None) -> None:
    """Keep the newest keep_images images, the new one, the old container's, and the one a rollback
    from the new version would go to (however old: it is what `wfgen rollback` takes)."""
    assert deploy.commit is not None and deploy.cut is not None
    if not deploy.cut.prunes_images:
        return
    target, name = deploy.target, deploy.name
    rows = images.project_images(target, deploy.manifest.project.name, name)
    entries, note = read_audit(target, audit_path(target, deploy.state_dir))
    if note:
        deploy.log(f"warning: {note}; pruning cannot tell which version a rollback would go to")
    back_to = rollback_commit(deploy.commit, service_deploys(entries, name), images.kept_refs(rows))
    protect = {row.ident for row in rows if row.ref == image}
    protect |= {row.ident for row in rows if back_to and row.tagged and row.commit == back_to}
    if old:
        protect.add(old.image_id)
    keep = deploy.manifest.project.keep_images
    removed = images.prune(target, rows, keep, protect)
    if removed:
        kept_too = f" and {back_to[:7]}, the rollback version" if back_to else ""
        deploy.log(f"pruned {len(removed)} old image(s), keeping the last {keep}{kept_too}")

"""Make a commit's image available on the target: reuse it, build it there, or build here, push and pull.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from ..core import config, steplib
from ..core.steplib import StatusFile
from ..core.transport import Target
from . import builds, images, source


class BuildSettings(Protocol):
    @property
    def force_rebuild(self) -> bool: ...
    @property
    def repo_root(self) -> str: ...


class Deployment(Protocol):
    """What providing an image needs of the deploy in progress (deployment.Deployment is one)."""

    manifest: config.Manifest
    service: config.Service
    name: str
    ref: str
    state_dir: str
    commit: str | None
    target: Target
    status: StatusFile
    cleanups: list[tuple[str, list[str]]]

    @property
    def settings(self) -> BuildSettings: ...
    def builder(self) -> Target: ...
    def left(self) -> float: ...
    def log(self, message: str) -> None: ...
    def phase(self, name: str, message: str) -> None: ...


def provide_image(deploy: Deployment, image: str) -> tuple[str, str]:
    """(commit, image) now present on the target: always the commit the deploy resolved (or was given)."""
    assert deploy.commit is not None
    build = deploy.manifest.build
    force = deploy.settings.force_rebuild
    if not force and images.image_id(deploy.target, image):
        deploy.log(f"image {image} already on the target; not rebuilding")
        return deploy.commit, image
    registry = build.push_registry()
    if registry is None:
        return build_on(deploy, deploy.target, image)
    builder = deploy.builder()
    commit = deploy.commit
    if force or not images.image_id(builder, image):
        commit, image = build_on(deploy, builder, image)
    credentials = registry_credentials(build)
    with login_config(deploy, "runner", credentials) as config:
        if credentials:
            images.login(builder, registry, *credentials, config_dir=config)
        deploy.log(f"pushing {image}")
        images.push(builder, image, timeout=deploy.left(), config_dir=config)
    with login_config(deploy, "target", credentials) as config:
        if credentials:
            images.login(deploy.target, registry, *credentials, config_dir=config)
        deploy.log(f"pulling {image} on the target")
        images.pull(deploy.target, image, timeout=deploy.left(), config_dir=config)
    return commit, image


@contextlib.contextmanager
def login_config(deploy: Deployment, where: str, credentials: tuple[str, str] | None) -> Iterator[str | None]:
    """A private DOCKER_CONFIG dir on the runner or the target for a registry login, removed right after.

    `docker login` would otherwise keep the password in ~/.docker/config.json for good. The deploy's cleanups
    remove the dir too, should this process be cut short before the `finally` below.
    """
    if not credentials:
        yield None
        return
    host = deploy.target if where == "target" else deploy.builder()
    if where == "runner":
        path = tempfile.mkdtemp(prefix=f"{steplib.runner_prefix('docker')}{deploy.name}-")
    else:
        relative = f"{deploy.state_dir.rstrip('/')}/docker-config/{steplib.scratch_name(deploy.name)}"
        path = host.home_path(relative)
    remove = ["rm", "-rf", "--", path]
    deploy.cleanups.append((where, remove))
    try:
        if where == "target":
            host.run(["sh", "-c", 'umask 077 && mkdir -p -- "$1"', "sh", path], timeout=60, check=True)
        yield path
    finally:
        host.run(remove, timeout=120)


def registry_credentials(build: config.Build) -> tuple[str, str] | None:
    user_env, password_env = build.registry_user_env, build.registry_password_env
    if not user_env or not password_env:
        return None
    user, password = os.environ.get(user_env, ""), os.environ.get(password_env, "")
    if not user or not password:
        missing = user_env if not user else password_env
        raise images.ImageError(f"registry login: environment variable {missing} is not set")
    return user, password


def build_on(deploy: Deployment, host: Target, image: str) -> tuple[str, str]:
    """Build on `host` (the target, or the runner); returns (commit, image)."""
    try:
        if deploy.service.path:
            return build_path(deploy, host, image)
        return build_clone(deploy, host, image)
    except images.ImageError as exc:
        for line in exc.tail:
            steplib.quote(line)
        raise


def _labels(deploy: Deployment, commit: str) -> dict[str, str]:
    return images.image_labels(deploy.manifest.project.name, deploy.name, commit, deploy.ref)


def build_path(deploy: Deployment, host: Target, image: str) -> tuple[str, str]:
    """A folder of the local checkout streamed as a tar into `docker build -` (works over ssh, no copy)."""
    commit, service = deploy.commit, deploy.service
    assert commit is not None and service.path is not None  # build_on: a path service
    deploy.phase("build", f"building image {image}")
    subdir = source.tree_path(service.path, service.context)
    labels = _labels(deploy, commit)

    def build() -> None:
        """One build from a git archive of its own: a second build cannot read the first one's."""
        archive = source.open_archive(deploy.settings.repo_root, commit, subdir)
        try:
            assert archive.stdout is not None
            builds.build_stream(
                host, image, labels, archive.stdout, service.dockerfile, deploy.left(), service.build_target
            )
        finally:
            problem = source.finish_archive(archive)
        if problem:
            raise images.ImageError(f"git archive of {subdir or '.'} failed: {problem}")

    builds.once_more_on_lost_cache(build, deploy.log)
    return commit, image


def build_clone(deploy: Deployment, host: Target, image: str) -> tuple[str, str]:
    """Shallow fetch of exactly the deploy's commit on `host` into a fresh directory (removed afterwards),
    then docker build there."""
    service = deploy.service
    here = host.kind == "local" and host is not deploy.target
    if here:
        dest = str(Path(tempfile.mkdtemp(prefix=steplib.runner_prefix("src"))) / "src")
    else:
        dest = host.home_path(f"{deploy.state_dir.rstrip('/')}/src/{steplib.scratch_name(deploy.name)}")
    try:
        assert deploy.commit is not None and service.clone_url is not None  # resolve.py: set for repositories
        deploy.status.update(message=f"fetching {deploy.commit[:7]} ({deploy.ref})")
        source.fetch_commit(host, service.clone_url, deploy.commit, dest, timeout=min(600, deploy.left()))
        commit = deploy.commit
        deploy.phase("build", f"building image {image}")
        context = posixpath.normpath(posixpath.join(dest, service.context))
        labels = _labels(deploy, commit)
        builds.once_more_on_lost_cache(
            lambda: builds.build_dir(
                host, image, labels, context, service.dockerfile, deploy.left(), service.build_target
            ),
            deploy.log,
        )
        return commit, image
    finally:
        if here:
            shutil.rmtree(Path(dest).parent, ignore_errors=True)
        else:
            host.run(["rm", "-rf", "--", dest], timeout=120)

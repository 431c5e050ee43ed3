"""The swarm engine behind the seam (../delivery.py): a Docker Swarm driven through a manager's docker CLI.

A deploy writes the service's stack file (stack.py) on the manager, and `docker stack deploy` creates or
updates the service by digest with `--with-registry-auth`. Swarm then starts each new task beside an old one,
waits for its healthcheck, and rolls the whole update back on the first failed task. `docker stack deploy`
returns before any of that, and `docker service update` exits 0 even after Swarm rolled back
(docker/cli#6752): the outcome is read from the service's UpdateStatus and its tasks, polled until the update
ends, bounded by the deploy's deadline. `deployed` only when every desired task runs the new image (a task is
`running` once its healthcheck passed).

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import NoReturn, cast

from ...core import config, runconfig, steplib
from ...core.transport import Target
from .. import images, provide
from ..delivery import Container, Outcome, Reporter
from . import checks, proxy, stack, state

POLL_S = 1.0
MARGIN_S = 30.0  # beyond the tasks' own health deadlines: scheduling, pulls, the stop of old tasks


class SwarmDelivery:
    prunes_images = False  # the images live in the registry; nodes keep what Swarm pulled

    def __init__(
        self,
        target: Target,
        manifest: config.Manifest,
        service: config.Service,
        image: str,
        reporter: Reporter,
    ):
        assert service.swarm is not None  # config_load.load: set for every service on a swarm
        self.target, self.manifest, self.service, self.image = target, manifest, service, image
        self.reporter = reporter
        self.name = stack.service_name(manifest, service)
        self.replicas = service.swarm.replicas
        self.config: runconfig.Fingerprint | None = None
        self.touched = False
        self.before: state.Service | None = None
        self.digest = ""
        self.seen: dict[str, state.Task] = {}  # tasks of the new image seen failing: Swarm may forget them
        self.starting: dict[str, tuple[state.Task, float]] = {}  # new tasks seen starting, since when
        self.running_ids: set[str] = set()

    def log(self, message: str) -> None:
        self.reporter.log(message)

    def scratch(self, what: str) -> str:
        relative = (
            f"{self.manifest.target.state_dir.rstrip('/')}/{what}/{steplib.scratch_name(self.service.name)}"
        )
        return self.target.home_path(relative)

    def survey(self) -> Container | None:
        """The network and the proxy on every node, then the service as it runs now."""
        self.ensure_network()
        if proxy.ensure(self.target, self.manifest, self.scratch("proxy"), self.log):
            self.log("the proxy service was (re)deployed")
        self.before = state.service(self.target, self.name)
        if self.before is None:
            return None
        running = state.running_nodes(state.tasks(self.target, self.name))
        image = self.before.image
        return Container(image_id=image, image=image, running=bool(running), labels=self.before.labels)

    def configure(self, env: Mapping[str, str], salt: bytes) -> runconfig.Fingerprint:
        settings = runconfig.run_config(self.service, self.manifest.target.network, env)
        self.config = runconfig.fingerprint(settings, salt)
        return self.config

    def ensure_network(self) -> None:
        """The attachable overlay network every service, the proxy and release commands join."""
        checks.ensure_overlay(self.target, self.manifest.target.network)

    def digest_of(self, image: str) -> str | None:
        """`repo@sha256:...` of a pushed image, as the manager knows it; None when it does not."""
        argv = ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", image]
        result = self.target.run(argv, timeout=60)
        if result.returncode != 0:
            return None
        repo = image.rsplit(":", 1)[0] if "/" not in image.rsplit(":", 1)[-1] else image
        return next((ref for ref in json.loads(result.stdout or "[]") if ref.startswith(f"{repo}@")), None)

    def runs_image(self, image: str, old: Container) -> bool:
        return self.digest_of(image) == old.image

    def must_redeploy(self) -> str | None:
        return None

    def healthy(self) -> bool:
        assert self.before is not None
        return state.converged(state.tasks(self.target, self.name), self.before.image, self.replicas)

    def pinned(self) -> str:
        """The new image by digest (`repo@sha256:...`), as every task and the release command run it."""
        if not self.digest:
            digest = self.digest_of(self.image)
            if digest is None:
                raise Outcome("failed", f"{self.image} has no registry digest on the manager; was it pushed?")
            self.digest = digest
        return self.digest

    def release_image(self) -> str:
        """By digest: the manager pulled it (provide), so the one-off container starts without a login."""
        return self.pinned()

    def deliver(self, env_file: str | None) -> None:
        digest = self.pinned()
        self.reporter.phase("switch", f"updating the Swarm service {self.name} to {digest}")
        self.stack_deploy(env_file)
        took = self.wait()
        nodes = ", ".join(state.running_nodes(state.tasks(self.target, self.name)))
        self.reporter.on_deployed()
        self.touched = False
        self.log(f"{self.replicas}/{self.replicas} task(s) run the new image on {nodes} after {took:.1f} s")

    def stack_deploy(self, env_file: str | None) -> None:
        assert self.config is not None
        commit = self.reporter.commit or ""
        files = stack.service_compose(self.manifest, self.service, self.digest, commit, self.config, env_file)
        path = self.scratch("stack") + ".json"
        self.target.put_file(path, stack.dumps(files), mode=0o600)
        argv = [
            "docker", "stack", "deploy", "--with-registry-auth", "--resolve-image", "never",
            "-c", path, stack.stack_name(self.manifest),
        ]  # fmt: skip
        build = self.manifest.build
        credentials = provide.registry_credentials(build)
        deploy = cast(provide.Deployment, self.reporter)  # deployment.Deployment: what a login needs
        try:
            with provide.login_config(deploy, "target", credentials) as docker_config:
                if credentials and build.registry:
                    images.login(self.target, build.registry, *credentials, config_dir=docker_config)
                self.touched = True  # before: a deploy cut short may still reach Swarm
                env = {"DOCKER_CONFIG": docker_config} if docker_config else None
                self.target.run(argv, timeout=120, check=True, env=env)
        finally:
            self.target.run(["rm", "-f", "--", path], timeout=60)

    def bound_s(self) -> float:
        health = self.service.health
        per_task = health.deadline_s + stack.monitor_s(self.service) + self.manifest.proxy.drain_s
        return min(self.reporter.left(), self.replicas * per_task + MARGIN_S)

    def wait(self) -> float:
        """Until the update ended and every task runs the new image; Outcome otherwise. Seconds taken."""
        started = time.monotonic()
        deadline = started + self.bound_s()
        while True:  # one look after the deadline too: the update may have ended in the last poll's sleep
            now = state.service(self.target, self.name)
            if now is None:
                raise Outcome("failed", f"the service {self.name} disappeared during the deploy")
            if now.update_state in state.ROLLED_BACK and now.update_started != self.updated_at():
                self.rolled_back(now, deadline)
            found = self.remember(state.tasks(self.target, self.name))
            ended = now.update_state in state.DONE or now.update_started == self.updated_at()
            if ended and state.converged(found, self.digest, self.replicas):
                return time.monotonic() - started
            if time.monotonic() >= deadline:
                self.timed_out(time.monotonic() - started, found, now)
            time.sleep(POLL_S)

    def remember(self, found: list[state.Task]) -> list[state.Task]:
        """Keep the newest word of every failed task of the new image (the task history is short)."""
        for task in found:
            if task.image == self.digest and (task.error or task.state in {"failed", "rejected"}):
                self.seen[task.id] = task
            if task.image == self.digest and task.state == "starting":
                self.starting.setdefault(task.id, (task, time.monotonic()))
        return found

    def never_healthy(self) -> str | None:
        """A new task seen starting (its healthcheck not passed yet) that never ran: what the log can say when
        Swarm already dropped the failed task from its history."""
        stuck = [(task, since) for task, since in self.starting.values() if task.id not in self.running_ids]
        if not stuck:
            return None
        task, since = stuck[-1]
        return f"{task.describe()} for {time.monotonic() - since:.0f} s: its healthcheck never passed"

    def updated_at(self) -> str:
        return self.before.update_started if self.before else ""

    def rolled_back(self, now: state.Service, deadline: float) -> None:
        """Swarm rolled the update back: wait (bounded) until the old version runs again, then report."""
        self.reporter.phase("rollback", f"Swarm is rolling {self.name} back: {now.update_message}")
        message = now.update_message
        assert self.before is not None
        found: list[state.Task] = []
        back = False
        while not back and time.monotonic() < deadline:
            now = state.service(self.target, self.name) or now
            found = self.remember(state.tasks(self.target, self.name))
            back = now.update_state == "rollback_completed"
            back = back and state.converged(found, self.before.image, self.replicas)
            if not back:
                time.sleep(POLL_S)
        self.running_ids = {task.id for task in found if task.state == "running"}
        why = state.task_error([*found, *self.seen.values()], self.digest, message)
        why = why or self.never_healthy() or message
        if not back:
            missing = "; ".join(task.describe() for task in state.not_converged(found, self.before.image))
            raise Outcome(
                "failed", f"Swarm rolled back ({why}) but the old version did not come back: {missing}"
            )
        self.touched = False
        raise Outcome("rolled_back", f"Swarm rolled the update back: {why}; the previous version serves")

    def timed_out(self, took: float, found: list[state.Task], now: state.Service) -> NoReturn:
        late = state.not_converged(found, self.digest)
        missing = "; ".join(task.describe_for(self.digest) for task in late[: state.SAID_TASKS])
        missing = missing or state.update_unfinished(found, now, self.replicas)
        what = self.restore()
        raise Outcome("failed", f"the tasks did not converge within {took:.0f} s: {missing}; {what}")

    def restore(self) -> str:
        """Undo a deploy that reached Swarm: remove a service this deploy created, else have Swarm go back to
        the previous spec (asynchronously: a lost node must not hold the deploy's end)."""
        if not self.touched:
            return "running service untouched"
        self.touched = False
        if self.before is None:
            self.target.run(["docker", "service", "rm", self.name], timeout=60)
            return "new service removed; nothing was running before"
        now = state.service(self.target, self.name)
        if now is not None and now.update_state in state.ROLLED_BACK:
            return "Swarm rolls back to the previous version"
        self.target.run(["docker", "service", "rollback", "--detach", self.name], timeout=60, check=True)
        return "asked Swarm to roll back to the previous version"

    def settle(self) -> None:
        """Nothing: Swarm stops the old tasks itself."""

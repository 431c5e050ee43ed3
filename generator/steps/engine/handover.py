"""Zero-downtime cutover behind the project proxy: one boot per deploy, and the switch is a rename.

The proxy dials every service by its live name, `<project>-<service>`, and Docker's DNS answers each new
connection with whichever container holds that name. A deploy starts the new version beside the old one as
`<project>-<service>-<commit12>` (no public port; 127.0.0.1 on a random port for the health gate), waits for
it to answer, then renames the old container to its versioned name and the new one onto the live name. The
proxy's config never changes, so no connection of any service is cut; a dial in the instant between the two
renames is retried by the proxy. The old container keeps finishing what it was sent for `drain_s`, then it
is stopped and kept as the rollback point. A failed check through the public port renames them back.
"""

from __future__ import annotations

import json
import time

from ..core import config
from ..core.transport import CommandFailed, Target
from .cutover import (
    RESTORE_STOP_TIMEOUT_S,
    STOP_TIMEOUT_S,
    Cutover,
    HealthFailed,
    crash_reason,
    inspect,
)
from .delivery import Container
from .proxy import Proxy, proxy_lock
from .release import is_release_container

DRAIN_STEP_S = 0.2


def published_ports(target: Target, name: str) -> frozenset[int]:
    """The host ports a container publishes (a container from before the proxy holds its public port)."""
    argv = ["docker", "container", "inspect", "--format", "{{json .HostConfig.PortBindings}}", name]
    result = target.run(argv, timeout=60, check=True)
    try:
        bindings = json.loads(result.stdout) or {}
    except json.JSONDecodeError:
        raise CommandFailed(argv, result) from None
    ports = (bound.get("HostPort") for bounds in bindings.values() for bound in bounds or ())
    return frozenset(int(port) for port in ports if port)


class Handover(Cutover):
    """The container moves of one proxied deploy; restore() undoes whatever part of them happened."""

    def __init__(self, target: Target, manifest: config.Manifest, service: config.Service, image: str):
        super().__init__(target, manifest, service, image)
        self.manifest = manifest
        self.candidate = ""  # the new container's versioned name, once chosen
        self.previous = ""  # where the old container went when the new one took the live name
        self.switched = False  # the new container holds the live name
        self.drained = False  # the old container is stopped
        self.moved = False  # the old container published the port itself; the proxy took the port over
        self.old_ports: frozenset[int] = frozenset()
        self.candidate_id: str | None = None

    def versioned(self, commit: str | None) -> str:
        return f"{self.running}-{(commit or 'unknown')[:12]}"

    def survey(self) -> Container | None:
        """What serves now, after tidying what an interrupted deploy of this service left (we hold its lock).

        Killed between its two renames, a deploy left no live name: the older running version (the one that
        was live) takes it back, so the proxy has something to dial. Any other running version beside the
        live one is a candidate or a drain that never ended: stopped."""
        self.old = inspect(self.target, self.running)
        others = [name for name in self.containers(running=True) if name != self.running]
        if self.old is None and others:
            self.log(f"{others[-1]} takes the live name {self.running} back from an interrupted deploy")
            self.docker("rename", others.pop(), self.running)
            self.old = inspect(self.target, self.running)
        for name in others:
            self.log(f"stopping {name}, left running by an interrupted deploy")
            self.docker("stop", "-t", str(RESTORE_STOP_TIMEOUT_S), name, timeout=RESTORE_STOP_TIMEOUT_S + 30)
        if self.old:
            self.old_ports = published_ports(self.target, self.running)
        self.ensure_network()  # the proxy runs on it
        proxy = Proxy(self.target, self.manifest, self.log)
        proxy.ensure_for(self.service, self.service.port in self.old_ports)
        return self.old

    def containers(self, *, running: bool) -> list[str]:
        """This service's containers, newest first: running ones, or stopped ones (never a release command's,
        which is no version of the service)."""
        state = ["--filter", "status=running"] if running else ["--filter", "status=exited"]
        names = self.docker(
            "ps", "-a", "--filter", f"label=wfgen.project={self.project}",
            "--filter", f"label=wfgen.service={self.service.name}", *state, "--format", "{{.Names}}",
        ).splitlines()  # fmt: skip
        return [name for name in names if not is_release_container(name, self.project, self.service.name)]

    def name_candidate(self) -> str:
        """`<live name>-<commit12>`: the new version beside the old one (`-next` for the same commit again,
        as after a configuration change: the old one will go by the plain versioned name)."""
        commit = self.commit_of(self.image)
        self.candidate = self.versioned(commit)
        if self.old and self.old.labels.get("wfgen.commit", "")[:12] == commit[:12]:
            self.candidate += "-next"
        return self.candidate

    def start_candidate(self, env_file: str | None) -> str:
        """Run the new version beside the old one; returns the URL of its health check on the target."""
        self.docker("rm", "-f", self.name_candidate(), check=False)  # a rollback point of this very commit
        url = super().start_candidate(env_file)
        self.candidate_id = self.container_id(self.candidate)  # restore() tells it apart by id, not name
        return url

    def container_id(self, name: str) -> str | None:
        """The id of the container called `name`, or None when there is none."""
        argv = ["docker", "container", "inspect", "--format", "{{.Id}}", name]
        result = self.target.run(argv, timeout=60)
        if result.returncode != 0 and "no such" in result.stderr.lower():
            return None
        if result.returncode != 0 or not result.stdout.strip():
            raise CommandFailed(argv, result)
        return result.stdout.strip()

    @staticmethod
    def commit_of(image: str) -> str:
        return image.rsplit(":", 1)[-1]

    def switch(self, env_file: str | None) -> float:
        """Move the live name to the new container (nothing goes dark); returns when that happened."""
        if self.old and self.service.port in self.old_ports:
            self.move_behind_proxy()
            return time.monotonic()
        self.switched = True  # set before the renames: restore() then looks at what holds which name
        if self.old:
            # Never the candidate's name: the same commit again made that one -next.
            self.previous = self.versioned(self.old.labels.get("wfgen.commit"))
            self.docker("rm", "-f", self.previous, check=False)
            self.docker("rename", self.running, self.previous)
        self.docker("rename", self.candidate, self.running)
        self.created = True
        return time.monotonic()

    def move_behind_proxy(self) -> None:
        """The old container publishes the public port itself: stop it, then have the proxy publish it."""
        assert self.old is not None
        port = self.service.port
        self.log(f"moving {self.running} behind the proxy: port {port} is dark until the proxy publishes it")
        self.previous = self.versioned(self.old.labels.get("wfgen.commit")) + "-direct"
        self.docker("rm", "-f", self.previous, check=False)
        self.switched = self.moved = self.stopping = True  # before: restore() restarts the old one
        self.docker("stop", "-t", str(STOP_TIMEOUT_S), self.running, timeout=STOP_TIMEOUT_S + 60)
        self.drained = True
        self.docker("rename", self.running, self.previous)
        self.docker("rename", self.candidate, self.running)
        self.created = True
        self.republish(port, add=True)

    def republish(self, port: int, *, add: bool) -> None:
        """Under the proxy lock: the proxy publishes the manifest's ports with (or without) `port`; without
        it, the old container takes the port back before the lock goes, so no other leg can take it."""
        proxy = Proxy(self.target, self.manifest, self.log)
        with proxy_lock(self.target, self.manifest, self.log):
            ports, _held = proxy.plan_ports()
            proxy.ensure(sorted(set(ports) | {port} if add else set(ports) - {port}))
            if not add:
                self.docker("start", self.running)

    def verify(self) -> float:
        """As the restart cutover's check, but a new container that died before the switch fails at once:
        while it holds the live name the proxy has nothing to dial, so every second counts."""
        problem = crash_reason(self.target, self.running)
        if problem:
            raise HealthFailed(problem)
        return super().verify()

    def must_redeploy(self) -> str | None:
        if self.service.port in self.old_ports:
            return f"{self.running} publishes port {self.service.port} itself and moves behind the proxy"
        return None

    def switch_note(self) -> str:
        if self.moved:
            port = self.service.port
            return f"moved behind the proxy: port {port} reaches {self.candidate} as {self.running}"
        if self.old:
            return f"switched: {self.candidate} is {self.running} now; {self.previous} keeps the old version"
        return f"started: {self.candidate} is {self.running}"

    def served(self, dark_since: float) -> str:
        how = "moved behind the proxy" if self.moved else "through the proxy; nothing went dark"
        return f"healthy on port {self.service.port} ({how})"

    def draining(self) -> str | None:
        if not self.previous or self.drained:
            return None
        return f"{self.previous} finishes its requests for {self.manifest.proxy.drain_s:g} s, then stops"

    def drain(self) -> None:
        """Let the old container finish what it was sent, then stop it (kept as the rollback point)."""
        if not self.previous or self.drained:
            return
        self.wait(self.manifest.proxy.drain_s)
        self.docker("stop", "-t", str(STOP_TIMEOUT_S), self.previous, timeout=STOP_TIMEOUT_S + 60)
        self.drained = True

    def settle(self) -> None:
        """Deployed, but cancelled before the drain ended: stop the old container within the cancel window."""
        if self.previous and not self.drained:
            stop = str(RESTORE_STOP_TIMEOUT_S)
            self.docker("stop", "-t", stop, self.previous, timeout=RESTORE_STOP_TIMEOUT_S + 30, check=False)
            self.drained = True

    @staticmethod
    def wait(seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(DRAIN_STEP_S, left))

    def commit(self) -> None:
        """The new version serves and the old one is stopped: it stays as the one rollback point."""
        self.touched = False
        stale = [name for name in self.containers(running=False) if name not in {self.running, self.previous}]
        if stale:
            self.docker("rm", *stale, check=False)

    def _restore(self) -> str:
        """Undo the deploy from wherever it stopped, judged by what holds which name now (a signal may have
        cut any step short); only ever removes the container it started."""
        if not self.candidate:
            return "running container untouched"
        if not self.switched:
            self.docker("rm", "-f", self.candidate, check=False)
            return "new container removed; running container untouched"
        live = self.container_id(self.running)
        if live is not None and live == self.candidate_id:
            self.docker("rename", self.running, self.candidate)
            live = None
        self.docker("rm", "-f", self.candidate, check=False)
        if self.old is None:
            return "new container removed; nothing was running before"
        if live is None and self.previous and self.container_id(self.previous):
            self.docker("rename", self.previous, self.running)
        if self.moved:
            self.republish(self.service.port, add=False)  # the old one publishes the port itself again
        elif self.drained or self.stopping:
            self.docker("start", self.running)
        return "previous container serves again"

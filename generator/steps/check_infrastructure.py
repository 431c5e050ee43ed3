"""Check the deploy target before any service starts: reachable, Docker, networks, disk, TCP deps, secrets.

It also creates the project network (target.network) if missing: deploy legs creating it at the same time
can leave duplicate networks of one name on Docker < 25.
"""

from __future__ import annotations

import argparse
import functools
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from .core import config, config_load, steplib
from .core.lock import LockTimeout
from .core.report_text import append_step_summary, markdown_cell
from .core.steplib import secret_flag
from .core.target import open_target
from .core.transport import CommandFailed, Target, TargetError
from .engine.probe import tcp_probe
from .engine.proxy import Proxy, ProxyError, proxied, proxy_lock
from .engine.swarm import checks as swarm_checks
from .engine.swarm.stack import proxy_name

SUBJECT = "infrastructure"
TCP_TIMEOUT_S = 5.0
UNREACHABLE = "target unreachable"
NO_HTTP_CLIENT = "neither curl nor wget on the target; install curl"
# Clients before Docker 23 exit 0 when the engine is down, with its error in .ServerErrors (and a template
# error for any server field); newer ones exit 1 with the error on stderr. Either way: the engine's words.
DOCKER_INFO = (
    "{{if .ServerErrors}}{{range .ServerErrors}}{{.}}{{end}}"
    "{{else}}{{.ServerVersion}}|{{.DockerRootDir}}{{end}}"
)
NOT_SET = "not set in the environment"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    reason: str

    def row(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.name} — {self.reason}"


def _problem(stderr: str, stdout: str = "") -> str:
    lines = [line.strip() for line in (stderr + "\n" + stdout).splitlines() if line.strip()]
    return lines[0][:200] if lines else "no output"


class Checker:
    """The target-side checks, in order; facts learned by one (the Docker root) feed the next."""

    def __init__(self, manifest: config.Manifest, target: Target):
        self.manifest = manifest
        self.target = target
        self.docker_root: str | None = None

    def planned(self) -> Iterator[tuple[str, Callable[[], Check]]]:
        infra = self.manifest.infrastructure
        if self.target.kind == "ssh":
            yield "target reachable", self.reachable
        yield "docker engine", self.docker
        if self.manifest.target.kind == "swarm":
            yield from self.swarm()
        else:
            yield from self.host()
        for network in infra.networks:
            if network != self.manifest.target.network:
                yield f"network {network}", functools.partial(self.network, network)
        yield "free disk", functools.partial(self.disk, infra.min_free_disk_mb)
        for endpoint in infra.tcp:
            host, port = endpoint.host, endpoint.port
            yield f"tcp {_hostport(host, port)}", functools.partial(self.tcp, host, port)

    def host(self) -> Iterator[tuple[str, Callable[[], Check]]]:
        yield "http client", self.http_client
        project_network = self.manifest.target.network
        yield f"network {project_network}", functools.partial(self.ensure_network, project_network)
        if proxied(self.manifest):
            yield f"proxy {self.manifest.proxy.container}", self.proxy

    def swarm(self) -> Iterator[tuple[str, Callable[[], Check]]]:
        """On a swarm (engine/swarm/checks.py): manager, nodes, the overlay, the registry, the proxy."""
        manifest, target = self.manifest, self.target
        log = functools.partial(steplib.log, SUBJECT)
        network = manifest.target.network
        for name, check in (
            ("swarm manager", lambda: swarm_checks.manager(target)),
            ("swarm nodes", lambda: swarm_checks.nodes(target)),
            (f"network {network}", lambda: swarm_checks.network(target, manifest)),
            ("registry login", lambda: swarm_checks.registry(target, manifest)),
            (
                f"proxy service {proxy_name(manifest)}",
                lambda: swarm_checks.proxy_service(target, manifest, log),
            ),
        ):
            yield name, functools.partial(self.wrapped, name, check)

    @staticmethod
    def wrapped(name: str, check: Callable[[], tuple[bool, str]]) -> Check:
        ok, reason = check()
        return Check(name, ok, reason)

    def proxy(self) -> Check:
        """Start the proxy when missing, give it the ports and routes of the manifest, and see it answer."""
        name = f"proxy {self.manifest.proxy.container}"
        proxy = Proxy(self.target, self.manifest, lambda message: steplib.log(SUBJECT, message))
        try:
            with proxy_lock(self.target, self.manifest, proxy.log):
                ports, held = proxy.plan_ports()
                taken = [
                    f"port {p} is held by {who}" for p, who in held.items() if not proxy.moves_behind(p, who)
                ]
                if taken:
                    return Check(name, False, "; ".join(taken))
                done = proxy.ensure(ports)
        except (ProxyError, LockTimeout, CommandFailed, OSError) as exc:
            return Check(name, False, str(exc))
        moving = [f"port {p} moves behind it on the next deploy of {who}" for p, who in held.items()]
        published = ", ".join(str(port) for port in ports) or "none yet"
        return Check(name, True, "; ".join([f"{done}, ports {published}", *moving]))

    def reachable(self) -> Check:
        self.target.run(["true"], timeout=float(self.manifest.target.connect_timeout_s) + 20)
        return Check("target reachable", True, self.target.description)

    def docker(self) -> Check:
        result = self.target.run(["docker", "info", "--format", DOCKER_INFO], timeout=30)
        version, bar, root = result.stdout.strip().partition("|")
        if result.returncode != 0 or not bar or not version:
            return Check("docker engine", False, _problem(result.stderr, result.stdout))
        self.docker_root = root or None
        return Check("docker engine", True, f"server {version}")

    def http_client(self) -> Check:
        """Health probes on an ssh target run curl or wget there; local probes use urllib."""
        if self.target.kind == "local":
            return Check("http client", True, "not needed: local probes use Python's urllib")
        result = self.target.run(["sh", "-c", "command -v curl || command -v wget"], timeout=20)
        found = result.stdout.strip().splitlines()
        if result.returncode == 0 and found:
            return Check("http client", True, posixpath.basename(found[0]))
        return Check("http client", False, NO_HTTP_CLIENT)

    def _inspect_network(self, name: str) -> tuple[bool | None, str]:
        """(True, "") if it exists, (False, "") if it does not, (None, problem) if Docker could not say."""
        result = self.target.run(["docker", "network", "inspect", "--format", "{{.Name}}", name], timeout=20)
        if result.returncode == 0:
            return True, ""
        if "No such network" in result.stderr or "not found" in result.stderr:
            return False, ""
        return None, _problem(result.stderr)

    def network(self, name: str) -> Check:
        exists, problem = self._inspect_network(name)
        if exists is None:
            return Check(f"network {name}", False, problem)
        if not exists:
            return Check(f"network {name}", False, f"missing: create it with 'docker network create {name}'")
        return Check(f"network {name}", True, "exists")

    def ensure_network(self, name: str) -> Check:
        """The project network, created here once rather than by parallel deploy legs."""
        exists, problem = self._inspect_network(name)
        if exists is None:  # e.g. "ambiguous": creating yet another one would make it worse
            return Check(f"network {name}", False, problem)
        if exists:
            return Check(f"network {name}", True, "exists")
        result = self.target.run(["docker", "network", "create", name], timeout=60)
        if result.returncode == 0:
            return Check(f"network {name}", True, "created")
        return Check(f"network {name}", False, _problem(result.stderr, result.stdout))

    def disk(self, minimum_mb: int) -> Check:
        state_dir = self.manifest.target.state_dir
        candidates = [self.docker_root, self.target.home_path(state_dir), self.target.home_path(".")]
        for path in dict.fromkeys(c for c in candidates if c):
            free_mb = self._free_mb(path)
            if free_mb is None:
                continue
            reason = f"{free_mb} MB free on {path} (need {minimum_mb} MB)"
            return Check("free disk", free_mb >= minimum_mb, reason)
        return Check("free disk", False, "could not measure free space ('df -Pk' failed)")

    def _free_mb(self, path: str) -> int | None:
        result = self.target.run(["df", "-Pk", path], timeout=20)
        lines = result.stdout.strip().splitlines()
        if result.returncode != 0 or len(lines) < 2:
            return None
        fields = lines[-1].split()
        try:
            return int(fields[3]) // 1024
        except (IndexError, ValueError):
            return None

    def tcp(self, host: str, port: int) -> Check:
        name = f"tcp {_hostport(host, port)}"
        if tcp_probe(self.target, host, port, TCP_TIMEOUT_S):
            return Check(name, True, "answers")
        return Check(name, False, f"no answer within {TCP_TIMEOUT_S:g} s from {self.target.description}")


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def secret_flags(names: Iterable[str], environ: Mapping[str, str]) -> dict[str, str]:
    """What `wfgen deploy` passes for each secret it only checks; the workflow passes `secrets.X != ''`."""
    return {secret_flag(name): "true" if environ.get(name, "") != "" else "false" for name in names}


def check_secrets(names: Iterable[str], environ: Mapping[str, str]) -> list[Check]:
    """From the flag when given, else (a hand-run check) from whether the variable itself is empty."""
    checks = []
    for name in names:
        flag = environ.get(secret_flag(name))
        is_set = flag.strip().lower() == "true" if flag is not None else environ.get(name, "") != ""
        checks.append(
            Check(f"secret {name}", True, "set") if is_set else Check(f"secret {name}", False, NOT_SET)
        )
    return checks


def run_checks(manifest: config.Manifest, target: Target, environ: Mapping[str, str]) -> list[Check]:
    """Every check, in order; once the target is unreachable the remaining target-side checks say so."""
    checks: list[Check] = []
    lost = False
    for name, check in Checker(manifest, target).planned():
        if lost:
            checks.append(Check(name, False, UNREACHABLE))
            continue
        try:
            done = check()
            checks.append(Check(done.name, done.ok, target.redact(done.reason)))
        except TargetError as exc:
            lost = True
            checks.append(Check(name, False, str(exc)))
    return checks + check_secrets(manifest.infrastructure.secrets, environ)


def summary_markdown(checks: list[Check], description: str) -> str:
    lines = [f"### Infrastructure checks ({description})", "", "| | check | result |", "| --- | --- | --- |"]
    for check in checks:
        name, reason = markdown_cell(check.name), markdown_cell(check.reason)
        lines.append(f"| {'✓' if check.ok else '✗'} | {name} | {reason} |")
    return "\n".join(lines) + "\n\n"


def report(checks: list[Check], description: str, environ: Mapping[str, str]) -> None:
    for check in checks:
        print(check.row(), flush=True)
    append_step_summary(summary_markdown(checks, description), environ)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="check_infrastructure.py", description=__doc__)
    steplib.add_manifest_option(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    args = parse_args(argv)
    try:
        manifest = config_load.load(args.manifest)
        target = open_target(manifest.target, environ)
    except steplib.UsageError as exc:
        steplib.error(SUBJECT, str(exc))
        return steplib.Exit.USAGE
    with target:
        steplib.log(SUBJECT, f"checking {target.description}")
        checks = run_checks(manifest, target, environ)
    report(checks, target.description, environ)
    failed = [check for check in checks if not check.ok]
    if failed:
        steplib.error(
            SUBJECT, f"{len(failed)} of {len(checks)} checks failed: {', '.join(c.name for c in failed)}"
        )
        return steplib.Exit.FAILED
    steplib.log(SUBJECT, f"all {len(checks)} checks passed")
    return steplib.Exit.OK


if __name__ == "__main__":
    raise SystemExit(main())

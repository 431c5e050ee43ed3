"""What the swarm engine asks Swarm for, as `docker stack deploy` compose files: pure, tested without a swarm.

Why `docker stack deploy` and not `docker service create/update`: `service update` takes environment values
only as `--env-add NAME=VALUE` arguments (no `--env-file`), and `--health-cmd` is always CMD-SHELL, which an
image without /bin/sh cannot run. A compose file names the env-file (the CLI on the manager reads it and sends
the values to Swarm) and carries an exec-form healthcheck; one command creates or updates the service. Each
service is deployed alone into the project's stack (no --prune), so a leg touches only its own service.

The files are JSON (YAML's subset); they hold no secret, only the env-file's path.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ...core import config, runconfig

COMPOSE_VERSION = "3.8"
HEALTH_RETRIES = 3
MIN_MONITOR_S = 3.0


def stack_name(manifest: config.Manifest) -> str:
    return manifest.project.name


def service_name(manifest: config.Manifest, service: config.Service) -> str:
    """The Swarm service: the stack's `<stack>_<service>`, also the DNS name the proxy resolves."""
    return f"{stack_name(manifest)}_{service.name}"


def proxy_name(manifest: config.Manifest) -> str:
    return f"{stack_name(manifest)}_proxy"


def seconds(value: float) -> str:
    """A compose duration: '1.5s'."""
    return f"{value:g}s"


def health_url(service: config.Service) -> str:
    return f"http://127.0.0.1:{service.container_port}{service.health.path}"


def healthcheck(service: config.Service) -> dict[str, Any]:
    """Swarm's own health gate from the manifest's `health`: a task counts as started only once healthy.

    Failures within start_period do not count, and a first success ends it: so a task has about deadline_s
    to answer, then HEALTH_RETRIES failed probes mark it unhealthy."""
    health = service.health
    retries_s = HEALTH_RETRIES * health.interval_s
    check: dict[str, Any] = {
        "interval": seconds(health.interval_s),
        "timeout": seconds(health.timeout_s),
        "retries": HEALTH_RETRIES,
        "start_period": seconds(max(health.start_grace_s, health.deadline_s - retries_s, 0.0)),
    }
    command = service.swarm.health_command if service.swarm else None
    if command is None:
        url = health_url(service)
        probe = f"wget -q -O /dev/null {url} || curl -fsS -o /dev/null {url}"
        check["test"] = ["CMD-SHELL", probe]
    elif command != "image":  # "image": the image's own HEALTHCHECK test, with these timings
        check["test"] = ["CMD", *command]
    return check


def monitor_s(service: config.Service) -> float:
    """How long after a new task starts a failure still fails (and rolls back) the update."""
    return max(MIN_MONITOR_S, 2 * service.health.interval_s)


def update_policy(service: config.Service) -> dict[str, Any]:
    """Start-first, one task at a time, rolled back by Swarm on the first failed task; rollbacks too."""
    monitor = seconds(monitor_s(service))
    return {
        "update_config": {
            "parallelism": 1, "delay": "0s", "order": "start-first", "failure_action": "rollback",
            "monitor": monitor, "max_failure_ratio": 0,
        },
        "rollback_config": {
            "parallelism": 1, "delay": "0s", "order": "start-first", "failure_action": "pause",
            "monitor": monitor, "max_failure_ratio": 0,
        },
    }  # fmt: skip


def labels(
    manifest: config.Manifest, service: config.Service, commit: str, fingerprint: runconfig.Fingerprint
) -> dict[str, str]:
    parts = json.dumps(fingerprint.parts, sort_keys=True, separators=(",", ":"))
    plain = runconfig.vars_label_args(service)  # ["--label", "wfgen.vars=..."]: its plain values, shown
    return {
        "wfgen.project": manifest.project.name,
        "wfgen.service": service.name,
        "wfgen.commit": commit,
        runconfig.LABEL: fingerprint.digest,
        runconfig.PARTS_LABEL: parts,
        **dict(arg.split("=", 1) for arg in plain[1::2]),
    }


def service_compose(
    manifest: config.Manifest,
    service: config.Service,
    image: str,
    commit: str,
    fingerprint: runconfig.Fingerprint,
    env_file: str | None,
) -> dict[str, Any]:
    """The stack file that creates or updates one service: `image` is `repo@sha256:...`."""
    assert service.swarm is not None  # config_load.load: set on a swarm
    network = manifest.target.network
    deploy: dict[str, Any] = {
        "mode": "replicated",
        "replicas": service.swarm.replicas,
        "endpoint_mode": "dnsrr",  # no routing mesh (no IPVS): the proxy resolves each task itself
        "labels": labels(manifest, service, commit, fingerprint),
        "restart_policy": {"condition": "any", "delay": "1s"},
        **update_policy(service),
    }
    if service.swarm.placement:
        deploy["placement"] = {"constraints": list(service.swarm.placement)}
    spec: dict[str, Any] = {
        "image": image,
        "init": True,
        "networks": [network],
        "healthcheck": healthcheck(service),
        "stop_grace_period": seconds(max(manifest.proxy.drain_s, 1.0)),
        "labels": {"wfgen.project": manifest.project.name, "wfgen.service": service.name},
        "deploy": deploy,
    }
    if env_file:
        spec["env_file"] = [env_file]
    return {
        "version": COMPOSE_VERSION,
        "services": {service.name: spec},
        "networks": {network: {"external": True, "name": network}},
    }


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def dumps(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

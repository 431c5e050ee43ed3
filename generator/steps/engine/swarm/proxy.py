"""The project proxy on a swarm: Caddy as a global Swarm service, publishing every service's port on each
node.

There is no routing mesh (no IPVS here): each node's Caddy publishes the ports in host mode and resolves the
service's dnsrr name as it goes, so a request to any node reaches a task on any node. Swarm adds a task to
the name once its healthcheck passes and takes it out 2 s before stopping it; Caddy re-resolves every second,
retries another address when a dial fails, and sets a failing one aside for a moment: so an update or a
rollback fails no request.

A lost node is different: its tasks vanish without closing anything, and stay in the name for some seconds
(about 6 in the lab) until Swarm sees the node down. So Caddy keeps no idle connection to a task (a request
sent on one to a vanished task waits forever, never retried) and gives up a dial after 500 ms: a request that
picks a vanished task moves on to the next one soon, even where Caddy does not set the failing address aside
(2.6 forgets a dynamic upstream's failures after each request). What no proxy setting saves without capping
every response's time: a request already sent to a task at the instant its node dies.

The Caddyfile is a Swarm config named after its content, so the proxy changes only when the manifest's
services, ports or proxy placement do, or a new wfgen writes another Caddyfile (its first check-infrastructure
then updates the proxy node by node), never on a deploy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ...core import config
from ...core.transport import CommandFailed, Target
from ..proxy import proxy_lock
from . import stack

CONFIG_LABEL = "wfgen.proxy.config"
CADDYFILE = "/etc/caddy/Caddyfile"


def site(manifest: config.Manifest, service: config.Service) -> str:
    return f"""\
:{service.port} {{
	reverse_proxy {{
		dynamic a {{
			name {stack.service_name(manifest, service)}
			port {service.container_port}
			refresh 1s
		}}
		lb_policy round_robin
		lb_try_duration 5s
		lb_try_interval 50ms
		fail_duration 2s
		transport http {{
			dial_timeout 500ms
			keepalive off
		}}
	}}
}}
"""


def where(manifest: config.Manifest) -> str:
    """The nodes the proxy runs on, as the manifest says it."""
    placement = manifest.proxy.placement
    return f"the nodes where {' and '.join(placement)}" if placement else "every node"


def caddyfile(manifest: config.Manifest) -> str:
    sites = "".join(site(manifest, service) for service in manifest.services.values())
    return "{\n\tadmin off\n\tauto_https off\n}\n" + sites


def compose(manifest: config.Manifest, caddyfile_path: str, digest: str) -> dict[str, Any]:
    network = manifest.target.network
    config_key = f"caddyfile-{digest}"
    deploy: dict[str, Any] = {
        "mode": "global",
        "labels": {CONFIG_LABEL: digest, "wfgen.project": manifest.project.name},
        # Host-mode ports: a node's new proxy cannot start beside its old one; nodes take turns.
        "update_config": {"parallelism": 1, "order": "stop-first", "failure_action": "rollback"},
        "restart_policy": {"condition": "any", "delay": "1s"},
    }
    if manifest.proxy.placement:  # global on the matching nodes only: the ones a load balancer points at
        deploy["placement"] = {"constraints": list(manifest.proxy.placement)}
    ports = [
        {"target": s.port, "published": s.port, "protocol": "tcp", "mode": "host"}
        for s in manifest.services.values()
    ]
    spec = {
        "image": manifest.proxy.image,
        "entrypoint": ["caddy"],
        "command": ["run", "--config", CADDYFILE, "--adapter", "caddyfile"],
        "networks": [network],
        "ports": ports,
        "configs": [{"source": config_key, "target": CADDYFILE}],
        "deploy": deploy,
    }
    return {
        "version": stack.COMPOSE_VERSION,
        "services": {"proxy": spec},
        "networks": {network: {"external": True, "name": network}},
        "configs": {config_key: {"file": caddyfile_path, "name": f"{manifest.project.name}-caddy-{digest}"}},
    }


def current(target: Target, manifest: config.Manifest) -> dict[str, Any] | None:
    """The proxy service's spec, or None when there is none."""
    argv = ["docker", "service", "inspect", stack.proxy_name(manifest)]
    result = target.run(argv, timeout=60)
    if result.returncode != 0 and "no such" in result.stderr.lower():
        return None
    if result.returncode != 0:
        raise CommandFailed(argv, result)
    return dict(json.loads(result.stdout)[0]["Spec"])


def is_current(spec: dict[str, Any] | None, manifest: config.Manifest, digest: str) -> bool:
    if spec is None:
        return False
    image = spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", "")
    wanted = manifest.proxy.image
    labelled = spec.get("Labels", {}).get(CONFIG_LABEL) == digest
    return bool(labelled and image.startswith(wanted.split("@")[0]))


def ensure(target: Target, manifest: config.Manifest, scratch: str, log: Callable[[str], None]) -> bool:
    """Deploy the proxy service when it is missing or out of date; True when it was (re)deployed.
    `scratch`: a path on the manager for the stack files, removed afterwards."""
    text = caddyfile(manifest)
    placement = "".join(f"\n{constraint}" for constraint in manifest.proxy.placement)  # none: as before
    digest = stack.digest_of(text + manifest.proxy.image + placement)
    if is_current(current(target, manifest), manifest, digest):
        return False
    with proxy_lock(target, manifest, log):
        if is_current(current(target, manifest), manifest, digest):
            return False
        log(f"deploying the proxy {stack.proxy_name(manifest)} on {where(manifest)}")
        target.run(["mkdir", "-p", "--", scratch], timeout=60, check=True)
        try:
            target.put_file(f"{scratch}/Caddyfile", text.encode(), mode=0o644)
            files = compose(manifest, f"{scratch}/Caddyfile", digest)
            target.put_file(f"{scratch}/proxy.json", stack.dumps(files), mode=0o600)
            argv = ["docker", "stack", "deploy", "-c", f"{scratch}/proxy.json", stack.stack_name(manifest)]
            target.run(argv, timeout=120, check=True)
        finally:
            target.run(["rm", "-rf", "--", scratch], timeout=60)
    return True

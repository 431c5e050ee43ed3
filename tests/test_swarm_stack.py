"""The swarm engine's stack files (generator/steps/engine/swarm/stack.py, proxy.py): pure, no swarm needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.steps.core import config, config_load, runconfig
from generator.steps.engine.swarm import proxy, stack
from tests.support.manifests import manifest_toml, write_resolved_manifest

DIGEST = "registry.example.com/shop/shop/web@sha256:" + "a" * 64


def swarm_manifest(tmp_path: Path, **web: object) -> config.Manifest:
    text = manifest_toml(
        {"web": {"repository": "o/web", "port": 8080, "container_port": 3000, **web},
         "api": {"repository": "o/api", "port": 8081}},
        project={"name": "shop"}, target={"kind": "swarm", "manager": "local"},
    ) + '\n[build]\nwhere = "runner"\nregistry = "registry.example.com/shop"\n'  # fmt: skip
    return config_load.load(write_resolved_manifest(tmp_path, text))


def compose(manifest: config.Manifest, env_file: str | None = None) -> dict[str, object]:
    fingerprint = runconfig.fingerprint({"a": 1}, b"salt" * 8)
    service = manifest.services["web"]
    return stack.service_compose(manifest, service, DIGEST, "c" * 40, fingerprint, env_file)


def test_a_service_is_replicated_dnsrr_by_digest_on_the_overlay(tmp_path: Path) -> None:
    manifest = swarm_manifest(tmp_path, replicas=3, placement=["node.labels.tier == api"])
    files = compose(manifest, "/home/deploy/.wfgen/env/web-abc.env")
    spec = files["services"]["web"]  # type: ignore[index]
    assert spec["image"] == DIGEST
    assert spec["env_file"] == ["/home/deploy/.wfgen/env/web-abc.env"]  # a path: never a value
    assert spec["networks"] == [manifest.target.network]
    deploy = spec["deploy"]
    assert (deploy["replicas"], deploy["endpoint_mode"]) == (3, "dnsrr")
    assert deploy["placement"] == {"constraints": ["node.labels.tier == api"]}
    assert deploy["update_config"]["order"] == "start-first"
    assert deploy["update_config"]["failure_action"] == "rollback"
    assert deploy["rollback_config"]["order"] == "start-first"
    assert deploy["labels"]["wfgen.commit"] == "c" * 40
    assert runconfig.LABEL in deploy["labels"]
    assert files["networks"] == {manifest.target.network: {"external": True, "name": manifest.target.network}}
    assert stack.service_name(manifest, manifest.services["web"]) == "shop_web"


@pytest.mark.parametrize(
    ("command", "test"),
    [
        (None, ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:3000/health "
                "|| curl -fsS -o /dev/null http://127.0.0.1:3000/health"]),
        (["/bin/check", "--quick"], ["CMD", "/bin/check", "--quick"]),
        ("image", None),
    ],
)  # fmt: skip
def test_the_healthcheck_comes_from_the_manifest(tmp_path: Path, command: object, test: object) -> None:
    health: dict[str, object] = {"interval_s": 2, "timeout_s": 3, "deadline_s": 30}
    if command is not None:
        health["command"] = command
    manifest = swarm_manifest(tmp_path, health=health)
    check = stack.healthcheck(manifest.services["web"])
    assert check.get("test") == test
    # about deadline_s to answer: failures in start_period do not count, then 3 failed probes end it
    assert (check["interval"], check["timeout"], check["retries"], check["start_period"]) == (
        "2s",
        "3s",
        3,
        "24s",
    )


def test_the_proxy_resolves_every_service_and_publishes_its_port_in_host_mode(tmp_path: Path) -> None:
    manifest = swarm_manifest(tmp_path)
    text = proxy.caddyfile(manifest)
    assert "name shop_web\n\t\t\tport 3000" in text and "name shop_api\n\t\t\tport 8081" in text
    files = proxy.compose(manifest, "/state/proxy/Caddyfile", "abc")
    spec = files["services"]["proxy"]
    assert spec["deploy"]["mode"] == "global"
    assert [(p["published"], p["mode"]) for p in spec["ports"]] == [(8080, "host"), (8081, "host")]
    assert json.loads(stack.dumps(files)) == files


def test_the_proxy_runs_on_the_nodes_proxy_placement_names(tmp_path: Path) -> None:
    text = manifest_toml(
        {"web": {"repository": "o/web", "port": 8080}}, project={"name": "shop"},
        target={"kind": "swarm", "manager": "local"}, proxy={"placement": ["node.labels.edge == true"]},
    ) + '\n[build]\nwhere = "runner"\nregistry = "registry.example.com/shop"\n'  # fmt: skip
    placed = config_load.load(write_resolved_manifest(tmp_path, text))
    spec = proxy.compose(placed, "/state/proxy/Caddyfile", "abc")["services"]["proxy"]
    assert spec["deploy"]["mode"] == "global"
    assert spec["deploy"]["placement"] == {"constraints": ["node.labels.edge == true"]}
    assert proxy.where(placed) == "the nodes where node.labels.edge == true"
    everywhere = proxy.compose(swarm_manifest(tmp_path), "/state/proxy/Caddyfile", "abc")["services"]["proxy"]
    assert "placement" not in everywhere["deploy"]

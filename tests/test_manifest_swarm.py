"""`[target] kind = "swarm"` in services.toml: what it resolves to, and every mistake as one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.errors import ManifestError
from generator.manifest.resolve import resolve_manifest
from generator.manifest.validate import parse_manifest
from tests.test_config import check_view

SWARM = """\
[project]
name = "shop"
[target]
kind = "swarm"
[build]
where = "runner"
registry = "registry.example.com/shop"
[services.web]
repository = "o/web"
port = 8080
"""
HOST = '[project]\nname = "shop"\n[services.web]\nrepository = "o/web"\nport = 8080\n'


def test_a_swarm_service_resolves_with_its_replicas_placement_and_health_command() -> None:
    text = (
        SWARM
        + 'replicas = 3\nplacement = ["node.labels.tier == api"]\nhealth.command = ["wget", "-qO-", "x"]\n'
    )
    resolved = resolve_manifest(parse_manifest(text))
    assert resolved["target"]["kind"] == "swarm"
    assert resolved["target"]["manager"] == "ssh"  # the default: the manager is reached like an ssh target
    assert resolved["target"]["host_env"] == "VPS_HOST"
    assert resolved["services"]["web"]["swarm"] == {
        "replicas": 3,
        "placement": ["node.labels.tier == api"],
        "health_command": ["wget", "-qO-", "x"],
    }
    assert "command" not in resolved["services"]["web"]["health"]


def test_a_local_manager_has_no_ssh_settings_and_one_replica_by_default() -> None:
    resolved = resolve_manifest(
        parse_manifest(SWARM.replace('kind = "swarm"', 'kind = "swarm"\nmanager = "local"'))
    )
    assert resolved["target"]["manager"] == "local"
    assert resolved["target"]["host_env"] is None and resolved["target"]["port"] is None
    assert resolved["services"]["web"]["swarm"] == {"replicas": 1, "placement": [], "health_command": None}


def test_a_single_host_service_has_no_swarm_settings() -> None:
    resolved = resolve_manifest(parse_manifest(HOST))
    assert resolved["target"]["manager"] is None
    assert resolved["services"]["web"]["swarm"] is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param(SWARM.replace('where = "runner"', 'where = "target"'),
                     "services.toml:4: target.kind: 'swarm' needs images in a registry every node pulls from: "
                     "set build.where = 'runner' and build.registry", id="no-registry-build"),
        pytest.param(SWARM + "replicas = 0\n", "services.toml:11: services.web.replicas: must be at least 1",
                     id="replicas-zero"),
        pytest.param(SWARM + "replicas = 101\n", "services.toml:11: services.web.replicas: must be at most 100",
                     id="replicas-too-many"),
        pytest.param(SWARM + 'placement = ["tier = api"]\n',
                     "services.toml:11: services.web.placement[0]: must be a Swarm constraint such as "
                     "'node.labels.tier == api' or 'node.role != manager'", id="malformed-constraint"),
        pytest.param(SWARM + 'placement = ["node.labels.tier == api; rm -rf /"]\n',
                     "services.toml:11: services.web.placement[0]: must be a Swarm constraint such as "
                     "'node.labels.tier == api' or 'node.role != manager'", id="constraint-with-junk"),
        pytest.param(SWARM + "proxy = false\n",
                     "services.toml:11: services.web.proxy: a swarm has no routing mesh here: every service is "
                     "reached through the proxy on each node; remove proxy = false", id="swarm-without-proxy"),
        pytest.param(SWARM + 'domain = "shop.example.com"\n',
                     "services.toml:11: services.web.domain: not served on a swarm: terminate TLS in the load "
                     "balancer in front of the nodes", id="swarm-domain"),
        pytest.param(SWARM.replace('kind = "swarm"', 'kind = "swarm"\nmanager = "local"\nport = 22'),
                     "services.toml:6: target.port: only used with manager = 'ssh'", id="local-manager-ssh-key"),
        pytest.param(HOST + "replicas = 2\n",
                     "services.toml:6: services.web.replicas: only used with target.kind = 'swarm'",
                     id="replicas-on-one-host"),
        pytest.param(HOST + 'placement = ["node.role == worker"]\n',
                     "services.toml:6: services.web.placement: only used with target.kind = 'swarm'",
                     id="placement-on-one-host"),
        pytest.param(HOST + 'health.command = "image"\n',
                     "services.toml:6: services.web.health.command: only used with target.kind = 'swarm'",
                     id="health-command-on-one-host"),
        pytest.param(SWARM + '[proxy]\nplacement = ["node.labels.edge = true"]\n',
                     "services.toml:12: proxy.placement[0]: must be a Swarm constraint such as "
                     "'node.labels.tier == api' or 'node.role != manager'", id="malformed-proxy-constraint"),
        pytest.param(SWARM + '[proxy]\nplacment = ["node.labels.edge == true"]\n',
                     "services.toml:12: proxy.placment: unknown key (did you mean 'placement'?)",
                     id="proxy-placement-misspelt"),
        pytest.param(HOST + '[proxy]\nplacement = ["node.labels.edge == true"]\n',
                     "services.toml:7: proxy.placement: only used with target.kind = 'swarm'",
                     id="proxy-placement-on-one-host"),
        pytest.param(HOST.replace("[services.web]", '[target]\nmanager = "local"\n[services.web]'),
                     "services.toml:4: target.manager: only used with kind = 'swarm'", id="manager-on-one-host"),
        pytest.param(SWARM.replace('kind = "swarm"', 'kind = "swarm"\nmanager = "remote"'),
                     "services.toml:5: target.manager: must be one of 'ssh' or 'local'", id="unknown-manager"),
    ],
)  # fmt: skip
def test_a_swarm_mistake_is_one_line(text: str, problem: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert caught.value.problems == [problem]


@pytest.mark.parametrize("manager", ["ssh", "local"])
def test_the_steps_read_a_resolved_swarm_manifest(tmp_path: Path, manager: str) -> None:
    text = SWARM.replace('kind = "swarm"', f'kind = "swarm"\nmanager = "{manager}"')
    check_view(tmp_path, resolve_manifest(parse_manifest(text + 'health.command = "image"\n')))


ENVIRONMENTS = SWARM.replace(
    "[services.web]",
    '[environments.production]\nbranches = ["main"]\n[environments.staging]\nbranches = ["develop"]\n'
    "{staging}\n[services.web]",
)


def test_two_environments_on_one_swarm_need_apart_ports_unless_their_managers_differ() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(ENVIRONMENTS.format(staging=""))
    assert caught.value.problems == [
        "services.toml:10: environments.staging.port_offset: web's port 8080 is taken by production on the "
        "same target; set a port_offset that keeps them apart"
    ]
    parse_manifest(ENVIRONMENTS.format(staging="port_offset = 1"))
    parse_manifest(ENVIRONMENTS.format(staging='target = { host_env = "STAGING_MANAGER" }'))


def test_the_proxy_placement_of_a_swarm_environment_beside_one_on_a_single_host() -> None:
    """Staging on a VPS, production on a swarm: the swarm's proxy placement is valid, and staging has none."""
    text = (
        '[project]\nname = "shop"\n[build]\nwhere = "runner"\nregistry = "registry.example.com/shop"\n'
        '[proxy]\nplacement = ["node.labels.edge == true"]\n'
        '[environments.staging]\nbranches = ["develop"]\n'
        '[environments.production]\nbranches = ["main"]\n'
        'target = { kind = "swarm", host_env = "PROD_HOST" }\n'
        '[services.web]\nrepository = "o/web"\nport = 8080\n'
    )
    manifest = parse_manifest(text)
    assert resolve_manifest(manifest, environment="production")["proxy"]["placement"] == [
        "node.labels.edge == true"
    ]
    assert resolve_manifest(manifest, environment="staging")["proxy"]["placement"] == []


MIXED = (
    '[project]\nname = "shop"\n[build]\nwhere = "{where}"\nregistry = "registry.example.com/shop"\n'
    '[environments.staging]\nbranches = ["develop"]\n'
    '[environments.production]\nbranches = ["main"]\n'
    'target = {{ kind = "swarm", host_env = "PROD_HOST" }}\n'
    '[services.web]\nrepository = "o/web"\nport = 8080\n{web}'
)


def test_swarm_keys_are_valid_when_an_environment_is_a_swarm_and_resolve_only_there() -> None:
    manifest = parse_manifest(
        MIXED.format(where="runner", web='replicas = 2\nplacement = ["node.role == worker"]\n')
    )
    assert resolve_manifest(manifest, environment="production")["services"]["web"]["swarm"] == {
        "replicas": 2, "placement": ["node.role == worker"], "health_command": None,
    }  # fmt: skip
    assert resolve_manifest(manifest, environment="staging")["services"]["web"]["swarm"] is None


@pytest.mark.parametrize(
    ("where", "web", "problem"),
    [
        pytest.param("target", "", "services.toml:10: environments.production.target.kind: 'swarm' needs images "
                     "in a registry every node pulls from: set build.where = 'runner' and build.registry",
                     id="no-registry-build"),
        pytest.param("runner", "proxy = false\n", "services.toml:14: services.web.proxy: a swarm has no routing "
                     "mesh here: every service is reached through the proxy on each node; remove proxy = false",
                     id="off-the-proxy"),
    ],
)  # fmt: skip
def test_what_a_swarm_cannot_do_is_refused_when_an_environment_is_one(
    where: str, web: str, problem: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(MIXED.format(where=where, web=web))
    assert caught.value.problems == [problem]

"""`[environments]` (generator/manifest/environments.py): validation, what each environment resolves to, `--env`, and two
environments of one fleet deployed side by side on one real Docker engine, one of them through a real sshd."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from generator.cli import cli
from generator.manifest import environments
from generator.manifest.resolve import resolve_manifest
from generator.manifest.validate import parse_manifest
from tests.support.docker import docker
from tests.support.fixture_service import git
from tests.support.fleet import Fleet, make_fleet
from tests.support.manifests import toml_table
from tests.support.ports import free_offset
from tests.support.sshd import SshServer

BASE = """\
[project]
name = "shop"

[target]
host_env = "VPS_HOST"

[services.web]
repository = "acme/web"
port = 3000

[services.api]
repository = "acme/api"
port = 3001
container_port = 8080
"""
TWO = (
    BASE
    + """
[environments.production]
branches = ["main"]
github_environment = "prod"

[environments.staging]
branches = ["develop", "staging"]
port_offset = 1000
"""
)


def validate(tmp_path: Path, text: str) -> tuple[int, str]:
    (tmp_path / "services.toml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", "-m", str(tmp_path / "services.toml")])
    return result.exit_code, result.output.replace(f"{tmp_path}/", "")


def test_each_environment_resolves_to_its_own_names_ports_and_target() -> None:
    manifest = parse_manifest(
        TWO.replace("port_offset = 1000", 'port_offset = 1000\ntarget = { host_env = "STAGING_HOST" }')
    )
    production = resolve_manifest(manifest, environment="production")
    staging = resolve_manifest(manifest, environment="staging")
    assert production["project"] | {"wfgen_install": "?"} == {
        **production["project"], "name": "shop-production", "environment": "production", "branches": ["main"],
        "wfgen_install": "?",
    }  # fmt: skip
    assert (staging["project"]["name"], staging["project"]["branches"]) == (
        "shop-staging",
        ["develop", "staging"],
    )
    assert (production["target"]["host_env"], staging["target"]["host_env"]) == ("VPS_HOST", "STAGING_HOST")
    assert (
        staging["target"]["user_env"] == "VPS_USER"
    )  # what the environment does not set comes from [target]
    assert (production["target"]["environment"], staging["target"]["environment"]) == ("prod", "staging")
    assert (production["target"]["network"], staging["target"]["network"]) == (
        "shop-production-network",
        "shop-staging-network",
    )
    assert (production["target"]["state_dir"], staging["target"]["state_dir"]) == (
        ".wfgen/production",
        ".wfgen/staging",
    )
    assert (production["proxy"]["container"], staging["proxy"]["container"]) == (
        "shop-production-proxy",
        "shop-staging-proxy",
    )
    ports = {name: (s["port"], s["container_port"]) for name, s in staging["services"].items()}
    assert ports == {"web": (4000, 3000), "api": (4001, 8080)}  # the app inside listens where it did
    assert {s["port"] for s in production["services"].values()} == {3000, 3001}


def test_without_environments_nothing_changes_and_there_is_nothing_to_choose() -> None:
    manifest = parse_manifest(BASE)
    resolved = resolve_manifest(manifest)
    assert (resolved["project"]["name"], resolved["project"]["environment"]) == ("shop", None)
    assert resolved["target"]["state_dir"] == ".wfgen"
    assert environments.choose(manifest, None, "main") is None
    with pytest.raises(
        environments.UnknownEnvironment, match=r"--env staging: the manifest has no \[environments\]"
    ):
        environments.choose(manifest, "staging", None)


@pytest.mark.parametrize(
    ("name", "branch", "expected"),
    [(None, None, "production"), (None, "develop", "staging"), ("staging", None, "staging"),
     ("staging", "staging", "staging")],
)  # fmt: skip
def test_the_environment_comes_from_env_then_the_branch_then_the_first(
    name: str | None, branch: str | None, expected: str
) -> None:
    assert environments.choose(parse_manifest(TWO), name, branch) == expected


@pytest.mark.parametrize(
    ("name", "branch", "message"),
    [
        ("stagin", None, "--env: unknown environment 'stagin' (did you mean 'staging'?); known: production, staging"),
        ("production", "develop", "branch 'develop' does not deploy to production; its branches: main"),
        (None, "developp", "unknown branch 'developp' (did you mean 'develop'?); branches that deploy: main, develop, staging"),
    ],
)  # fmt: skip
def test_an_environment_that_does_not_fit_is_one_line(
    name: str | None, branch: str | None, message: str
) -> None:
    with pytest.raises(environments.UnknownEnvironment) as caught:
        environments.choose(parse_manifest(TWO), name, branch)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("branches = [\"develop\", \"staging\"]", "branches = [\"develop\", \"main\"]"),
         "services.toml:21: environments.staging.branches[1]: main already deploys to production"),
        (("branches = [\"develop\", \"staging\"]", "branches = [\"develop\", \"Main\"]"),
         "services.toml:21: environments.staging.branches[1]: Main already deploys to production as main (GitHub "
         "compares branch names ignoring case)"),
        (("port_offset = 1000", 'port_offset = 1000\ntarget = { kind = "local", host_env = "X" }'),
         "services.toml:23: environments.staging.target.host_env: only used with kind = 'ssh'"),

        (("port_offset = 1000", "port_offset = 1"),
         "services.toml:22: environments.staging.port_offset: web's port 3001 is taken by production on the same "
         "target; set a port_offset that keeps them apart"),
        (("port_offset = 1000", "port_offset = 63000"),
         "services.toml:22: environments.staging.port_offset: moves web to port 66000, above 65535"),
        (("port_offset = 1000", 'port_offset = 1000\ntarget = { hots_env = "STAGING_HOST" }'),
         "services.toml:23: environments.staging.target.hots_env: unknown key (did you mean 'host_env'?)"),
        (("port_offset = 1000", 'port_offset = 1000\ntarget = { environment = "x" }'),
         "services.toml:23: environments.staging.target.environment: set github_environment instead"),
        (('name = "shop"', 'name = "shop"\nbranches = ["main"]'),
         "services.toml:3: project.branches: with [environments], each environment lists its branches"),
        (('host_env = "VPS_HOST"', 'host_env = "VPS_HOST"\nenvironment = "production"'),
         "services.toml:6: target.environment: with [environments], set github_environment in each environment"),
        (("[environments.staging]", "[environments.staging-" + "x" * 60 + "]"),
         "services.toml:20: environments.staging-" + "x" * 60 + ": must be lowercase letters, digits and '-', start with "
         "a letter or digit, at most 63 characters"),
        (("[environments.staging]", "[environments.staging-" + "x" * 51 + "]"),
         "services.toml:20: environments.staging-" + "x" * 51 + ": 'shop-staging-" + "x" * 51 + "' names its "
         "containers: at most 63 characters"),
        (("port_offset = 1000", 'port_offset = 1000\ntarget = { network = "shop-production-network" }'),
         "services.toml:23: environments.staging.target.network: shop-production-network is also production's "
         "network: on one host their services would answer each other's names"),
        (("port_offset = 1000", 'target = { host_env = "STAGING_HOST", network = "shop-production-network" }'),
         "services.toml:22: environments.staging.target.network: shop-production-network is also production's "
         "network: on one host their services would answer each other's names"),
        (('container_port = 8080', 'container_port = 8080\ndomain = "api.example.com"'),
         "services.toml:21: environments.staging: serves domains on the same target as production: both proxies "
         "would publish 80 and 443"),
    ],
)  # fmt: skip
def test_bad_environments_are_one_line_each_and_exit_2(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in TWO
    code, output = validate(tmp_path, TWO.replace(old, new, 1))
    assert (code, output.strip().splitlines()) == (2, [message])


def test_a_local_base_target_with_ssh_keys_in_an_environment_is_refused(tmp_path: Path) -> None:
    text = TWO.replace('host_env = "VPS_HOST"', 'kind = "local"').replace(
        "port_offset = 1000", 'port_offset = 1000\ntarget = { host_env = "STAGING_HOST" }'
    )
    code, output = validate(tmp_path, text)
    assert (code, output.strip().splitlines()) == (
        2, ["services.toml:23: environments.staging.target.host_env: only used with kind = 'ssh'"])  # fmt: skip


def test_each_environment_has_its_own_network_whatever_its_host_secret() -> None:
    """Two host secrets may hold one host: sharing a network (and the services' aliases on it) is never
    inferred from their names, as in the README's staging beside production with host_env = "STAGING_HOST"."""
    text = TWO.replace('host_env = "VPS_HOST"', 'host_env = "VPS_HOST"\nnetwork = "db"')
    for staging in ("port_offset = 1000", 'port_offset = 1000\ntarget = { host_env = "STAGING_HOST" }'):
        manifest = parse_manifest(text.replace("port_offset = 1000", staging))
        assert [resolve_manifest(manifest, environment=e)["target"]["network"]
                for e in ("production", "staging")] == ["db-production", "db-staging"]  # fmt: skip


def test_an_environments_own_network_is_kept_and_stands_in_the_networks_that_must_exist() -> None:
    text = TWO.replace('host_env = "VPS_HOST"', 'host_env = "VPS_HOST"\nnetwork = "db"').replace(
        'name = "shop"', 'name = "shop"\n[infrastructure]\nnetworks = ["db", "cache"]'
    )
    own = parse_manifest(text.replace("port_offset = 1000", 'target = { host_env = "S", network = "db" }'))
    production, staging = (resolve_manifest(own, environment=e) for e in ("production", "staging"))
    assert (production["target"]["network"], staging["target"]["network"]) == ("db-production", "db")
    assert production["infrastructure"]["networks"] == ["db-production", "cache"]
    assert staging["infrastructure"]["networks"] == ["db", "cache"]


def test_two_environments_may_not_name_one_container(tmp_path: Path) -> None:
    text = TWO.replace("[services.api]", "[services.b-web]").replace(
        "[environments.staging]", "[environments.production-b]"
    )
    code, output = validate(tmp_path, text)
    assert (code, output.strip().splitlines()) == (2, [
        "services.toml:20: environments.production-b: shop-production-b-web would name a container of both "
        "production and production-b; rename one environment"])  # fmt: skip


def test_an_other_host_may_reuse_the_ports() -> None:
    text = TWO.replace("port_offset = 1000", 'target = { host_env = "STAGING_HOST" }')
    manifest = parse_manifest(text)
    assert {s["port"] for s in resolve_manifest(manifest, environment="staging")["services"].values()} == {
        3000,
        3001,
    }


# --- Two environments of one fleet on one real engine ---------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A state folder with a short path: the proxy's admin socket lives in it, one level deeper per environment,
    and a unix socket path holds at most 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="wfgs-"))
    yield path / "s"  # in a folder of its own (0700): a state folder directly in /tmp is refused
    shutil.rmtree(path, ignore_errors=True)


def with_environments(fleet: Fleet, staging: dict[str, Any], state_dir: Path) -> int:
    """services.toml of the fleet with a production (main) and a staging (develop) environment; the offset."""
    offset = free_offset(list(fleet.ports.values()))
    text = fleet.manifest.read_text(encoding="utf-8").replace('branches = ["main", "develop"]\n', "")
    text = text.replace(f'state_dir = "{fleet.state_dir}"', f'state_dir = "{state_dir}"')
    tables = [toml_table("environments.production", {"branches": ["main"]}),
              toml_table("environments.staging", {"branches": ["develop"], "port_offset": offset, **staging})]  # fmt: skip
    fleet.manifest.write_text(
        text + "\n" + "\n\n".join("\n".join(t) for t in tables) + "\n", encoding="utf-8"
    )
    for repo in fleet.repos.values():
        git(repo.path, "branch", "develop")
    return offset


def served(port: int) -> int | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


def statuses(fleet: Fleet, *args: str, **env: str) -> dict[str, dict[str, Any]]:
    result = fleet.wfgen("status", "--json", *args, timeout=120, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    return {item["service"]: item for item in json.loads(result.stdout)["services"]}


def test_staging_and_production_side_by_side_on_one_engine(
    tmp_path: Path, docker_host: str, docker_project: str, short_dir: Path
) -> None:
    fleet = make_fleet(tmp_path / "f", docker_project, docker_host, {"api": {}, "web": {}})
    offset = with_environments(fleet, {}, short_dir)
    runs = [subprocess.Popen([sys.executable, "-m", "generator", "deploy", "all", branch, "--quiet"],
                             cwd=fleet.root, env=fleet.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, stdin=subprocess.DEVNULL)
            for branch in ("main", "develop")]  # fmt: skip
    for run in runs:
        output, _ = run.communicate(timeout=600)
        assert run.returncode == 0, output
    for name, port in fleet.ports.items():
        assert (served(port), served(port + offset)) == (200, 200), name
    names = docker(docker_host, "ps", "--format", "{{.Names}}", timeout=60).stdout.split()
    for environment in ("production", "staging"):
        assert {f"{docker_project}-{environment}-{s}" for s in ("api", "web", "proxy")} <= set(names)

    # A new commit of web on develop reaches staging only; production keeps what it ran.
    before = fleet.repos["web"].head
    git(fleet.repos["web"].path, "checkout", "-q", "develop")
    newer = fleet.repos["web"].write_marker("staging only")
    result = fleet.wfgen("deploy", "web", "develop", "--quiet", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    staging, production = statuses(fleet, "--env", "staging"), statuses(fleet)
    assert (staging["web"]["commit"], production["web"]["commit"]) == (newer, before)
    assert staging["web"]["container"] == f"{docker_project}-staging-web"
    assert staging["web"]["health"]["port"] == fleet.ports["web"] + offset
    assert [entry["commit"] for entry in staging["web"]["deploys"]] == [newer, before]
    assert [entry["commit"] for entry in production["web"]["deploys"]] == [before]  # each its own audit log
    plan = fleet.wfgen("plan", "all", "--env", "production", "--json", timeout=120)
    assert plan.returncode == 0, plan.stderr
    assert {leg["service"]: leg["verdict"] for leg in json.loads(plan.stdout)["services"]} == {
        "api": "unchanged", "web": "unchanged"}  # fmt: skip

    # A rollback in staging goes back to staging's previous version; production has none to go back to.
    back = fleet.wfgen("rollback", "web", "--env", "staging", timeout=300)
    assert back.returncode == 0, back.stdout + back.stderr
    assert statuses(fleet, "--env", "staging")["web"]["commit"] == before
    assert served(fleet.ports["web"] + offset) == 200
    refused = fleet.wfgen("rollback", "web", timeout=120)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert statuses(fleet)["web"]["commit"] == before

    wrong = fleet.wfgen("deploy", "web", "develop", "--env", "production", timeout=120)
    assert (wrong.returncode, wrong.stdout) == (2, "")
    assert wrong.stderr.strip() == "branch 'develop' does not deploy to production; its branches: main"
    # --retry-failed retries the last run, in its environment; naming another one is a mistake.
    retry = fleet.wfgen("deploy", "--retry-failed", "--env", "production", timeout=120)
    assert (retry.returncode, retry.stdout) == (2, "")
    last = fleet.last_run()
    assert last["inputs"]["environment"] == "staging"
    assert retry.stderr.strip() == (
        f"--retry-failed --env production: the last run ({last['run_id']}) deployed to staging; retry it "
        "without --env, or deploy production again"
    )
    same = fleet.wfgen("deploy", "--retry-failed", "--env", "staging", timeout=120)
    assert same.returncode == 0 and "nothing to retry" in same.stdout, same.stdout + same.stderr


def test_one_environment_through_the_real_sshd(
    tmp_path: Path, docker_host: str, docker_project: str, sshd: SshServer, short_dir: Path
) -> None:
    fleet = make_fleet(tmp_path / "f", docker_project, docker_host, {"api": {}, "web": {}})
    # Another host secret, the same engine: as the README's staging beside production on one VPS. Nothing in
    # the manifest keeps their networks apart; each environment still gets its own.
    remote = sshd.target_config(prefix="STAGING")
    offset = with_environments(fleet, {"target": remote}, short_dir)
    env = sshd.target_env(prefix="STAGING")
    for branch in ("main", "develop"):
        result = fleet.wfgen("deploy", "all", branch, "--quiet", timeout=600, **env)
        assert result.returncode == 0, result.stdout + result.stderr
    for name, port in fleet.ports.items():
        assert (served(port), served(port + offset)) == (200, 200), name
    table = fleet.wfgen("status", "--env", "staging", timeout=120, **env)
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith(f"Status on ssh $STAGING_USER@$STAGING_HOST:{sshd.port} (staging) at ")
    assert sshd.host not in table.stdout
    found = statuses(fleet, "--env", "staging", **env)
    assert {name: item["commit"] for name, item in found.items()} == {
        name: repo.head for name, repo in fleet.repos.items()}  # fmt: skip
    assert all(item["container"].startswith(f"{docker_project}-staging-") for item in found.values())
    for environment in ("production", "staging"):
        attached = docker(docker_host, "inspect", "--format", "{{json .NetworkSettings.Networks}}",
                          f"{docker_project}-{environment}-proxy", check=True).stdout  # fmt: skip
        assert list(json.loads(attached)) == [f"{fleet.network}-{environment}"]

"""`wfgen init`: compose files and folder scans become a services.toml that validates and renders as it is."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from generator.cli import cli
from generator.manifest.validate import load_manifest
from generator.render.files import render
from tests.support.files import build_file_tree, snapshot
from tests.test_workflow_lint import actionlint, check_jsonschema, run, workflows, zizmor

SECRET_VALUE = "s3cr3t-do-not-leak"

SHOP = {
    "shop/compose.yaml": """\
        name: shop
        services:
          api:
            build:
              context: ./api
              dockerfile: Dockerfile.prod
              args: {NODE_VERSION: "20"}
            ports: ["127.0.0.1:8080:80"]
            environment:
              - LOG_LEVEL=debug
              - API_TOKEN
            env_file: .env
            healthcheck:
              test: ["CMD", "curl", "-fsS", "http://localhost:80/healthz"]
              interval: 10s
              timeout: 3s
              retries: 5
              start_period: 1m30s
            depends_on:
              db: {condition: service_healthy}
              worker: {condition: service_started}
            volumes: ["./data:/data"]
            command: ["serve"]
          worker:
            build: ./worker
            ports:
              - target: 9000
                published: "9001"
            environment: {QUEUE_URL: "redis://cache:6379"}
            healthcheck:
              test: wget -qO- http://127.0.0.1:9000/ready || exit 1
              interval: 500ms
            profiles: [background]
          db:
            image: postgres:16
            ports: ["5432:5432"]
            environment: {POSTGRES_PASSWORD: hunter2}
          cache:
            image: redis:7
        volumes:
          data: {}
        """,
    "shop/.env": f"""\
        # comment
        DATABASE_URL={SECRET_VALUE}

        export SESSION_KEY='{SECRET_VALUE}'
        """,
}

SHOP_MANIFEST = """\
# services.toml written by 'wfgen init --from-compose compose.yaml'.
# Check it with 'wfgen validate'; 'wfgen schema' lists every key and its default.
# top-level keys not mapped: volumes
# vars: compose environment values copied as they are; never one from an env_file, one whose name or
# shape says credential (PASSWORD, SECRET, TOKEN, KEY, AUTH, ..., a URL with a password, a long random
# string) or one written ${VAR}: those are names in env, their values come from secrets

[project]
name = "shop"
branches = ["main"]                      # dispatch choices; the first is the default

[target]
kind = "ssh"
host_env = "VPS_HOST"                    # names of secrets, never their values
user_env = "VPS_USER"
ssh_key_env = "VPS_SSH_KEY"
known_hosts_env = "VPS_KNOWN_HOSTS"      # ssh-keyscan output, checked against the host

[infrastructure]                         # checked before any deploy starts
# db (image postgres:16): not deployed by wfgen; deploys check that 127.0.0.1:5432 answers
# cache (image redis:7): not deployed by wfgen, publishes no port: not checked
tcp = ["127.0.0.1:5432"]
secrets = ["API_TOKEN", "DATABASE_URL", "SESSION_KEY"]

[services.api]
# from compose service api
# build.args: not mapped
# ports: the binding to 127.0.0.1 is not mapped; wfgen publishes port 8080
# depends_on db: image only; deploys check 127.0.0.1:5432 instead
# not mapped: volumes, command
path = "api"
dockerfile = "Dockerfile.prod"
port = 8080
container_port = 80
env = ["API_TOKEN", "DATABASE_URL", "SESSION_KEY"]
vars = { LOG_LEVEL = "debug" }
depends_on = ["worker"]
# compose checks every 10 s; a deploy probes every 2 s, so it switches as soon as the new version answers
health = { path = "/healthz", interval_s = 2, timeout_s = 3, start_grace_s = 90, deadline_s = 155 }

[services.worker]
# from compose service worker
# profiles background: wfgen deploys every service
path = "worker"
port = 9001
container_port = 9000
vars = { QUEUE_URL = "redis://cache:6379" }
health = { path = "/ready", interval_s = 0.5, deadline_s = 60 }
"""


@pytest.fixture
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


def wfgen(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_compose_file_becomes_a_commented_manifest(in_tmp: Path) -> None:
    build_file_tree(in_tmp, SHOP)
    result = wfgen("init", "--manifest", "shop/services.toml", "--from-compose", "shop/compose.yaml")
    assert result.exit_code == 0, result.output
    assert (in_tmp / "shop" / "services.toml").read_text(encoding="utf-8") == SHOP_MANIFEST
    assert result.stderr.splitlines() == [
        "compose.yaml:3: services.api: build.args: not mapped",
        "compose.yaml:3: services.api: ports: the binding to 127.0.0.1 is not mapped; wfgen publishes port 8080",
        "compose.yaml:3: services.api: depends_on db: image only; deploys check 127.0.0.1:5432 instead",
        "compose.yaml:3: services.api: not mapped: volumes, command",
        "compose.yaml:24: services.worker: profiles background: wfgen deploys every service",
        "compose.yaml:34: services.db: not deployed by wfgen; deploys check that 127.0.0.1:5432 answers",
        "compose.yaml:38: services.cache: not deployed by wfgen, publishes no port: not checked",
        "compose.yaml:40: not mapped: volumes",
    ]
    assert "wrote shop/services.toml: 2 service(s): api, worker" in result.stdout
    assert (
        "create these repository secrets on GitHub: VPS_HOST, VPS_USER, VPS_SSH_KEY, VPS_KNOWN_HOSTS, "
        "API_TOKEN, DATABASE_URL, SESSION_KEY" in result.stdout
    )
    assert "wfgen render" in result.stdout
    assert "Actions -> Deploy Services (Parallel) -> Run workflow" in result.stdout


def test_no_value_of_an_environment_variable_is_written_or_printed(in_tmp: Path) -> None:
    build_file_tree(in_tmp, SHOP)
    result = wfgen("init", "-m", "shop/services.toml", "--from-compose", "shop/compose.yaml")
    assert result.exit_code == 0, result.output
    written = (in_tmp / "shop" / "services.toml").read_text(encoding="utf-8")
    for value in (SECRET_VALUE, "hunter2"):
        assert value not in written
        assert value not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("compose", "expected"),
    [
        pytest.param(
            """\
            services:
              web:
                build: .
                ports: ["80"]
            """,
            ["port = 80", "# compose publishes 80 on a random host port: port 80 here"],
            id="container-port-only",
        ),
        pytest.param(
            """\
            services:
              web:
                build: .
                ports: ["3000-3005:3000-3005", "8080:8080/udp", 8443]
            """,
            [
                "# ports 3000-3005:3000-3005: port ranges are not mapped (one port per service)",
                "# ports 8080:8080/udp: udp ports are not health-checked over HTTP",
                "port = 8443",
            ],
            id="ranges-udp-and-a-bare-number",
        ),
        pytest.param(
            """\
            services:
              a:
                build: ./a
                ports: ["8080:80"]
              b:
                build: ./b
                ports: ["8080:80"]
            """,
            ["# host port 8080 is already used by a: moved to 3000", "port = 3000"],
            id="two-services-one-host-port",
        ),
        pytest.param(
            """\
            services:
              Web_App:
                build: {context: .}
                expose: ["8000"]
                healthcheck:
                  test: ["CMD-SHELL", "curl -f http://localhost:8000/status || exit 1"]
                  start_period: 20s
            """,
            [
                "[services.web-app]",
                "# compose publishes no port: the container's port 8000 is the host port here",
                "port = 8000",
                'health = { path = "/status", start_grace_s = 20, deadline_s = 80 }',
            ],
            id="expose-and-cmd-shell-healthcheck",
        ),
        pytest.param(
            """\
            services:
              web:
                build: .
                ports: ["[::1]:8080:80"]
                healthcheck:
                  test: ["CMD", "pg_isready"]
            """,
            [
                "port = 8080",
                "container_port = 80",
                "# no HTTP health check found: make the service answer GET /health, or change the path",
                'health = { path = "/health" }',
            ],
            id="ipv6-host-and-no-http-check",
        ),
        pytest.param(
            """\
            services:
              api:
                build: ./api
                ports: ["3000:3000"]
              web:
                build: ./web
                ports: ["3001:3000"]
                depends_on: [api, ghost]
              proxy:
                build: ./proxy
                ports: ["3002:80"]
            """,
            [
                'depends_on = ["api"]',
                "# depends_on ghost: no such service in the compose file",
                "[services.proxy-service]",
            ],
            id="depends-on-list-and-a-reserved-name",
        ),
    ],
)
def test_compose_shapes(in_tmp: Path, compose: str, expected: list[str]) -> None:
    build_file_tree(in_tmp, {"docker-compose.yml": compose})
    result = wfgen("init")
    assert result.exit_code == 0, result.output
    lines = (in_tmp / "services.toml").read_text(encoding="utf-8").splitlines()
    for line in expected:
        assert line in lines
    assert wfgen("validate").exit_code == 0


@pytest.mark.parametrize(
    ("compose", "message"),
    [
        pytest.param(
            "services:\n  api:\n    build: .\n    portz: ['80']\n",
            "compose.yaml:4: services.api.portz: unknown key (did you mean 'ports'?)",
            id="unknown-key",
        ),
        pytest.param(
            "servics:\n  api:\n    build: .\n",
            "compose.yaml:1: servics: unknown key (did you mean 'services'?)",
            id="unknown-top-level-key",
        ),
        pytest.param(
            "services:\n  api:\n    build: .\n    ports: 80\n",
            "compose.yaml:4: services.api.ports: must be a list",
            id="wrong-type",
        ),
        pytest.param(
            "services:\n  api:\n    build: .\n  api:\n    build: ./x\n",
            'compose.yaml:4: invalid YAML: found duplicate key "api"',
            id="duplicate-service",
        ),
        pytest.param(
            "services:\n  api: [\n",
            "compose.yaml:3: invalid YAML: expected the node content, but found '<stream end>'",
            id="broken-yaml",
        ),
        pytest.param(
            "services:\n  api:\n    build: .\n    environment:\n      TOKEN: [hunter2]\n",
            "compose.yaml:5: services.api.environment.TOKEN: must be a string, a number, true or false or empty",
            id="bad-environment-value",
        ),
        pytest.param(
            "services:\n  api:\n    build: .\n    depends_on:\n      db: {condition: sometimes}\n",
            'compose.yaml:5: services.api.depends_on.db.condition: must be one of "service_started", "service_healthy", "service_completed_successfully"',
            id="bad-condition",
        ),
        pytest.param(
            "services:\n  db:\n    image: postgres:16\n",
            "compose.yaml:1: services: no service with a build inside this folder: nothing for wfgen to deploy",
            id="images-only",
        ),
        pytest.param("services: {}\n", "compose.yaml:1: services: no services", id="no-services"),
        pytest.param("", "compose.yaml:1: the file is empty: no services", id="empty"),
        pytest.param("- api\n", "compose.yaml:1: must be a mapping", id="not-a-mapping"),
    ],
)
def test_bad_compose_file_is_one_line_exit_2_nothing_written(
    in_tmp: Path, compose: str, message: str
) -> None:
    build_file_tree(in_tmp, {"compose.yaml": compose})
    before = snapshot(in_tmp)
    result = wfgen("init", "--from-compose", "compose.yaml")
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message + "\n")
    assert "hunter2" not in result.stderr
    assert snapshot(in_tmp) == before


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        (
            {},
            [],
            "pass --from-compose FILE or --scan DIR (no compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml here)",
        ),
        ({}, ["--from-compose", "missing.yml"], "missing.yml: no such file"),
        (
            {"compose.yaml": "services: {}\n"},
            ["--from-compose", "compose.yaml", "--scan", "."],
            "pass --from-compose or --scan, not both",
        ),
        ({}, ["--scan", "nowhere"], "nowhere: no such folder"),
        ({"empty/README.md": "x\n"}, ["--scan", "empty"], "empty: no sub-folder holds a Dockerfile"),
        (
            {"services.toml": "# mine\n", "compose.yaml": "services: {}\n"},
            [],
            "services.toml: already exists; --force overwrites it, --stdout prints instead",
        ),
    ],
    ids=["nothing-to-read", "missing-compose", "both-options", "missing-folder", "no-dockerfile", "exists"],
)
def test_usage_errors(in_tmp: Path, files: dict[str, str], args: list[str], message: str) -> None:
    build_file_tree(in_tmp, files)
    before = snapshot(in_tmp)
    result = wfgen("init", *args)
    assert (result.exit_code, result.stderr) == (2, message + "\n")
    assert snapshot(in_tmp) == before


def test_force_overwrites_and_stdout_prints_without_writing(in_tmp: Path) -> None:
    build_file_tree(
        in_tmp,
        {
            "services.toml": "# mine\n",
            "compose.yaml": "services:\n  web:\n    build: .\n    ports: ['8080:80']\n",
        },
    )
    printed = wfgen("init", "--stdout")
    assert printed.exit_code == 0, printed.output
    assert (in_tmp / "services.toml").read_text(encoding="utf-8") == "# mine\n"
    assert tomllib.loads(printed.stdout)["services"]["web"]["port"] == 8080
    assert "services.toml (printed, not written)" in printed.stderr
    assert "wfgen render" in printed.stderr
    forced = wfgen("init", "--force")
    assert forced.exit_code == 0, forced.output
    assert (in_tmp / "services.toml").read_text(encoding="utf-8") == printed.stdout


def test_output_is_deterministic(in_tmp: Path) -> None:
    build_file_tree(in_tmp, SHOP)
    first = wfgen("init", "--stdout", "-m", "shop/services.toml", "--from-compose", "shop/compose.yaml")
    second = wfgen("init", "--stdout", "-m", "shop/services.toml", "--from-compose", "shop/compose.yaml")
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout == SHOP_MANIFEST


def test_compose_file_in_a_sub_folder_sets_the_service_paths(in_tmp: Path) -> None:
    build_file_tree(
        in_tmp,
        {"deploy/compose.yaml": "services:\n  api:\n    build: ../services/api\n    ports: ['3000:3000']\n"},
    )
    result = wfgen("init", "--from-compose", "deploy/compose.yaml")
    assert result.exit_code == 0, result.output
    assert 'path = "services/api"' in (in_tmp / "services.toml").read_text(encoding="utf-8")


def test_scan_makes_one_service_per_dockerfile_folder(in_tmp: Path) -> None:
    build_file_tree(
        in_tmp,
        {
            "services/auth/Dockerfile": """\
                FROM node:20
                EXPOSE 4000/tcp 4001
                HEALTHCHECK --interval=5s CMD \\
                  curl -f http://localhost:4000/healthz || exit 1
                """,
            "services/chat/Dockerfile": 'FROM python:3.12\nCMD ["python", "app.py"]\n',
            "services/docs/README.md": "not a service\n",
        },
    )
    result = wfgen("init", "--scan", "services")
    assert result.exit_code == 0, result.output
    data = tomllib.loads((in_tmp / "services.toml").read_text(encoding="utf-8"))
    assert data["services"] == {
        "auth": {"path": "services/auth", "port": 4000, "health": {"path": "/healthz"}},
        "chat": {"path": "services/chat", "port": 3000, "health": {"path": "/health"}},
    }
    text = (in_tmp / "services.toml").read_text(encoding="utf-8")
    assert "# no EXPOSE in the Dockerfile: port 3000 is the next free one; check the container's port" in text
    assert wfgen("validate").exit_code == 0


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SHOP compose file through `wfgen init` and `wfgen render`, with no edit in between."""
    root = build_file_tree(tmp_path_factory.mktemp("init-round-trip"), SHOP) / "shop"
    cwd = Path.cwd()
    os.chdir(root)
    try:
        assert wfgen("init").exit_code == 0
        validated = wfgen("validate")
        assert validated.stdout == "services.toml: OK (2 services)\n"
        rendered = wfgen("render")
        assert rendered.exit_code == 0, rendered.output
        assert wfgen("check").exit_code == 0
    finally:
        os.chdir(cwd)
    assert render(load_manifest(root / "services.toml"), source="services.toml")
    return root


def test_round_trip_zizmor_pedantic_has_no_findings(initialised: Path) -> None:
    result = run(zizmor("--persona", "pedantic", *workflows(initialised)), initialised)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


def test_round_trip_actionlint_has_no_findings(initialised: Path) -> None:
    result = run(actionlint(*workflows(initialised)), initialised)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_round_trip_github_workflow_schema_accepts_them(initialised: Path) -> None:
    result: subprocess.CompletedProcess[str] = run(check_jsonschema(*workflows(initialised)), initialised)
    assert result.returncode == 0, result.stdout + result.stderr

"""How `wfgen init` maps the compose shapes real projects use, and that every note it writes is also on stderr."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.support.files import build_file_tree
from tests.test_init import in_tmp, wfgen  # noqa: F401  # in_tmp is a fixture


def init_compose(folder: Path, compose: str, files: dict[str, str] | None = None) -> tuple[dict, str, str]:  # type: ignore[type-arg]
    build_file_tree(folder, {"compose.yaml": compose, **(files or {})})
    result = wfgen("init")
    assert result.exit_code == 0, result.output
    text = (folder / "services.toml").read_text(encoding="utf-8")
    assert wfgen("validate").exit_code == 0
    return tomllib.loads(text), text, result.stderr


def comments_are_on_stderr(text: str, stderr: str) -> None:
    """Every note of the manifest, apart from the fixed header and the vars rule, is a line of stderr."""
    notes = [line[2:] for line in text.splitlines() if line.startswith("# ")]
    fixed = ("services.toml written by", "Check it with", "from compose service", "compose checks every",
             "vars:", "shape says", "string)")  # fmt: skip
    said = [line.split(": ", 1)[1] for line in stderr.splitlines()]
    for note in notes:
        if not note.startswith(fixed):
            assert any(note.endswith(line.split(": ", 1)[1]) or line.endswith(note) for line in said), note


@pytest.mark.parametrize(
    "test",
    [
        '["CMD", "curl", "--fail", "localhost:80/health-check"]',
        '["CMD-SHELL", "curl -f 127.0.0.1:80/health-check || exit 1"]',
        '["CMD", "wget", "-q", "--spider", "http://0.0.0.0:80/health-check"]',
        '"wget --spider -q localhost/health-check"',
    ],
)
def test_a_health_check_with_or_without_a_scheme_gives_its_path(in_tmp: Path, test: str) -> None:  # noqa: F811
    data, _, _ = init_compose(
        in_tmp,
        f"services:\n  web:\n    build: .\n    ports: ['8080:80']\n    healthcheck:\n      test: {test}\n",
    )
    assert data["services"]["web"]["health"]["path"] == "/health-check"


def test_explicit_host_ports_are_kept_and_invented_ones_come_after(in_tmp: Path) -> None:  # noqa: F811
    data, text, stderr = init_compose(
        in_tmp,
        """\
        services:
          backend:
            build: ./backend
          frontend:
            build: ./frontend
            ports: ["3000:3000"]
          db:
            image: postgres:16
            ports: ["3001:5432"]
        """,
    )
    assert data["services"]["frontend"]["port"] == 3000
    assert data["services"]["backend"]["port"] == 3002
    assert (
        "compose.yaml:2: services.backend: no published port found: port 3002 is the next free one from 3000"
        in (stderr.splitlines())
    )
    comments_are_on_stderr(text, stderr)


def test_one_off_services_are_not_deployed_and_say_why(in_tmp: Path) -> None:  # noqa: F811
    data, text, stderr = init_compose(
        in_tmp,
        """\
        services:
          web:
            build: .
            ports: ["8000:8000"]
            depends_on:
              migrate: {condition: service_completed_successfully}
          migrate:
            build: .
            command: ["python", "manage.py", "migrate"]
          seed:
            build: ./seed
            profiles: [seed]
          once:
            build: ./once
            restart: "no"
          retry:
            build: ./retry
            restart: on-failure
            command: ["./import.sh"]
        """,
    )
    assert list(data["services"]) == ["web"]
    assert "depends_on" not in data["services"]["web"]
    lines = stderr.splitlines()
    for line in [
        "compose.yaml:2: services.web: depends_on migrate: not deployed by wfgen (a one-off job); dropped",
        "compose.yaml:7: services.migrate: web waits for it to complete: it runs once; not a long-running "
        "service, not deployed; it builds what web builds: to run its command before each deploy of web, set "
        "services.web.release",
        "compose.yaml:10: services.seed: profiles seed and no port: a job run on demand; not a long-running "
        "service, not deployed",
        'compose.yaml:13: services.once: restart "no": it runs once; not a long-running service, not deployed',
        "compose.yaml:16: services.retry: restart on-failure with its own command and no port: it runs once; "
        "not a long-running service, not deployed",
    ]:
        assert line in lines
    comments_are_on_stderr(text, stderr)


def test_a_service_built_outside_the_folder_is_dropped_with_its_dependents_told(tmp_path: Path) -> None:
    build_file_tree(
        tmp_path,
        {
            "app/tests/docker-compose.test.yml": """\
                services:
                  vote:
                    build: ../vote
                    ports: ["80:80"]
                  sut:
                    build: .
                    depends_on:
                      vote: {condition: service_healthy}
                """,
        },
    )
    manifest = tmp_path / "app" / "tests" / "services.toml"
    result = wfgen(
        "init", "-m", str(manifest), "--from-compose", str(manifest.parent / "docker-compose.test.yml")
    )
    assert result.exit_code == 0, result.output
    for line in [
        "docker-compose.test.yml:2: services.vote: its build context is outside tests",
        "docker-compose.test.yml:5: services.sut: depends_on vote: not deployed by wfgen (build outside this "
        "folder); dropped",
    ]:
        assert line in result.stderr.splitlines()
    assert wfgen("validate", "-m", str(manifest)).exit_code == 0


def test_renames_health_fallbacks_and_workers_are_said_on_stderr(in_tmp: Path) -> None:  # noqa: F811
    data, text, stderr = init_compose(
        in_tmp,
        """\
        services:
          proxy:
            build: ./proxy
            ports: ["8080:80"]
          worker:
            build: ./worker
        """,
    )
    assert list(data["services"]) == ["proxy-service", "worker"]
    lines = stderr.splitlines()
    assert (
        "compose.yaml:2: services.proxy: named proxy-service in services.toml: the project proxy is <project>-proxy"
        in lines
    )
    assert (
        "compose.yaml:2: services.proxy: no HTTP health check found: make the service answer GET /health, or "
        "change the path" in lines
    )
    assert (
        "compose.yaml:5: services.worker: no port and no health check: wfgen deploys services that answer HTTP; "
        "a worker needs an HTTP health endpoint (GET /health on port 3000 here)" in lines
    )
    comments_are_on_stderr(text, stderr)


def test_build_target_is_mapped(in_tmp: Path) -> None:  # noqa: F811
    data, _, _ = init_compose(
        in_tmp, "services:\n  web:\n    build: {context: ., target: production}\n    ports: ['80:80']\n"
    )
    assert data["services"]["web"]["build_target"] == "production"


def test_scan_resolves_arg_defaults_and_says_its_notes_on_stderr(in_tmp: Path) -> None:  # noqa: F811
    build_file_tree(
        in_tmp,
        {
            "services/web/Dockerfile": "FROM nginx\nARG PORT=80\nEXPOSE $PORT\n",
            "services/api/Dockerfile": "FROM node\nENV APP_PORT=4000\nEXPOSE ${APP_PORT}/tcp\n",
            "services/job/Dockerfile": "FROM alpine\n",
        },
    )
    result = wfgen("init", "--scan", "services")
    assert result.exit_code == 0, result.output
    data = tomllib.loads((in_tmp / "services.toml").read_text(encoding="utf-8"))
    assert (data["services"]["web"]["port"], data["services"]["api"]["port"]) == (80, 4000)
    assert (
        "services/job/Dockerfile: services.job: no EXPOSE in the Dockerfile: port 3000 is the next free one; "
        "check the container's port" in result.stderr.splitlines()
    )

"""Environment of a compose service in `wfgen init`: env_file names only, plain values only by a stated rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.init.env_file import env_names_in_file, is_plain_value
from tests.support.files import build_file_tree, snapshot
from tests.test_init import in_tmp, wfgen  # noqa: F401  # in_tmp is a fixture

PEM_LINES = ["MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7", "Zm9vYmFyYmF6cXV4cXV1eA", "abc"]
ENV_FILE = f"""\
# a comment
DATABASE_URL=postgres://app:pa55word@db/app
export TLS_KEY="-----BEGIN PRIVATE KEY-----
{PEM_LINES[0]}
{PEM_LINES[1]}
-----END PRIVATE KEY-----"
GOOGLE_CREDENTIALS='{{
  "type": "service_account",
  "private_key_id": "{PEM_LINES[2]}"
}}'
ESCAPED="a \\" quote
still_the_value=1"
NO_EQUALS_LINE
LAST=1
"""


def test_a_multi_line_quoted_value_is_skipped_whole() -> None:
    assert env_names_in_file(ENV_FILE) == ["DATABASE_URL", "TLS_KEY", "GOOGLE_CREDENTIALS", "ESCAPED", "LAST"]


def test_no_line_of_an_env_file_reaches_the_manifest_or_the_terminal(in_tmp: Path) -> None:  # noqa: F811
    build_file_tree(
        in_tmp,
        {
            "compose.yaml": "services:\n  api:\n    build: .\n    ports: ['8080:80']\n    env_file: .env\n",
            ".env": ENV_FILE,
        },
    )
    result = wfgen("init")
    assert result.exit_code == 0, result.output
    written = (in_tmp / "services.toml").read_text(encoding="utf-8")
    assert 'env = ["DATABASE_URL", "TLS_KEY", "GOOGLE_CREDENTIALS", "ESCAPED", "LAST"]' in written
    shown = written + result.stdout + result.stderr
    for fragment in [
        *PEM_LINES,
        "pa55word",
        "PRIVATE KEY",
        "service_account",
        "NO_EQUALS_LINE",
        "still_the_value",
    ]:
        assert fragment not in shown


@pytest.mark.parametrize(
    ("env_file", "extra", "shown"),
    [
        pytest.param("/etc/passwd", {}, "/etc/passwd", id="absolute"),
        pytest.param("../outside.env", {}, "../outside.env", id="parent"),
        pytest.param("linked.env", {}, "linked.env", id="symlink-out"),
        pytest.param([".env", {"path": "../outside.env", "required": False}], {".env": "A=1\n"}, "../outside.env",
                     id="long-syntax-in-a-list"),
    ],
)  # fmt: skip
def test_an_env_file_outside_the_project_is_refused(
    tmp_path: Path, env_file: object, extra: dict[str, str], shown: str
) -> None:
    outside = tmp_path / "outside.env"
    outside.write_text("root:x:0:0:root:/root:/bin/bash\nSECRET=hunter2\n", encoding="utf-8")
    project = tmp_path / "project"
    build_file_tree(
        project,
        {
            "compose.yaml": f"services:\n  api:\n    build: .\n    ports: ['8080:80']\n    env_file: {env_file!r}\n",
            **extra,
        },
    )
    (project / "linked.env").symlink_to(outside)
    before = snapshot(tmp_path)
    result = wfgen(
        "init", "-m", str(project / "services.toml"), "--from-compose", str(project / "compose.yaml")
    )
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"compose.yaml:5: services.api.env_file: {shown} is outside the project folder; init reads no file outside it\n"
    )
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("name", "value", "plain"),
    [
        ("NODE_ENV", "production", True),
        ("RUST_LOG", "info", True),
        ("ASPNETCORE_URLS", "http://+:8000", True),
        ("REDIS_HOST", "redis", True),
        ("MONGO_URL", "mongodb://mongo:27017/app", True),
        ("PORT", "8000", True),
        ("POSTGRES_PASSWORD", "example", False),
        ("DB_PASSWD", "x", False),
        ("JWT_SECRET", "x", False),
        ("GITHUB_TOKEN", "x", False),
        ("STRIPE_KEY", "x", False),
        ("AWS_CREDENTIALS", "x", False),
        ("BASIC_AUTH", "x", False),
        ("PRIVATE_PEM", "x", False),
        ("SSL_CERT", "x", False),
        ("HASH_SALT", "x", False),
        ("SENTRY_DSN", "x", False),
        ("DATABASE_URL", "postgres://app:pa55@db:5432/app", False),
        ("FLASK_ENV", "${FLASK_ENV}", False),
        ("NAME", "$USER", False),
        ("SIGNING", "q8Zr2kLx9Vb4Tn7Wm1Yc6Pd3", False),
    ],
)
def test_which_compose_values_are_plain(name: str, value: str, plain: bool) -> None:
    assert is_plain_value(name, value) is plain


def test_credentials_and_interpolations_stay_secret_names(in_tmp: Path) -> None:  # noqa: F811
    build_file_tree(
        in_tmp,
        {
            "compose.yaml": """\
                services:
                  api:
                    build: .
                    ports: ["8000:8000"]
                    environment:
                      NODE_ENV: production
                      DEBUG: false
                      POSTGRES_PASSWORD: example-pw
                      DATABASE_URL: postgres://app:example-pw@db/app
                      API_BASE: ${API_BASE}
                      ONLY_NAME:
                """
        },
    )
    result = wfgen("init")
    assert result.exit_code == 0, result.output
    written = (in_tmp / "services.toml").read_text(encoding="utf-8")
    assert 'env = ["POSTGRES_PASSWORD", "DATABASE_URL", "API_BASE", "ONLY_NAME"]' in written
    assert 'vars = { NODE_ENV = "production", DEBUG = "false" }' in written
    assert "example-pw" not in written + result.output
    assert wfgen("validate").exit_code == 0


def test_a_name_secret_in_one_service_is_secret_in_all(in_tmp: Path) -> None:  # noqa: F811
    build_file_tree(
        in_tmp,
        {
            "compose.yaml": """\
                services:
                  api:
                    build: ./api
                    ports: ["8000:8000"]
                    environment: {DB_URL: "${DB_URL}"}
                  web:
                    build: ./web
                    ports: ["8001:8001"]
                    environment: {DB_URL: "postgres://db/app"}
                """
        },
    )
    result = wfgen("init")
    assert result.exit_code == 0, result.output
    written = (in_tmp / "services.toml").read_text(encoding="utf-8")
    assert "postgres://db/app" not in written
    assert (
        "compose.yaml:6: services.web: environment DB_URL: a secret in another service, so a secret name here too"
        in result.stderr.splitlines()
    )
    assert wfgen("validate").exit_code == 0

"""`wfgen init` on real public compose files (tests/compose_samples/, each with its licence and ORIGIN.md):
the manifest validates and renders, the workflows pass zizmor, actionlint and the GitHub workflow schema,
and no value that could be a secret reaches services.toml or the terminal."""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from generator.init.env_file import is_plain_value
from tests.test_init import wfgen
from tests.test_workflow_lint import actionlint, check_jsonschema, run, workflows, zizmor

SAMPLES_DIR = Path(__file__).parent / "compose_samples"
SAMPLES = {
    "voting-app": "example-voting-app/docker-compose.yml",
    "voting-app-test": "example-voting-app/result/docker-compose.test.yml",
    "react-express-mongodb": "awesome-compose/react-express-mongodb/compose.yaml",
    "nginx-golang-postgres": "awesome-compose/nginx-golang-postgres/compose.yaml",
    "flask-redis": "awesome-compose/flask-redis/compose.yaml",
    "react-rust-postgres": "awesome-compose/react-rust-postgres/compose.yaml",
    "nginx-flask-mysql": "awesome-compose/nginx-flask-mysql/compose.yaml",
    "nginx-wsgi-flask": "awesome-compose/nginx-wsgi-flask/compose.yaml",
    "react-express-mysql": "awesome-compose/react-express-mysql/compose.yaml",
}
SHORT_VALUE = (
    8  # a credential this short ("postgres") may be a word elsewhere in the output; quoted, it may not
)


@dataclass
class Initialised:
    root: Path  # the compose file's folder, where services.toml is written
    compose: dict[str, Any]
    manifest: dict[str, Any]
    text: str
    stdout: str
    stderr: str


@pytest.fixture(scope="module", params=sorted(SAMPLES))
def sample(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Initialised:
    relative = Path(SAMPLES[request.param])
    copy = tmp_path_factory.mktemp(f"sample-{request.param}") / relative.parts[0]
    shutil.copytree(SAMPLES_DIR / relative.parts[0], copy)
    root = copy.joinpath(*relative.parts[1:-1])
    cwd = Path.cwd()
    os.chdir(root)
    try:
        result = wfgen("init", "--from-compose", relative.name)
        assert result.exit_code == 0, result.output
        validated = wfgen("validate")
        assert validated.exit_code == 0, validated.output
        rendered = wfgen("render")
        assert rendered.exit_code == 0, rendered.output
    finally:
        os.chdir(cwd)
    text = (root / "services.toml").read_text(encoding="utf-8")
    compose = YAML(typ="safe", pure=True).load((root / relative.name).read_text(encoding="utf-8"))
    return Initialised(root, compose, tomllib.loads(text), text, result.stdout, result.stderr)


def credential_values(compose: dict[str, Any]) -> list[str]:
    """Every environment value of every service that the vars rule keeps out of services.toml."""
    found: list[str] = []
    for spec in compose["services"].values():
        environment = spec.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        found += [
            str(value)
            for name, value in environment.items()
            if value and not is_plain_value(name, str(value))
        ]
    return found


def test_no_credential_value_is_written_or_printed(sample: Initialised) -> None:
    shown = sample.stdout + sample.stderr
    for value in credential_values(sample.compose):
        assert f'"{value}"' not in sample.text
        assert value not in shown
        if len(value) > SHORT_VALUE:
            assert value not in sample.text


# Comments that explain the file rather than note something init could not map.
FIXED = ("services.toml written", "Check it", "vars: ", "shape says", "string)", "compose checks every")


def test_every_note_of_the_manifest_is_on_stderr(sample: Initialised) -> None:
    said = sample.stderr
    for line in sample.text.splitlines():
        note = line.removeprefix("# ")
        if line.startswith("# ") and ": " in note and not note.startswith(FIXED):
            assert note.split(": ", 1)[1] in said, note


def test_zizmor_pedantic_has_no_findings(sample: Initialised) -> None:
    result = run(zizmor("--persona", "pedantic", *workflows(sample.root)), sample.root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


def test_actionlint_has_no_findings(sample: Initialised) -> None:
    result = run(actionlint(*workflows(sample.root)), sample.root)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_github_workflow_schema_accepts_them(sample: Initialised) -> None:
    result = run(check_jsonschema(*workflows(sample.root)), sample.root)
    assert result.returncode == 0, result.stdout + result.stderr


def counts() -> tuple[int, int, int]:
    """(services, services with the compose file's own health path, notes on stderr) over every sample."""
    services = real_health = notes = 0
    for relative in SAMPLES.values():
        path = SAMPLES_DIR / relative
        result = wfgen(
            "init", "--stdout", "-m", str(path.parent / "services.toml"), "--from-compose", str(path)
        )
        assert result.exit_code == 0, result.output
        drafted = tomllib.loads(result.stdout)["services"]
        services += len(drafted)
        real_health += sum(
            "# no HTTP health check found" not in _block(result.stdout, name) for name in drafted
        )
        notes += sum(line.startswith(f"{path.name}:") for line in result.stderr.splitlines())
    return services, real_health, notes


def _block(text: str, name: str) -> str:
    return text.split(f"[services.{name}]", 1)[1].split("\n[", 1)[0]


def test_what_the_samples_map_to() -> None:
    assert counts() == (17, 3, 82)

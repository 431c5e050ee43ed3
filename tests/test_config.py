"""generator/steps/core/config.py and config_load.py: the typed view of manifest.json, and the one-line errors for a malformed one."""

from __future__ import annotations

import copy
import dataclasses
import json
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from generator.manifest.resolve import resolve_manifest
from generator.manifest.validate import load_manifest
from generator.steps import JOBS
from generator.steps.core import config, config_load, steplib
from tests.support.stepscripts import run_step

ROOT = Path(__file__).resolve().parent.parent
RESOLVED_BY_GENERATOR = [ROOT / "services.toml", *sorted((ROOT / "tests" / "manifests").glob("*.toml"))]
AGAIN = "; run 'wfgen render'"


def resolved(toml_path: Path = ROOT / "services.toml") -> dict[str, Any]:
    return resolve_manifest(load_manifest(toml_path), source=toml_path.name)


def as_json(value: object) -> object:
    """The view back in the shape of the resolved JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: as_json(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [as_json(item) for item in value]
    return value


@pytest.mark.parametrize("toml_path", RESOLVED_BY_GENERATOR, ids=lambda path: path.name)
def test_view_holds_every_manifest_the_generator_resolves(tmp_path: Path, toml_path: Path) -> None:
    manifest = load_manifest(toml_path)
    for environment in list(manifest.environments) or [None]:
        check_view(tmp_path, resolve_manifest(manifest, toml_path.name, environment))


def check_view(tmp_path: Path, data: dict[str, Any]) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    view = config_load.load(path)
    assert as_json(view) == {key: value for key, value in data.items() if key != config_load.NOTE_KEY}


def _fields_against_keys(cls: type[Any], data: object, where: str) -> list[tuple[str, set[str], set[str]]]:
    """(where, fields, keys) for the dataclass and every dataclass nested in it, against the resolved JSON."""
    assert isinstance(data, dict), where
    found = [(where, {field.name for field in dataclasses.fields(cls)}, set(data))]
    for name, hint in typing.get_type_hints(cls).items():
        inner = [arg for arg in (hint, *typing.get_args(hint)) if dataclasses.is_dataclass(arg)]
        if not inner or data.get(name) is None:  # an unset section (a service's swarm settings on one host)
            continue
        items = data[name] if isinstance(data[name], list) else [data[name]]
        if typing.get_origin(hint) is Mapping:
            items = list(data[name].values())
        for item in items[:1]:
            found += _fields_against_keys(inner[0], item, f"{where}.{name}")
    return found


def test_dataclass_fields_are_the_keys_the_resolver_writes() -> None:
    data = resolved()
    assert data["infrastructure"]["tcp"] and data["services"], "services.toml should exercise every section"
    top = {key: value for key, value in data.items() if key != config_load.NOTE_KEY}
    checked = _fields_against_keys(config.Manifest, top, "manifest")
    assert [where for where, _, _ in checked] == [
        "manifest",
        "manifest.project",
        "manifest.target",
        "manifest.build",
        "manifest.infrastructure",
        "manifest.infrastructure.tcp",
        "manifest.proxy",
        "manifest.services",
        "manifest.services.health",
    ]
    for where, fields, keys in checked:
        assert fields == keys, where


def test_view_is_read_only(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(resolved()), encoding="utf-8")
    view = config_load.load(path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.project.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        view.services["x"] = view.services["auth-service"]  # type: ignore[index]
    assert isinstance(view.project.branches, tuple)
    assert isinstance(view.project.lock_wait_s, float)


def test_health_url_uses_the_given_host_port(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(resolved()), encoding="utf-8")
    service = config_load.load(path).services["auth-service"]
    assert service.health_url(49152) == "http://127.0.0.1:49152/health"


Mutate = Callable[[dict[str, Any]], object]


def _set(*keys: str | int, value: object) -> Mutate:
    def mutate(data: dict[str, Any]) -> object:
        *parents, last = keys
        for key in parents:
            data = data[key]  # type: ignore[index]
        data[last] = value  # type: ignore[index]
        return data

    return mutate


def _drop(*keys: str) -> Mutate:
    def mutate(data: dict[str, Any]) -> object:
        *parents, last = keys
        for key in parents:
            data = data[key]
        return data.pop(last)

    return mutate


def _rename(*parents: str, old: str, new: str) -> Mutate:
    def mutate(data: dict[str, Any]) -> object:
        for key in parents:
            data = data[key]
        data[new] = data.pop(old)
        return data

    return mutate


AUTH = ("services", "auth-service")

# (id, file content: bytes, or a change to a valid resolved manifest; the message after "<path>: ")
MALFORMED: list[tuple[str, bytes | Mutate, str]] = [
    ("top-level list", b"[]\n", f"expected a JSON object, got an array{AGAIN}"),
    ("not json", b"{nope\n", "1: not valid JSON: Expecting property name enclosed in double quotes"),
    ("nested too deeply", b"[" * 100_000, "arrays or objects nested too deeply to read"),
    ("not utf-8", b'{"source": "caf\xe9"}\n', f"not UTF-8 text (bad byte at offset 15){AGAIN}"),
    ("unknown format", _set("format", value=2), f"unsupported manifest format 2{AGAIN}"),
    ("format as text", _set("format", value="1"), f"unsupported manifest format '1'{AGAIN}"),
    ("no format", _drop("format"), f"format: missing{AGAIN}"),
    ("no note", _drop("_generated"), f"_generated: missing{AGAIN}"),
    ("no services", _drop("services"), f"services: missing{AGAIN}"),
    ("no target", _drop("target"), f"target: missing{AGAIN}"),
    ("services a list", _set("services", value=[]), f"services: expected an object, got an array{AGAIN}"),
    ("unknown top key", _set("servces", value={}), f"servces: unknown key (did you mean 'services'?){AGAIN}"),
    (
        "lock_stale_s text",
        _set("project", "lock_stale_s", value="3600"),
        f"project.lock_stale_s: expected a number, got a string{AGAIN}",
    ),
    (
        "deadline NaN",
        _set(*AUTH, "health", "deadline_s", value=float("nan")),
        f"services.auth-service.health.deadline_s: expected a finite number, got nan{AGAIN}",
    ),
    (
        "lock_wait_s Infinity",
        _set("project", "lock_wait_s", value=float("inf")),
        f"project.lock_wait_s: expected a finite number, got inf{AGAIN}",
    ),
    (
        "max_parallel bool",
        _set("project", "max_parallel", value=True),
        f"project.max_parallel: expected an integer, got true{AGAIN}",
    ),
    (
        "branches a string",
        _set("project", "branches", value="main"),
        f"project.branches: expected an array, got a string{AGAIN}",
    ),
    (
        "branch a number",
        _set("project", "branches", value=[1]),
        f"project.branches[0]: expected a string, got an integer{AGAIN}",
    ),
    (
        "unknown kind",
        _set("target", "kind", value="docker"),
        f"target.kind: expected 'ssh' or 'local' or 'swarm', got 'docker'{AGAIN}",
    ),
    (
        "kind null",
        _set("target", "kind", value=None),
        f"target.kind: expected 'ssh' or 'local' or 'swarm', got null{AGAIN}",
    ),
    (
        "insecure as text",
        _set("target", "insecure_ignore_host_key", value="false"),
        f"target.insecure_ignore_host_key: expected true or false, got a string{AGAIN}",
    ),
    (
        "ssh without port",
        _set("target", "port", value=None),
        f"target.port: must be set when target.kind is 'ssh'{AGAIN}",
    ),
    (
        "runner without registry",
        _set("build", "where", value="runner"),
        f"build.registry: must be set when build.where is 'runner'{AGAIN}",
    ),
    (
        "tcp port text",
        _set("infrastructure", "tcp", 0, "port", value="5432"),
        f"infrastructure.tcp[0].port: expected an integer, got a string{AGAIN}",
    ),
    (
        "port with a fraction",
        _set(*AUTH, "port", value=3000.5),
        f"services.auth-service.port: expected an integer, got a decimal number{AGAIN}",
    ),
    (
        "health null",
        _set(*AUTH, "health", value=None),
        f"services.auth-service.health: expected an object, got null{AGAIN}",
    ),
    (
        "health misspelt",
        _rename(*AUTH, old="health", new="helth"),
        f"services.auth-service.health: missing{AGAIN}",
    ),
    (
        "unknown service key",
        _set(*AUTH, "helth", value={}),
        f"services.auth-service.helth: unknown key (did you mean 'health'?){AGAIN}",
    ),
    (
        "unknown key with a line break",
        _set(*AUTH, "a\nb", value=1),
        f'services.auth-service."a\\nb": unknown key{AGAIN}',
    ),
    (
        "health path missing",
        _drop(*AUTH, "health", "path"),
        f"services.auth-service.health.path: missing{AGAIN}",
    ),
    (
        "release a string",
        _set(*AUTH, "release", value="npm run migrate"),
        f"services.auth-service.release: expected an array, got a string{AGAIN}",
    ),
    (
        "release empty",
        _set(*AUTH, "release", value=[]),
        f"services.auth-service.release: must be null or a command with no empty part{AGAIN}",
    ),
    (
        "release with an empty part",
        _set(*AUTH, "release", value=["npm", ""]),
        f"services.auth-service.release: must be null or a command with no empty part{AGAIN}",
    ),
    (
        "release part a number",
        _set(*AUTH, "release", value=["sleep", 5]),
        f"services.auth-service.release[1]: expected a string, got an integer{AGAIN}",
    ),
    (
        "release timeout missing",
        _drop(*AUTH, "release_timeout_s"),
        f"services.auth-service.release_timeout_s: missing{AGAIN}",
    ),
    (
        "release timeout zero",
        _set(*AUTH, "release_timeout_s", value=0),
        f"services.auth-service.release_timeout_s: must be more than 0 and at most 86400 seconds{AGAIN}",
    ),
    (
        "name differs from key",
        _set(*AUTH, "name", value="user-service"),
        f"services.auth-service.name: must be 'auth-service', the service's key{AGAIN}",
    ),
    (
        "service key with a line break",
        _rename("services", old="auth-service", new="auth\n::error::x"),
        f"services.\"auth\\n::error::x\".name: must be 'auth\\n::error::x', the service's key{AGAIN}",
    ),
]


def write_malformed(directory: Path, content: bytes | Mutate) -> Path:
    path = directory / "manifest.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        data = copy.deepcopy(resolved())
        content(data)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "message"), [case[1:] for case in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_manifest_is_one_line(tmp_path: Path, content: bytes | Mutate, message: str) -> None:
    path = write_malformed(tmp_path, content)
    with pytest.raises(steplib.UsageError) as caught:
        config_load.load(path)
    separator = "" if message[:1].isdigit() else " "
    assert str(caught.value) == f"{path}:{separator}{message}"


@pytest.mark.parametrize(
    ("content", "message"), [case[1:] for case in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_deploy_service_reports_a_malformed_manifest_with_exit_2(
    tmp_path: Path, content: bytes | Mutate, message: str
) -> None:
    path = write_malformed(tmp_path, content)
    status = tmp_path / "status.json"
    args = ("--service", "auth-service", "--branch", "main", "--status-file", str(status))
    proc = run_step("deploy_service", "--manifest", str(path), *args)
    separator = "" if message[:1].isdigit() else " "
    assert (proc.returncode, proc.stderr) == (2, f"auth-service: {path}:{separator}{message}\n")
    assert proc.stdout == ""
    assert not status.exists()


def test_a_folder_is_not_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(steplib.UsageError) as caught:
        config_load.load(tmp_path)
    assert str(caught.value) == f"{tmp_path}: is a folder, not the resolved manifest file"


def test_a_missing_manifest_says_to_render(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    with pytest.raises(steplib.UsageError) as caught:
        config_load.load(path)
    assert str(caught.value) == f"{path}: resolved manifest not found{AGAIN}"


@pytest.mark.parametrize("job", JOBS)
def test_every_job_exits_2_without_a_traceback_on_a_folder(tmp_path: Path, job: str) -> None:
    env = {"WFGEN_SERVICE": "web", "WFGEN_SERVICES": "all", "WFGEN_STATUS_FILE": str(tmp_path / "s.json")}
    proc = run_step(job, "--manifest", str(tmp_path), env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.endswith(f": {tmp_path}: is a folder, not the resolved manifest file\n")
    assert len(proc.stderr.splitlines()) == 1

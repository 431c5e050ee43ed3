"""Plain configuration values (generator/plain_vars.py): validation, one line each, and what each
environment resolves to. Their deploy on a real engine is in tests/test_deploy_service.py."""

from __future__ import annotations

import pytest

from generator.errors import ManifestError
from generator.manifest.resolve import resolve_manifest
from generator.manifest.validate import parse_manifest
from generator.steps.core import config, config_load, runconfig
from generator.steps.engine import changes

BASE = """\
[project]
name = "shop"

[infrastructure]
secrets = ["SHARED_KEY"]

[services.web]
repository = "acme/web"
port = 3000
env = ["DB_URL"]
"""
TWO = """
[environments.production]
branches = ["main"]

[environments.staging]
branches = ["develop"]
port_offset = 1000

[environments.staging.vars.web]
NODE_ENV = "staging"
EXTRA = "1"
"""


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('vars = { DB_URL = "x" }',
         "services.web.vars.DB_URL: DB_URL is also in env: a name is a plain value or a secret, not both"),
        ('vars = { SHARED_KEY = "x" }',
         "services.web.vars.SHARED_KEY: SHARED_KEY is in infrastructure.secrets: a name is a plain value or a "
         "secret, not both"),
        ('vars = { A = "one\\ntwo" }', "services.web.vars.A: must be one line: no line break or NUL character"),
        ('vars = { A = "one\\rtwo" }', "services.web.vars.A: must be one line: no line break or NUL character"),
        ('vars = { A = "one\\u0000" }', "services.web.vars.A: must be one line: no line break or NUL character"),
        ('vars = { "NODE-ENV" = "x" }',
         "services.web.vars.NODE-ENV: must be an environment variable name such as VPS_HOST (letters, digits, '_')"),
        ('vars = { "1A" = "x" }',
         "services.web.vars.1A: must be an environment variable name such as VPS_HOST (letters, digits, '_')"),
        ('vars = { WFGEN_X = "x" }',
         "services.web.vars.WFGEN_X: names starting with WFGEN_ are reserved for wfgen's own settings"),
        ("vars = { PORT = 3 }", "services.web.vars.PORT: must be a string"),
        ("vars = { DEBUG = true }", "services.web.vars.DEBUG: must be a string"),
        ('vars = ["A=1"]', "services.web.vars: must be a table"),
    ],
)  # fmt: skip
def test_a_bad_plain_value_is_one_line(line: str, problem: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(BASE + line + "\n")
    assert caught.value.problems == [f"services.toml:11: {problem}"]


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ("[environments.staging.vars.wbe]\nA = \"1\"\n",
         "services.toml:24: environments.staging.vars.wbe: unknown service 'wbe' (did you mean 'web'?)"),
        ("[environments.production.vars.web]\nDB_URL = \"x\"\n",
         "services.toml:25: environments.production.vars.web.DB_URL: DB_URL is also in env: a name is a plain "
         "value or a secret, not both"),
        ("[environments.production.vars.web]\nA = 1\n",
         "services.toml:25: environments.production.vars.web.A: must be a string"),
        ("[environments.production.vars.web]\nA = \"a\\nb\"\n",
         "services.toml:25: environments.production.vars.web.A: must be one line: no line break or NUL character"),
    ],
)  # fmt: skip
def test_a_bad_environment_override_is_one_line(table: str, problem: str) -> None:
    text = BASE + 'vars = { NODE_ENV = "production", LOG_LEVEL = "info" }\n' + TWO + "\n" + table
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert caught.value.problems == [problem]


def test_an_environment_overrides_and_adds_to_a_services_values() -> None:
    text = BASE + 'vars = { NODE_ENV = "production", LOG_LEVEL = "info" }\n' + TWO
    manifest = parse_manifest(text)
    production = resolve_manifest(manifest, environment="production")["services"]["web"]
    staging = resolve_manifest(manifest, environment="staging")["services"]["web"]
    assert production["vars"] == {"LOG_LEVEL": "info", "NODE_ENV": "production"}
    assert staging["vars"] == {"EXTRA": "1", "LOG_LEVEL": "info", "NODE_ENV": "staging"}
    assert production["env"] == staging["env"] == ["DB_URL"]


def test_without_vars_a_service_resolves_to_none_and_its_fingerprint_is_unchanged() -> None:
    resolved = resolve_manifest(parse_manifest(BASE))
    assert resolved["services"]["web"]["vars"] == {}
    web = config_load.parse(resolved, "manifest.json").services["web"]
    assert not [part for part in runconfig.run_config(web, "n", {}) if part.startswith("var ")]
    assert runconfig.vars_label_args(web) == []


def test_a_value_is_a_fingerprint_part_and_a_label() -> None:
    resolved = resolve_manifest(parse_manifest(BASE + 'vars = { NODE_ENV = "production" }\n'))
    web = config_load.parse(resolved, "manifest.json").services["web"]
    parts = runconfig.run_config(web, "n", {"DB_URL": "secret"})
    assert (parts["var NODE_ENV"], parts["env DB_URL"]) == ("production", "secret")
    label = runconfig.vars_label_args(web)
    assert label == ["--label", 'wfgen.vars={"NODE_ENV":"production"}']
    assert runconfig.vars_of({"wfgen.vars": label[1].partition("=")[2]}) == {"NODE_ENV": "production"}
    assert "secret" not in "".join(label)


@pytest.mark.parametrize(
    ("vars_", "problem"),
    [
        ({"A": "x\ny"}, "services.web.vars.A: must be one line: no line break or NUL character"),
        ({"A-B": "x"}, "services.web.vars.A-B: must be an environment variable name"),
        ({"DB_URL": "x"}, "services.web.vars.DB_URL: is also in env: a plain value or a secret, not both"),
        ({"A": 1}, "services.web.vars.A: expected a string, got an integer"),
    ],
)
def test_the_steps_refuse_a_resolved_value_that_could_not_come_from_the_manifest(
    vars_: dict[str, object], problem: str
) -> None:
    resolved = resolve_manifest(parse_manifest(BASE))
    resolved["services"]["web"]["vars"] = vars_
    with pytest.raises(config.steplib.UsageError) as caught:
        config_load.parse(resolved, "manifest.json")
    assert str(caught.value) == f"manifest.json: {problem}; run 'wfgen render'"


def test_the_plan_names_a_changed_value_and_not_its_value() -> None:
    salt = b"s" * 32

    def view(level: str) -> config.Manifest:
        text = BASE + f'vars = {{ LOG_LEVEL = "{level}" }}\n'
        return config_load.parse(resolve_manifest(parse_manifest(text)), "manifest.json")

    old = view("info")
    settings = runconfig.run_config(old.services["web"], old.target.network, {"DB_URL": "x"})
    labels = dict(item.split("=", 1) for item in runconfig.fingerprint(settings, salt).label_args()[1::2])
    running = changes.Running("abc", True, labels, frozenset())
    assert changes.config_change(old, old.services["web"], running, salt, {"DB_URL": "x"}) is None
    new = view("debug")
    assert changes.config_change(new, new.services["web"], running, salt, {"DB_URL": "x"}) == "var LOG_LEVEL"
    assert changes.config_change(new, new.services["web"], running, salt, {}) == "var LOG_LEVEL"

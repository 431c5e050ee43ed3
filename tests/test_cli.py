"""The command line: bad input gives one line per problem, exit 2, no traceback, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import cli
from generator.distribution import installed
from generator.manifest.model import Manifest
from tests.support.files import build_file_tree, snapshot

BASE = """\
[project]
name = "shop"
branches = ["main", "develop"]

[target]
kind = "ssh"
port = 22

[infrastructure]
tcp = ["127.0.0.1:5432"]

[services.auth]
repository = "shop/auth"
port = 3000
env = ["JWT_SECRET"]

[services.web]
path = "services/web"
port = 3001
depends_on = ["auth"]
"""

FOREIGN_WFGEN = (
    "services.toml:4: project.wfgen_install: must not install 'wfgen': on PyPI that name is an unrelated "
    f"package; leave wfgen_install unset to pin {installed().requirement}, the wfgen that renders"
)

MISTAKES = [
    pytest.param(
        'env = ["JWT_SECRET"]',
        "env = " + "[" * 3000 + "]" * 3000,
        "services.toml: arrays or tables nested too deeply to read",
        id="deep-array",
    ),
    pytest.param(
        'env = ["JWT_SECRET"]',
        "env = " + "{a = " * 3000 + "1" + "}" * 3000,
        "services.toml: arrays or tables nested too deeply to read",
        id="deep-inline-table",
    ),
    pytest.param(
        'env = ["JWT_SECRET"]',
        "env." + "a." * 3000 + "a = 1",  # tomllib reads dotted keys without recursing; checking them recurses
        "services.toml: arrays or tables nested too deeply to read",
        id="deep-dotted-keys",
    ),
    pytest.param(
        'name = "shop"',
        'name = "shop',
        "services.toml:2: invalid TOML: Illegal character '\\n' (column 13)",
        id="toml-syntax",
    ),
    pytest.param(
        "[infrastructure]",
        "[infrastucture]",
        "services.toml:9: infrastucture: unknown key (did you mean 'infrastructure'?)",
        id="unknown-table",
    ),
    pytest.param(
        "port = 3001",
        "prot = 3001",
        "services.toml:17: services.web.port: required key is missing\nservices.toml:19: services.web.prot: unknown key (did you mean 'port'?)",
        id="unknown-key",
    ),
    pytest.param(
        "[services.web]",
        "[services.proxy]",
        "services.toml:17: services.proxy: the name is taken: <project>-proxy is the project proxy",
        id="service-named-proxy",
    ),
    pytest.param(
        'path = "services/web"',
        'path = "services/web"\ndomain = "https://web.example.com"',
        "services.toml:19: services.web.domain: must be a lowercase host name such as 'chat.example.com' "
        "(no scheme, port or path)",
        id="domain-with-scheme",
    ),
    pytest.param(
        'path = "services/web"',
        'path = "services/web"\nproxy = false\ndomain = "web.example.com"',
        "services.toml:17: services.web: a domain is served by the proxy: it needs proxy = true",
        id="domain-without-proxy",
    ),
    pytest.param(
        "port = 3001",
        'port = 443\ndomain = "web.example.com"',
        "services.toml:19: services.web.port: port 443 is proxy.https_port, where domains are served",
        id="port-is-https-port",
    ),
    pytest.param(
        "port = 3000",
        "port = 70000",
        "services.toml:14: services.auth.port: must be between 1 and 65535",
        id="port-range",
    ),
    pytest.param(
        "port = 3000",
        'port = "3000"',
        "services.toml:14: services.auth.port: must be an integer",
        id="port-type",
    ),
    pytest.param(
        "port = 3001",
        "port = 3000",
        "services.toml:19: services.web.port: port 3000 is already used by auth",
        id="duplicate-port",
    ),
    pytest.param(
        "[services.web]",
        "[services.Web_App]",
        "services.toml:17: services.Web_App: must be lowercase letters, digits and '-', start with a letter or digit, at most 63 characters",
        id="service-name",
    ),
    pytest.param(
        'depends_on = ["auth"]',
        'depends_on = ["auht"]',
        "services.toml:20: services.web.depends_on[0]: unknown service 'auht' (did you mean 'auth'?)",
        id="unknown-dependency",
    ),
    pytest.param(
        'env = ["JWT_SECRET"]',
        'env = ["JWT_SECRET"]\ndepends_on = ["web"]',
        "services.toml:16: services.auth.depends_on: dependency cycle: auth -> web -> auth",
        id="cycle",
    ),
    pytest.param(
        'path = "services/web"',
        'path = "services/web"\nrepository = "shop/web"',
        "services.toml:17: services.web: set exactly one of 'repository' or 'path'",
        id="two-sources",
    ),
    pytest.param(
        'path = "services/web"\n',
        "",
        "services.toml:17: services.web: set exactly one of 'repository' or 'path'",
        id="no-source",
    ),
    pytest.param(
        'repository = "shop/auth"',
        'repository = "${{ github.repository }}"',
        "services.toml:13: services.auth.repository: must not contain '${{' (GitHub expression syntax)\nservices.toml:13: services.auth.repository: must be 'owner/name' on GitHub or a git URL (https://, ssh://, file://, git@host:path)",
        id="expression",
    ),
    pytest.param(
        '"develop"]',
        '"dev;rm -rf"]',
        "services.toml:3: project.branches[1]: is not a safe git branch name (letters, digits, '.', '_', '-', '/'; no '..')",
        id="unsafe-branch",
    ),
    pytest.param(
        "[infrastructure]",
        '[build]\nwhere = "runner"\n\n[infrastructure]',
        "services.toml:10: build.where: 'runner' needs a registry to push to, e.g. registry = 'ghcr.io/owner'",
        id="runner-no-registry",
    ),
    pytest.param(
        'kind = "ssh"',
        'kind = "docker"',
        "services.toml:6: target.kind: must be one of 'ssh', 'local' or 'swarm'",
        id="target-kind",
    ),
    pytest.param(
        'env = ["JWT_SECRET"]',
        'env = ["jwt-secret"]',
        "services.toml:15: services.auth.env[0]: must be an environment variable name such as VPS_HOST (letters, digits, '_')",
        id="env-name",
    ),
    pytest.param(
        '"127.0.0.1:5432"',
        '"localhost"',
        "services.toml:10: infrastructure.tcp[0]: must be 'host:port', e.g. '127.0.0.1:5432' or '[::1]:6379'",
        id="tcp-endpoint",
    ),
    pytest.param(
        'path = "services/web"',
        'path = "../web"',
        "services.toml:18: services.web.path: must be a relative path inside the repository (no '..', no leading '/')",
        id="path-escape",
    ),
    pytest.param(
        'branches = ["main", "develop"]',
        'branches = ["main", "develop"]\nmax_parallel = 0',
        "services.toml:4: project.max_parallel: must be at least 1",
        id="max-parallel",
    ),
    pytest.param(
        'branches = ["main", "develop"]',
        'branches = ["main", "develop"]\nlock_stale_s = 60',
        "services.toml:4: project.lock_stale_s: must be at least 120 s: a running deploy refreshes its lock every 5 s, and a few slow refreshes must not let another deploy break it",
        id="lock-stale-breaks-live-locks",
    ),
    pytest.param(
        'kind = "ssh"\nport = 22',
        'kind = "local"\nport = 22',
        "services.toml:7: target.port: only used with kind = 'ssh'",
        id="local-with-ssh-key",
    ),
    pytest.param(
        '[project]\nname = "shop"\nbranches = ["main", "develop"]\n',
        "",
        "services.toml:1: project: required key is missing",
        id="missing-project",
    ),
    pytest.param(
        "port = 3000\n",
        'port = 3000\nhealth = { path = "/health", timeout_s = "5" }\n',
        "services.toml:15: services.auth.health.timeout_s: must be a number",
        id="health-type",
    ),
    pytest.param(
        'env = ["JWT_SECRET"]',
        'env = ["WFGEN_SERVICE"]',
        "services.toml:15: services.auth.env[0]: names starting with WFGEN_ are reserved for wfgen's own settings",
        id="reserved-env",
    ),
    pytest.param(
        '"develop"]',
        '"develop\\n"]',
        "services.toml:3: project.branches[1]: is not a safe git branch name (letters, digits, '.', '_', '-', '/'; no '..')",
        id="newline-in-branch",
    ),
    pytest.param(
        'env = ["JWT_SECRET"]',
        'env = ["JWT\\n"]',
        "services.toml:15: services.auth.env[0]: must be an environment variable name such as VPS_HOST (letters, digits, '_')",
        id="newline-in-env-name",
    ),
    pytest.param(
        "[services.web]",
        '[services."web\\n"]',
        "services.toml:12: services.\"web\\n\": must be lowercase letters, digits and '-', start with a letter or digit, at most 63 characters",
        id="newline-in-service-name",
    ),
    pytest.param(
        "[services.web]",
        "[servics.web]",
        "services.toml:17: servics: unknown key (did you mean 'services'?)",
        id="misspelt-dotted-table",
    ),
    pytest.param(
        "port = 3000\n",
        'port = 3000\nhealth = { path = "health" }\n',
        "services.toml:15: services.auth.health.path: must be an HTTP path starting with '/', without spaces",
        id="health-path",
    ),
    pytest.param(
        'depends_on = ["auth"]',
        'depends_on = ["web"]',
        "services.toml:20: services.web.depends_on[0]: a service cannot depend on itself",
        id="self-dependency",
    ),
    pytest.param('"develop"]', '"develop"]\nwfgen_install = "wfgen"', FOREIGN_WFGEN, id="unrelated-wfgen"),
    pytest.param(
        '"develop"]', '"develop"]\nwfgen_install = "wfgen==0.1.0"', FOREIGN_WFGEN, id="old-default-install"
    ),
    pytest.param(
        '"develop"]', '"develop"]\nwfgen_install = "wfgen>=0.1"', FOREIGN_WFGEN, id="unrelated-wfgen-range"
    ),
]


@pytest.mark.parametrize("command", ["validate", "render", "check", "graph"])
@pytest.mark.parametrize(("before", "after", "message"), MISTAKES)
def test_bad_manifest_is_one_line_per_problem_and_writes_nothing(
    tmp_path: Path, command: str, before: str, after: str, message: str
) -> None:
    assert before in BASE
    build_file_tree(tmp_path, {"services.toml": BASE.replace(before, after, 1)})
    before_run = snapshot(tmp_path)
    result = CliRunner().invoke(cli, [command, "--manifest", str(tmp_path / "services.toml")])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr == message.replace("services.toml", str(tmp_path / "services.toml")) + "\n"
    assert "Traceback" not in result.output
    assert snapshot(tmp_path) == before_run


def test_error_names_relative_manifest_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build_file_tree(tmp_path, {"services.toml": BASE.replace("port = 3000", "port = 0")})
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 2
    assert result.stderr == "services.toml:14: services.auth.port: must be between 1 and 65535\n"


def test_missing_manifest(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["render", "--manifest", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert result.stderr == f"{tmp_path / 'nope.toml'}: no such file; create it or pass --manifest\n"
    assert list(tmp_path.iterdir()) == []


def test_too_many_services(tmp_path: Path) -> None:
    services = "".join(f"[services.s{i}]\nrepository = 'o/s{i}'\nport = {2000 + i}\n" for i in range(257))
    build_file_tree(tmp_path, {"services.toml": '[project]\nname = "big"\n' + services})
    result = CliRunner().invoke(cli, ["validate", "--manifest", str(tmp_path / "services.toml")])
    assert result.exit_code == 2
    assert result.stderr.endswith("services: has too many entries (at most 256)\n")


def test_validate_ok(tmp_path: Path) -> None:
    build_file_tree(tmp_path, {"services.toml": BASE})
    result = CliRunner().invoke(cli, ["validate", "--manifest", str(tmp_path / "services.toml")])
    assert result.exit_code == 0
    assert result.stdout == f"{tmp_path / 'services.toml'}: OK (2 services)\n"


def test_schema_is_the_model_schema_and_validates_the_dogfood_manifest() -> None:
    import tomllib

    import jsonschema

    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["properties"].keys() == Manifest.model_json_schema()["properties"].keys()
    data = tomllib.loads(Path("services.toml").read_text(encoding="utf-8"))
    jsonschema.validate(data, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "servces": {}}, schema)


def test_committed_schema_file_is_current() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert Path("docs/services.schema.json").read_text(encoding="utf-8") == result.stdout


def _render_then_check(tmp_path: Path) -> tuple[CliRunner, str]:
    build_file_tree(tmp_path, {"services.toml": BASE})
    manifest = str(tmp_path / "services.toml")
    runner = CliRunner()
    rendered = runner.invoke(cli, ["render", "--manifest", manifest])
    assert rendered.exit_code == 0, rendered.output
    assert "wrote .github/workflows/deploy-services-parallel.yml\n" in rendered.stdout
    again = runner.invoke(cli, ["render", "--manifest", manifest])
    assert again.stdout.startswith("up to date: ")
    current = runner.invoke(cli, ["check", "--manifest", manifest])
    assert current.exit_code == 0 and current.stdout.startswith("up to date: "), current.output
    return runner, manifest


def test_check_fails_on_a_hand_edited_file(tmp_path: Path) -> None:
    runner, manifest = _render_then_check(tmp_path)
    workflow = tmp_path / ".github/workflows/deploy-services-parallel.yml"
    workflow.write_text(workflow.read_text(encoding="utf-8").replace("max-parallel: 6", "max-parallel: 9"))
    result = runner.invoke(cli, ["check", "--manifest", manifest])
    assert result.exit_code == 1
    assert "-      max-parallel: 9\n+      max-parallel: 6\n" in result.stdout  # disk -> what render writes
    assert result.stderr.endswith("1 generated file(s) out of date; run 'wfgen render'\n")


def test_check_fails_after_a_manifest_change_until_rendered(tmp_path: Path) -> None:
    runner, manifest = _render_then_check(tmp_path)
    path = tmp_path / "services.toml"
    path.write_text(BASE.replace('branches = ["main", "develop"]', 'branches = ["main", "develop", "qa"]'))
    result = runner.invoke(cli, ["check", "--manifest", manifest])
    assert result.exit_code == 1
    assert "+          - qa\n" in result.stdout
    assert "changed: .github/workflows/deploy-services-parallel.yml" in result.stderr
    assert "changed: .github/wfgen/manifest.json" in result.stderr
    assert runner.invoke(cli, ["render", "--manifest", manifest]).exit_code == 0
    assert runner.invoke(cli, ["check", "--manifest", manifest]).exit_code == 0


def test_check_fails_on_a_deleted_file(tmp_path: Path) -> None:
    runner, manifest = _render_then_check(tmp_path)
    (tmp_path / ".github/wfgen/prepare.py").unlink()
    result = runner.invoke(cli, ["check", "--manifest", manifest])
    assert result.exit_code == 1
    assert "missing: .github/wfgen/prepare.py" in result.stderr
    assert not (tmp_path / ".github/wfgen/prepare.py").exists()  # check never writes


def test_this_repository_generated_files_are_current() -> None:
    result = CliRunner().invoke(cli, ["check", "--manifest", "services.toml"])
    assert result.exit_code == 0, result.output + "\nrun 'wfgen render' and commit the result"


def test_path_with_a_colon_and_a_byte_order_mark(tmp_path: Path) -> None:
    folder = tmp_path / "a:b"
    folder.mkdir()
    (folder / "services.toml").write_bytes(b"\xef\xbb\xbf" + BASE.replace("port = 3000", "port = 0").encode())
    result = CliRunner().invoke(cli, ["validate", "--manifest", str(folder / "services.toml")])
    assert result.exit_code == 2
    assert (
        result.stderr == f"{folder / 'services.toml'}:14: services.auth.port: must be between 1 and 65535\n"
    )


def test_render_removes_files_it_generated_but_no_longer_renders(tmp_path: Path) -> None:
    runner, manifest = _render_then_check(tmp_path)
    old = tmp_path / ".github/workflows/old-deploy.yml"
    old.write_text((tmp_path / ".github/workflows/deploy-services-parallel.yml").read_text(encoding="utf-8"))
    hand_written = tmp_path / ".github/workflows/ci.yml"
    hand_written.write_text("name: CI\n")
    assert runner.invoke(cli, ["check", "--manifest", manifest]).exit_code == 1
    result = runner.invoke(cli, ["render", "--manifest", manifest])
    assert result.exit_code == 0
    assert (
        result.stdout == "removed .github/workflows/old-deploy.yml (generated by wfgen, no longer rendered)\n"
    )
    assert not old.exists() and hand_written.exists()
    assert runner.invoke(cli, ["check", "--manifest", manifest]).exit_code == 0


def test_render_into_a_blocked_path_is_a_one_line_error(tmp_path: Path) -> None:
    build_file_tree(tmp_path, {"services.toml": BASE, ".github/wfgen": "a file where a folder belongs\n"})
    result = CliRunner().invoke(cli, ["render", "--manifest", str(tmp_path / "services.toml")])
    assert result.exit_code == 2
    assert result.stderr.startswith(".github/wfgen/")
    assert ": cannot write: " in result.stderr and len(result.stderr.splitlines()) == 1

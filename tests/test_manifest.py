"""Loading and validating services.toml, and the resolved JSON the step scripts read."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from generator.errors import ManifestError
from generator.manifest.locate import KeyLocator, format_loc
from generator.manifest.resolve import resolve_manifest
from generator.manifest.validate import find_cycle, load_manifest, parse_manifest
from generator.steps.core.names import GIT_REF_HINT
from tests.support.git_refs import SAFE_REFS, UNSAFE_REFS

ISSUE_EXAMPLE = textwrap.dedent(
    """\
    [project]
    name = "letzgo"
    branches = ["main", "develop", "staging"]     # dispatch choices, first is the default
    max_parallel = 6
    runs_on = "ubuntu-latest"

    [target]
    kind = "ssh"                                   # or "local"
    host_env = "VPS_HOST"                          # names of env vars / secrets, never values
    user_env = "VPS_USER"
    ssh_key_env = "VPS_SSH_KEY"
    known_hosts_env = "VPS_KNOWN_HOSTS"
    port = 22
    network = "letzgo-network"

    [build]
    where = "target"                               # or "runner" (then registry is required)
    registry = "ghcr.io/letzgo"

    [infrastructure]
    networks = ["letzgo-network"]
    min_free_disk_mb = 2048
    tcp = ["127.0.0.1:5432"]
    secrets = ["JWT_SECRET"]

    [services.auth-service]
    repository = "letzgo/auth-service"             # GitHub owner/name or any git URL (https://, ssh://, file://)
    port = 3000
    container_port = 3000
    env = ["JWT_SECRET"]
    health = { path = "/health", interval_s = 1, timeout_s = 5, deadline_s = 60, start_grace_s = 0 }

    [services.user-service]
    path = "services/user"                         # a folder of this repository (monorepo); exactly one of repository/path
    port = 3001
    depends_on = ["auth-service"]
    """
)


def test_issue_example_validates_and_resolves() -> None:
    resolved = resolve_manifest(parse_manifest(ISSUE_EXAMPLE))
    assert resolved["format"] == 1
    assert resolved["project"]["branches"] == ["main", "develop", "staging"]
    auth, user = resolved["services"]["auth-service"], resolved["services"]["user-service"]
    assert auth["clone_url"] == "https://github.com/letzgo/auth-service.git"
    assert auth["health"] == {
        "path": "/health",
        "interval_s": 1.0,
        "timeout_s": 5.0,
        "deadline_s": 60.0,
        "start_grace_s": 0.0,
    }
    assert user["clone_url"] is None and user["path"] == "services/user"
    assert user["container_port"] == 3001
    assert user["health"]["deadline_s"] == 60.0
    assert resolved["infrastructure"]["tcp"] == [{"host": "127.0.0.1", "port": 5432}]
    assert list(resolved["services"]) == ["auth-service", "user-service"]


def test_defaults_for_a_minimal_manifest() -> None:
    resolved = resolve_manifest(
        parse_manifest('[project]\nname = "p"\n[services.a]\nrepository = "o/a"\nport = 80\n')
    )
    assert resolved["project"]["branches"] == ["main"]
    assert resolved["target"]["kind"] == "ssh"
    assert resolved["target"]["host_env"] == "VPS_HOST"
    assert resolved["target"]["network"] == "p-network"
    assert resolved["build"]["where"] == "target"


def test_local_target_has_no_ssh_settings() -> None:
    text = '[project]\nname = "p"\n[target]\nkind = "local"\n[services.a]\npath = "a"\nport = 80\n'
    target = resolve_manifest(parse_manifest(text))["target"]
    assert target["host_env"] is None and target["ssh_key_env"] is None and target["port"] is None


@pytest.mark.parametrize(
    ("repository", "url"),
    [
        ("owner/name", "https://github.com/owner/name.git"),
        ("https://git.example.com/a/b.git", "https://git.example.com/a/b.git"),
        ("file:///srv/git/a", "file:///srv/git/a"),
        ("git@example.com:a/b.git", "git@example.com:a/b.git"),
    ],
)
def test_clone_url(repository: str, url: str) -> None:
    text = f'[project]\nname = "p"\n[services.a]\nrepository = "{repository}"\nport = 80\n'
    assert resolve_manifest(parse_manifest(text))["services"]["a"]["clone_url"] == url


def test_every_problem_is_reported_at_once() -> None:
    text = '[project]\nname = "P"\n[services.a]\nrepository = "o/a"\nport = 0\n'
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert caught.value.problems == [
        "services.toml:2: project.name: must be lowercase letters, digits and '-', start with a letter or digit, "
        "at most 63 characters",
        "services.toml:5: services.a.port: must be between 1 and 65535",
    ]


def test_load_manifest_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "services.toml"
    path.write_text(ISSUE_EXAMPLE, encoding="utf-8")
    assert list(load_manifest(path).services) == ["auth-service", "user-service"]


def test_dogfood_manifest_declares_the_original_fleet() -> None:
    manifest = load_manifest(Path("services.toml"))
    ports = {name: service.port for name, service in manifest.services.items()}
    assert ports == {
        "auth-service": 3000,
        "user-service": 3001,
        "chat-service": 3002,
        "event-service": 3003,
        "shared-service": 3004,
        "splitz-service": 3005,
    }


def test_locator_finds_tables_keys_dotted_and_quoted() -> None:
    text = '[project]\nname = "x"\n\n[services."auth"]\nport = 1\nhealth.path = "/h"\n'
    locator = KeyLocator(text)
    assert locator.line(("project", "name")) == 2
    assert locator.line(("services", "auth")) == 4
    assert locator.line(("services", "auth", "port")) == 5
    assert locator.line(("services", "auth", "health", "path")) == 6
    assert locator.line(("services", "auth", "env", 0)) == 4
    assert locator.line(("nowhere",)) == 1


def test_format_loc() -> None:
    assert format_loc(("services", "a", "env", 2)) == "services.a.env[2]"
    assert format_loc(()) == "(top level)"


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": ["b"], "b": []}, []),
        ({"a": ["b"], "b": ["c"], "c": ["a"]}, ["a", "b", "c", "a"]),
        ({"x": [], "a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"a": ["missing"]}, []),
    ],
)
def test_find_cycle(graph: dict[str, list[str]], cycle: list[str]) -> None:
    assert find_cycle(graph) == cycle


def test_ghcr_push_logs_in_with_the_job_token_unless_told_otherwise() -> None:
    text = '[project]\nname = "p"\n[build]\nwhere = "runner"\nregistry = "ghcr.io/acme"\n'
    text += '[services.a]\nrepository = "o/a"\nport = 80\n'
    build = resolve_manifest(parse_manifest(text))["build"]
    assert (build["registry_user_env"], build["registry_password_env"]) == ("GITHUB_ACTOR", "GITHUB_TOKEN")
    other = resolve_manifest(parse_manifest(text.replace("ghcr.io/acme", "registry.example.com/acme")))[
        "build"
    ]
    assert (other["registry_user_env"], other["registry_password_env"]) == (None, None)


def _with_ref(ref: str) -> str:
    quoted = json.dumps(ref)  # a TOML basic string
    return f'[project]\nname = "p"\nbranches = [{quoted}]\n[services.a]\nrepository = "o/a"\nport = 80\nref = {quoted}\n'


@pytest.mark.parametrize("ref", SAFE_REFS)
def test_a_safe_ref_is_a_valid_branch_and_service_ref(ref: str) -> None:
    manifest = parse_manifest(_with_ref(ref))
    assert (manifest.project.branches, manifest.services["a"].ref) == ([ref], ref)


@pytest.mark.parametrize("ref", UNSAFE_REFS)
def test_an_unsafe_ref_is_refused_as_branch_and_service_ref(ref: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(_with_ref(ref))
    assert caught.value.problems == [
        f"services.toml:3: project.branches[0]: is not a safe git branch name ({GIT_REF_HINT})",
        f"services.toml:7: services.a.ref: is not a safe git branch name ({GIT_REF_HINT})",
    ]


RELEASE_BASE = '[project]\nname = "p"\n[services.web]\nrepository = "o/a"\nport = 80\n'


def test_release_command_resolves_with_its_timeout() -> None:
    text = RELEASE_BASE + 'release = ["npm", "run", "migrate"]\nrelease_timeout_s = 60\n'
    web = resolve_manifest(parse_manifest(text))["services"]["web"]
    assert (web["release"], web["release_timeout_s"]) == (["npm", "run", "migrate"], 60.0)
    plain = resolve_manifest(parse_manifest(RELEASE_BASE))["services"]["web"]
    assert (plain["release"], plain["release_timeout_s"]) == (None, 300.0)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("release = []", "services.web.release: must not be empty"),
        ('release = "npm run migrate"', "services.web.release: must be an array"),
        ('release = ["npm", ""]', "services.web.release: must not contain an empty string"),
        ('release = ["npm", 3]', "services.web.release[1]: must be a string"),
        ("release_timeout_s = 0", "services.web.release_timeout_s: must be greater than 0"),
        ("release_timeout_s = 100000", "services.web.release_timeout_s: must be at most 86400"),
        ('relase = ["npm"]', "services.web.relase: unknown key (did you mean 'release'?)"),
    ],
)
def test_a_malformed_release_is_one_line(line: str, problem: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(RELEASE_BASE + line + "\n")
    assert caught.value.problems == [f"services.toml:6: {problem}"]


@pytest.mark.parametrize(
    ("state_dir", "problem"),
    [
        ("/tmp/wfgen", "must not be in /tmp, which every user can write to (another user could create it "
                       "first); use a folder in the target user's home such as '.wfgen'"),
        ("/tmp", "must not be in /tmp, which every user can write to (another user could create it first); use "
                 "a folder in the target user's home such as '.wfgen'"),
        ("/var/tmp/wfgen/", "must not be in /var/tmp, which every user can write to (another user could create "
                            "it first); use a folder in the target user's home such as '.wfgen'"),
        ("/dev/shm/./w", "must not be in /dev/shm, which every user can write to (another user could create it "
                         "first); use a folder in the target user's home such as '.wfgen'"),
        ("../../tmp/x", "must not contain '..': a folder in the target user's home such as '.wfgen', or an "
                        "absolute path"),
        ("/srv/../tmp/x", "must not contain '..': a folder in the target user's home such as '.wfgen', or an "
                          "absolute path"),
        ("~deploy/.wfgen", "'~name' is another user's home: use a path relative to the target user's home"),
        ("a\\\\b", "must be a folder path on one line (no line break, NUL or backslash)"),
    ],
)  # fmt: skip
def test_a_state_dir_others_could_write_to_is_one_line(state_dir: str, problem: str) -> None:
    text = f'[project]\nname = "p"\n[target]\nstate_dir = "{state_dir}"\n' + RELEASE_BASE.split("\n", 2)[2]
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert caught.value.problems == [f"services.toml:4: target.state_dir: {problem}"]


@pytest.mark.parametrize("state_dir", [".wfgen", "~/.wfgen", "deploy/state", "/srv/wfgen", "/home/u/.wfgen"])
def test_a_state_dir_in_the_home_or_an_absolute_one_elsewhere_is_accepted(state_dir: str) -> None:
    text = f'[project]\nname = "p"\n[target]\nstate_dir = "{state_dir}"\n' + RELEASE_BASE.split("\n", 2)[2]
    assert parse_manifest(text).target.state_dir == state_dir

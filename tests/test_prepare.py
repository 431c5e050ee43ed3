"""prepare.py in a real `python -I -S` subprocess: selection, branch, $GITHUB_OUTPUT, the printed selection."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.github_output import output_values, parse_github_output
from tests.support.manifests import FLEET, fleet_services, manifest_toml, write_resolved_manifest
from tests.support.stepscripts import run_step

VALID = ", ".join(FLEET)


def make_manifest(directory: Path, branches: list[str] | None = None) -> Path:
    services = fleet_services()
    services["user-service"] = {"path": "services/user", "port": 3001, "ref": "develop"}
    project = {"max_parallel": 4, **({"branches": branches} if branches else {})}
    return write_resolved_manifest(directory, manifest_toml(services, project=project))


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return make_manifest(tmp_path)


def prepare(tmp_path: Path, manifest: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    defaults = {
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    return run_step("prepare", "--manifest", str(manifest), *args, env={**defaults, **env})


def outputs(tmp_path: Path) -> dict[str, str]:
    return output_values((tmp_path / "output").read_text(encoding="utf-8"))


def test_all_selects_every_service_in_manifest_order(tmp_path: Path, manifest: Path) -> None:
    result = prepare(tmp_path, manifest, "--services", "all")
    assert result.returncode == 0, result.stderr
    assert outputs(tmp_path) == {
        "services": json.dumps(list(FLEET), separators=(",", ":")),
        "count": "6",
        "branch": "main",
        "force_rebuild": "false",
        "github-environment": "",
        "environment": "",
        "path_services": '["user-service"]',
    }
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["service", "source", "ref", "host", "port"]
    assert lines[1].split() == ["auth-service", "letzgo/auth-service", "main", "3000"]
    assert lines[2].split() == ["user-service", "services/user", "develop", "3001"]
    assert lines[-1] == "6 of 6 services selected, branch main, force rebuild: no, at most 4 in parallel"


def test_plan_columns_are_aligned(tmp_path: Path, manifest: Path) -> None:
    result = prepare(tmp_path, manifest, "--services", "all", "--branch", "staging")
    table = result.stdout.splitlines()[:7]
    ref_column = table[0].index("ref")
    port_column = table[0].index("host port")
    for row, name in zip(table[1:], FLEET, strict=True):
        assert row.startswith(name)
        assert row[ref_column - 2 : ref_column] == "  " and row[ref_column] != " "
        assert row[port_column:].strip().isdigit()
    assert table[1][ref_column:].startswith("staging")


def test_list_with_spaces_and_duplicates(tmp_path: Path, manifest: Path) -> None:
    selection = " user-service , auth-service,auth-service ,, chat-service "
    result = prepare(tmp_path, manifest, "--services", selection, "--branch", "develop", "--force-rebuild")
    assert result.returncode == 0, result.stderr
    values = outputs(tmp_path)
    assert json.loads(values["services"]) == ["auth-service", "user-service", "chat-service"]
    assert (values["count"], values["branch"], values["force_rebuild"]) == ("3", "develop", "true")
    assert values["path_services"] == '["user-service"]'
    assert "note: listed more than once, deployed once: auth-service" in result.stdout
    assert "note: services are listed in manifest order, not the order given" in result.stdout
    assert result.stdout.splitlines()[-1] == (
        "3 of 6 services selected, branch develop, force rebuild: yes, at most 4 in parallel"
    )


def test_inputs_from_environment(tmp_path: Path, manifest: Path) -> None:
    env = {"WFGEN_SERVICES": "splitz-service", "WFGEN_BRANCH": "staging", "WFGEN_FORCE_REBUILD": "true"}
    result = prepare(tmp_path, manifest, **env)
    assert result.returncode == 0, result.stderr
    assert outputs(tmp_path)["services"] == '["splitz-service"]'
    assert outputs(tmp_path)["force_rebuild"] == "true"
    assert outputs(tmp_path)["branch"] == "staging"
    assert outputs(tmp_path)["path_services"] == "[]"  # no job needs to check out this repository


@pytest.mark.parametrize("selection", ["all,auth-service", "auth-service, ALL", " all "])
def test_all_anywhere_means_all(tmp_path: Path, manifest: Path, selection: str) -> None:
    result = prepare(tmp_path, manifest, "--services", selection)
    assert result.returncode == 0, result.stderr
    assert json.loads(outputs(tmp_path)["services"]) == list(FLEET)


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (
            "auth-servce",
            f"prepare: unknown service 'auth-servce' (did you mean 'auth-service'?); valid: {VALID}",
        ),
        ("chat-service,payments", f"prepare: unknown service 'payments'; valid: {VALID}"),
        (
            "usr-service, all, billing",
            "prepare: unknown services 'usr-service' (did you mean 'user-service'?), 'billing'; "
            f"valid: {VALID}",
        ),
        ("", "prepare: no services selected; pass 'all' or a comma-separated list of names"),
        ("  ", "prepare: no services selected; pass 'all' or a comma-separated list of names"),
        (" , ,", "prepare: no services selected; pass 'all' or a comma-separated list of names"),
    ],
)
def test_bad_selection(tmp_path: Path, manifest: Path, selection: str, message: str) -> None:
    result = prepare(tmp_path, manifest, "--services", selection)
    assert (result.returncode, result.stderr, result.stdout) == (2, message + "\n", "")
    assert not (tmp_path / "output").exists()


def test_no_selection_at_all(tmp_path: Path, manifest: Path) -> None:
    result = prepare(tmp_path, manifest, WFGEN_SERVICES="")
    assert result.returncode == 2
    assert result.stderr.startswith("prepare: no services selected")


@pytest.mark.parametrize(
    ("branch", "message"),
    [
        ("mian", "prepare: unknown branch 'mian' (did you mean 'main'?); valid: main, develop, staging"),
        ("release", "prepare: unknown branch 'release'; valid: main, develop, staging"),
        (
            "../etc",
            "prepare: branch '../etc' is not a safe git branch name (letters, digits, '.', '_', '-', '/'; no '..')",
        ),
        (
            "-rf",
            "prepare: branch '-rf' is not a safe git branch name (letters, digits, '.', '_', '-', '/'; no '..')",
        ),
        (
            "main;id",
            "prepare: branch 'main;id' is not a safe git branch name (letters, digits, '.', '_', '-', '/'; no '..')",
        ),
        (
            "main\nx",
            "prepare: branch 'main\\nx' is not a safe git branch name (letters, digits, '.', '_', '-', '/'; no '..')",
        ),
        (
            "a.lock",
            "prepare: branch 'a.lock' is not a safe git branch name (letters, digits, '.', '_', '-', '/'; no '..')",
        ),
        (
            "f/.x",
            "prepare: branch 'f/.x' is not a safe git branch name (letters, digits, '.', '_', '-', '/'; no '..')",
        ),
    ],
)
def test_bad_branch(tmp_path: Path, manifest: Path, branch: str, message: str) -> None:
    result = prepare(tmp_path, manifest, "--services", "all", f"--branch={branch}")
    assert (result.returncode, result.stderr) == (2, message + "\n")
    assert not (tmp_path / "output").exists()


def test_bad_force_rebuild(tmp_path: Path, manifest: Path) -> None:
    result = prepare(tmp_path, manifest, "--services", "all", WFGEN_FORCE_REBUILD="maybe")
    assert (result.returncode, result.stderr) == (
        2,
        "prepare: --force-rebuild: expected true or false, got 'maybe'\n",
    )


def test_missing_manifest(tmp_path: Path) -> None:
    result = prepare(tmp_path, tmp_path / "nope.json", "--services", "all")
    assert result.returncode == 2
    assert (
        result.stderr
        == f"prepare: {tmp_path / 'nope.json'}: resolved manifest not found; run 'wfgen render'\n"
    )


def test_json_output(tmp_path: Path, manifest: Path) -> None:
    result = prepare(
        tmp_path, manifest, "--services", "event-service,auth-service", "--json", WFGEN_BRANCH="develop"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "services": ["auth-service", "event-service"],
        "branch": "develop",
        "force_rebuild": False,
    }
    assert len(result.stdout.splitlines()) == 1


def test_json_output_uses_the_same_rules(tmp_path: Path, manifest: Path) -> None:
    result = prepare(tmp_path, manifest, "--services", "auth-servce", "--json")
    assert (result.returncode, result.stdout) == (2, "")
    assert "unknown service 'auth-servce' (did you mean 'auth-service'?)" in result.stderr


def test_github_output_heredocs(tmp_path: Path) -> None:
    """Random delimiters, distinct per value and run; a value holding the delimiter prefix stays intact."""
    tricky = "ghadelimiter_release"
    manifest = make_manifest(tmp_path, branches=["main", tricky])
    (tmp_path / "output").write_text("earlier=kept\n", encoding="utf-8")
    for _ in range(2):
        result = prepare(tmp_path, manifest, "--services", "auth-service", "--branch", tricky)
        assert result.returncode == 0, result.stderr
    parsed = parse_github_output((tmp_path / "output").read_text(encoding="utf-8"))
    assert [output.name for output in parsed] == ["earlier"] + [
        "services",
        "count",
        "branch",
        "force_rebuild",
        "github-environment",
        "environment",
        "path_services",
    ] * 2
    assert parsed[0].value == "kept"
    blocks = parsed[1:]
    assert [output.value for output in blocks if output.name == "branch"] == [tricky, tricky]
    assert [output.value for output in blocks if output.name == "services"] == ['["auth-service"]'] * 2
    delimiters = [output.delimiter for output in blocks]
    assert all(d and d.startswith("ghadelimiter_") and len(d) > len("ghadelimiter_") + 16 for d in delimiters)
    assert len(set(delimiters)) == len(delimiters)


def test_no_step_summary_the_plan_job_writes_the_first(tmp_path: Path, manifest: Path) -> None:
    result = prepare(tmp_path, manifest, "--services", "user-service,auth-service,user-service")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "summary.md").exists()
    assert "note: listed more than once, deployed once: user-service" in result.stdout


def test_without_github_files_still_prints_plan(tmp_path: Path, manifest: Path) -> None:
    result = run_step("prepare", "--manifest", str(manifest), "--services", "chat-service")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].split() == ["chat-service", "letzgo/chat-service", "main", "3002"]
    assert result.stdout.splitlines()[-1].startswith("1 of 6 services selected, branch main")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["manifest.json"]


@pytest.mark.parametrize(
    "selection",
    [
        "auth-service,x\n::error title=Deploy failed::all secrets leaked",
        "x\r::warning::y",
        "auth-service,\n::add-mask::x,",
    ],
)
def test_unknown_names_cannot_inject_workflow_commands(
    tmp_path: Path, manifest: Path, selection: str
) -> None:
    """A dispatched `services` input is printed quoted: no raw newline starts a `::command::` line."""
    result = prepare(tmp_path, manifest, f"--services={selection}")
    assert (result.returncode, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1 and "\r" not in result.stderr
    assert result.stderr.startswith("prepare: unknown service '")
    assert not any(line.lstrip().startswith("::") for line in result.stderr.splitlines())

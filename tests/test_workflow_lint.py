"""Every rendered workflow passes zizmor (pedantic), actionlint and GitHub's workflow schema: 0 findings."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from generator.manifest.validate import load_manifest
from generator.render.files import WORKFLOWS, render
from tests.support.files import build_file_tree
from tests.support.requires import require_python_tool

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = {
    "services": ROOT / "services.toml",
    "minimal": ROOT / "tests" / "manifests" / "minimal.toml",
    "runner": ROOT / "tests" / "manifests" / "runner.toml",
    "tokens": ROOT / "tests" / "manifests" / "tokens.toml",
    "monorepo": ROOT / "tests" / "manifests" / "monorepo.toml",
    "environments": ROOT / "tests" / "manifests" / "environments.toml",
}
LINT_TIMEOUT_S = 120
BROKEN_PATH = ".github/workflows/broken.yml"

# A workflow with one obvious problem per linter, to prove each linter really reads what we hand it.
BROKEN = """\
name: broken
on:
  workflow_dispatch:
    inputs:
      who: {type: string}
jobs:
  job:
    runs-on: ubuntu-latest
    needs: missing-job
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ inputs.who }}"
    bogus-key: 1
"""


def zizmor(*args: str) -> list[str]:
    exe = require_python_tool("zizmor")
    # --no-config / --no-ignores: no config file or ignore comment anywhere can hide a finding.
    return [exe, "--offline", "--no-config", "--no-ignores", "--no-progress", "--format", "json", *args]


def actionlint(*args: str) -> list[str]:
    return [require_python_tool("actionlint"), "-no-color", *args]


def check_jsonschema(*args: str) -> list[str]:
    exe = require_python_tool("check-jsonschema")
    return [exe, "--builtin-schema", "vendor.github-workflows", *args]


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=LINT_TIMEOUT_S, check=False)


@pytest.fixture(scope="module", params=sorted(MANIFESTS))
def repo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding one manifest's rendered workflows under .github/workflows/."""
    path = MANIFESTS[request.param]
    root = tmp_path_factory.mktemp(f"lint-{request.param}")
    files = render(load_manifest(path), source=path.name)
    build_file_tree(root, {rel: text for rel, text in files.items() if rel.startswith(".github/workflows/")})
    return root


def workflows(root: Path) -> list[str]:
    found = sorted(str(p.relative_to(root)) for p in (root / ".github" / "workflows").glob("*.yml"))
    assert len(found) == len(WORKFLOWS)
    return found


def test_zizmor_pedantic_has_no_findings(repo: Path) -> None:
    result = run(zizmor("--persona", "pedantic", *workflows(repo)), repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


def test_zizmor_auditor_has_no_findings_when_an_environment_is_set(tmp_path: Path) -> None:
    files = render(load_manifest(MANIFESTS["services"]), source="services.toml")
    build_file_tree(
        tmp_path, {rel: text for rel, text in files.items() if rel.startswith(".github/workflows/")}
    )
    result = run(zizmor("--persona", "auditor", *workflows(tmp_path)), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


def test_actionlint_has_no_findings(repo: Path) -> None:
    result = run(actionlint(*workflows(repo)), repo)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_github_workflow_schema_accepts_them(repo: Path) -> None:
    result = run(check_jsonschema(*workflows(repo)), repo)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (lambda: zizmor("--persona", "pedantic", BROKEN_PATH), "template-injection"),
        (lambda: actionlint(BROKEN_PATH), "missing-job"),
        (lambda: check_jsonschema(BROKEN_PATH), "bogus-key"),
    ],
    ids=["zizmor", "actionlint", "check-jsonschema"],
)
def test_each_linter_catches_a_broken_workflow(
    argv: Callable[[], list[str]], expected: str, tmp_path: Path
) -> None:
    build_file_tree(tmp_path, {BROKEN_PATH: BROKEN})
    result = run(argv(), tmp_path)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr

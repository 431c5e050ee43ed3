""".pre-commit-hooks.yaml, run by pre-commit itself (`try-repo` on this checkout) in a real git repository: the
hooks pass on a current manifest, and fail on a stale render and on an invalid manifest, with wfgen's messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from generator.manifest.validate import load_manifest
from generator.render.files import render
from generator.render.output import write_files
from tests.support.files import build_file_tree
from tests.support.fixture_service import git, init_repo
from tests.support.requires import require_python_tool

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = (ROOT / "tests" / "manifests" / "minimal.toml").read_text(encoding="utf-8")
HOOK_IDS = ["wfgen-validate", "wfgen-check"]


def pre_commit(repo: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`pre-commit try-repo <this checkout> --all-files` in `repo`, with its own cache; the hooks' venv installs
    this checkout (uncommitted changes included) with pip, as a user's `pre-commit install` would."""
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    env.pop("VIRTUAL_ENV", None)
    argv = [require_python_tool("pre-commit"), "try-repo", str(ROOT), *args, "--all-files", "--verbose"]
    return subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=900, check=False)


def test_the_hooks_file_declares_both_hooks_over_the_manifest_and_generated_files() -> None:
    hooks = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert [hook["id"] for hook in hooks] == HOOK_IDS
    for hook in hooks:
        assert (hook["language"], hook["pass_filenames"]) == ("python", False)
    assert [hook["entry"] for hook in hooks] == ["wfgen validate", "wfgen check"]


@pytest.mark.skipif(sys.platform == "win32", reason="pre-commit's python hooks need a POSIX venv here")
@pytest.mark.slow  # pre-commit installs the package into a new venv
def test_pre_commit_runs_the_hooks_against_a_real_repository(tmp_path: Path) -> None:
    repo, home = tmp_path / "fleet", tmp_path / "cache"
    repo.mkdir()
    init_repo(repo)
    build_file_tree(repo, {"services.toml": MANIFEST})
    write_files(repo, render(load_manifest(repo / "services.toml"), source="services.toml"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "fleet")

    current = pre_commit(repo, home)
    assert current.returncode == 0, current.stdout + current.stderr
    assert current.stdout.count("Passed") == 2, current.stdout
    assert "services.toml: OK (1 services)" in current.stdout
    assert "up to date:" in current.stdout

    stale = MANIFEST.replace('name = "mini"', 'name = "mini"\nmax_parallel = 2')
    assert stale != MANIFEST
    (repo / "services.toml").write_text(stale, encoding="utf-8")
    result = pre_commit(repo, home, "wfgen-check")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "generated file(s) out of date; run 'wfgen render'" in result.stdout
    assert "+      max-parallel: 2" in result.stdout  # the diff of the stale workflow

    (repo / "services.toml").write_text(MANIFEST.replace("port = ", "port = 7", 1), encoding="utf-8")
    invalid = pre_commit(repo, home, "wfgen-validate")
    assert invalid.returncode == 1, invalid.stdout + invalid.stderr
    assert "services.toml:" in invalid.stdout and "must be between 1 and 65535" in invalid.stdout

"""generator/steps/engine/source.py with real git: what a clone keeps, where the code comes from."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.steps.core import target as targets
from generator.steps.engine import source
from tests.support.fixture_service import git, init_repo

TOKEN = "ghp_tokenThatMustNotStayInTheClone42"
URL = f"https://x-access-token:{TOKEN}@git.example.invalid/letzgo/web.git"


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    repo = tmp_path / "origin"
    repo.mkdir()
    init_repo(repo)
    (repo / "Dockerfile").write_text("FROM scratch\nCOPY . /src\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


@pytest.fixture
def token_url(origin: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An https URL with a token in it that git fetches from the local `origin` repo (url.<base>.insteadOf)."""
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", f"url.{origin.as_uri()}.insteadOf")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", URL)
    return URL


def test_clone_keeps_no_credentials(tmp_path: Path, origin: Path, token_url: str) -> None:
    dest = tmp_path / "clone"
    with targets.LocalTarget() as local:
        commit = source.clone(local, token_url, "main", str(dest), timeout=60)
    assert commit == git(origin, "rev-parse", "HEAD")
    assert (dest / "Dockerfile").exists()
    assert git(dest, "remote") == ""
    leaks = [
        str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()
    ]
    assert leaks == []


def test_clone_errors_mask_the_token(tmp_path: Path, token_url: str) -> None:
    with targets.LocalTarget() as local, pytest.raises(source.SourceError) as caught:
        source.clone(local, token_url, "no-such-branch", str(tmp_path / "clone"), timeout=60)
    assert "https://***@git.example.invalid/letzgo/web.git (no-such-branch)" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_no_git_in_the_checkout_is_a_source_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to run there: git is "not found"
    with pytest.raises(source.SourceError, match="cannot run git in"):
        source.local_commit(str(tmp_path), "main", ("web",))

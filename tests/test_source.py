"""generator/steps/engine/source.py with real git: what a clone keeps, where the code comes from."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.steps.core import transport
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


def test_a_fetched_commit_keeps_no_credentials(tmp_path: Path, origin: Path, token_url: str) -> None:
    dest = tmp_path / "clone"
    commit = git(origin, "rev-parse", "HEAD")
    with transport.LocalTarget() as local:
        source.fetch_commit(local, token_url, commit, str(dest), timeout=60)
    assert git(dest, "rev-parse", "HEAD") == commit
    assert (dest / "Dockerfile").exists()
    assert git(dest, "remote") == ""
    leaks = [
        str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()
    ]
    assert leaks == []


def test_a_commit_the_repository_no_longer_has_is_commit_gone_with_the_token_masked(
    tmp_path: Path, origin: Path, token_url: str
) -> None:
    first = git(origin, "rev-parse", "HEAD")
    (origin / "second").write_text("2\n")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "second")
    gone = git(origin, "rev-parse", "HEAD")
    git(origin, "reset", "-q", "--hard", first)
    git(origin, "reflog", "expire", "--expire=now", "--all")
    git(origin, "gc", "-q", "--prune=now")
    with transport.LocalTarget() as local, pytest.raises(source.CommitGone) as caught:
        source.fetch_commit(local, token_url, gone, str(tmp_path / "clone"), timeout=60)
    assert str(caught.value).startswith(
        f"cannot fetch {gone[:7]} from https://***@git.example.invalid/letzgo/web.git: "
    )
    assert TOKEN not in str(caught.value)


def test_no_git_in_the_checkout_is_a_source_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to run there: git is "not found"
    with pytest.raises(source.SourceError, match="cannot run git in"):
        source.local_commit(str(tmp_path), "main", ("web",))

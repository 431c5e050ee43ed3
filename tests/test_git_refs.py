"""One branch/tag rule for the manifest, prepare and the deploy step, held to git's own and to a shell's."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from generator.steps.core import steplib
from generator.steps.core.names import GIT_REF_HINT, is_safe_git_ref
from generator.steps.engine import source
from tests.support.git_refs import SAFE_REFS, UNSAFE_REFS


@pytest.mark.parametrize("ref", SAFE_REFS)
def test_a_safe_ref_is_taken_by_every_side(ref: str) -> None:
    assert is_safe_git_ref(ref)
    assert source.check_ref(ref) == ref


@pytest.mark.parametrize("ref", UNSAFE_REFS)
def test_an_unsafe_ref_is_refused_by_every_side(ref: str) -> None:
    assert not is_safe_git_ref(ref)
    with pytest.raises(steplib.UsageError) as caught:
        source.check_ref(ref)
    assert str(caught.value) == f"branch: {ref!r} is not a safe git branch name ({GIT_REF_HINT})"


@pytest.mark.parametrize("ref", SAFE_REFS)
def test_a_safe_ref_is_a_valid_git_branch_and_tag_and_needs_no_shell_quoting(ref: str) -> None:
    assert shlex.quote(ref) == ref
    for argv in (["--branch", ref], [f"refs/tags/{ref}"]):
        checked = subprocess.run(
            ["git", "check-ref-format", *argv], capture_output=True, text=True, timeout=30, check=False
        )
        assert checked.returncode == 0, (argv, checked.stderr)

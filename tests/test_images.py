"""The docker command sequence of images.prune for each branch, against a recording target.

tests/test_deploy_service.py proves pruning on a real engine (keep_images = 2); here each branch's exact
commands and result are pinned down without a server.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from generator.steps.core.transport import CommandResult
from generator.steps.engine import images
from tests.support.recording import RecordingTarget, result

LIST = (
    "docker", "images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}",
    "--filter", "label=wfgen.service=web", "--filter", "label=wfgen.project=p",
)  # fmt: skip
INSPECT = (
    "docker", "image", "inspect", "--format", "{{.Id}} {{.Created}} {{json .RepoDigests}} {{json .Config.Labels}}"
)  # fmt: skip
# Newest first: c, b, a. Docker trims trailing zeros of the fraction, and "b" has none at all.
CREATED = {
    "sha256:a": "2026-01-01T10:00:00.5Z",
    "sha256:b": "2026-01-02T10:00:00Z",
    "sha256:c": "2026-01-02T10:00:00.25Z",
    "sha256:d": "2025-12-31T09:00:00.123456789Z",
}


@dataclass
class Case:
    listing: list[str]
    keep: int
    protect: set[str]
    rmi: list[str]
    removed: list[str]
    failing: str | None = None


CASES = {
    "keeps the newest N": Case(
        ["sha256:a p/web:a", "sha256:b p/web:b", "sha256:c p/web:c"], 2, set(), ["p/web:a"], ["p/web:a"]
    ),
    "nothing beyond N": Case(["sha256:a p/web:a", "sha256:b p/web:b"], 2, set(), [], []),
    "protected ids stay": Case(
        ["sha256:a p/web:a", "sha256:b p/web:b", "sha256:c p/web:c"], 1, {"sha256:a"}, ["p/web:b"], ["p/web:b"]
    ),
    "every tag of an old id": Case(
        ["sha256:c p/web:c", "sha256:a p/web:a", "sha256:a p/web:old"], 1, set(),
        ["p/web:old", "p/web:a"], ["p/web:old", "p/web:a"],
    ),
    "untagged images by id": Case(
        ["sha256:c p/web:c", "sha256:d <none>:<none>"], 1, set(), ["sha256:d"], ["sha256:d"]
    ),
    "a failed rmi is not reported and the rest go on": Case(
        ["sha256:c p/web:c", "sha256:b p/web:b", "sha256:a p/web:a"], 1, set(),
        ["p/web:b", "p/web:a"], ["p/web:a"], failing="p/web:b",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_prune_runs_exactly_these_commands(case: Case) -> None:
    ids = list(dict.fromkeys(line.split()[0] for line in case.listing))
    answers = {
        LIST: result("\n".join(case.listing) + "\n"),
        INSPECT: result("".join(f"{ident} {CREATED[ident]}\n" for ident in ids)),
    }
    if case.failing:
        answers["docker", "rmi", case.failing] = result(returncode=1, stderr="conflict: image is in use")
    target = RecordingTarget(answers)
    rows = images.project_images(target, "p", "web")
    assert images.prune(target, rows, case.keep, case.protect) == case.removed
    expected = [list(LIST), [*INSPECT, *ids], *(["docker", "rmi", ref] for ref in case.rmi)]
    assert target.calls == expected


@pytest.mark.parametrize("listing", [result(""), result(returncode=1, stderr="Cannot connect to the daemon")])
def test_prune_without_a_listing_removes_nothing(listing: CommandResult) -> None:
    target = RecordingTarget({LIST: listing})
    assert images.prune(target, images.project_images(target, "p", "web"), 0, set()) == []
    assert target.calls == [list(LIST)]


def row(ident: str, ref: str, commit: str | None) -> images.KeptImage:
    return images.KeptImage("2026-01-01T10:00:00Z", ident, ref, {"wfgen.commit": commit} if commit else {})


def test_kept_refs_are_the_tagged_images_of_each_commit_newest_first() -> None:
    rows = [
        row("sha256:c", "p/web:c", "c"),
        row("sha256:b", "sha256:b", "b"),  # untagged: a rebuild replaced it, prune removes it
        row("sha256:a", "p/web:a", "a"),
        row("sha256:a", "r/p/web:a", "a"),
        row("sha256:x", "p/web:x", None),  # no commit label: no version to go to
    ]
    assert images.kept_refs(rows) == {"c": ["p/web:c"], "a": ["p/web:a", "r/p/web:a"]}


def test_kept_images_carry_their_registry_digests() -> None:
    """What a swarm service runs is `repo@sha256:...`: the kept image that has it is the running one."""
    digest = "r/p/web@sha256:" + "e" * 64
    answers = {
        LIST: result("sha256:c r/p/web:c\nsha256:a p/web:a\n"),
        INSPECT: result(
            f'sha256:c {CREATED["sha256:c"]} ["{digest}"] {{"wfgen.commit":"c"}}\n'
            f'sha256:a {CREATED["sha256:a"]} [] {{"wfgen.commit":"a"}}\n'
        ),  # fmt: skip
    }
    rows = images.project_images(RecordingTarget(answers), "p", "web")
    assert [(r.ref, r.digests, r.commit) for r in rows] == [
        ("r/p/web:c", (digest,), "c"),
        ("p/web:a", (), "a"),
    ]


def test_kept_images_are_ordered_by_when_wfgen_built_them() -> None:
    """BuildKit gives a rebuild whose steps all came from its cache the Created time of the first build: the
    built-at label, new on every build, says which is newer."""
    same = "2026-01-01T10:00:00.5Z"
    answers = {
        LIST: result("sha256:old p/web:old\nsha256:new p/web:new\nsha256:bare p/web:bare\n"),
        INSPECT: result(
            f'sha256:old {same} [] {{"wfgen.commit":"a","wfgen.built-at":"2026-01-02T09:00:00.1Z"}}\n'
            f'sha256:new {same} [] {{"wfgen.commit":"a","wfgen.built-at":"2026-01-02T09:30:00Z"}}\n'
            'sha256:bare 2026-01-02T09:10:00Z [] {"wfgen.commit":"b"}\n'
        ),  # fmt: skip
    }
    rows = images.project_images(RecordingTarget(answers), "p", "web")
    assert [row.ref for row in rows] == ["p/web:new", "p/web:bare", "p/web:old"]

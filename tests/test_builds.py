"""The docker commands of a build for each Docker: BuildKit in one build, or the classic builder and one LABEL
step, against a recording target. tests/test_image_build.py builds on the real engine, both ways."""

from __future__ import annotations

import pytest

from generator.steps.engine import builds
from tests.support.recording import RecordingTarget, result

VERSION = ("docker", "version")
BUILDX = ("docker", "buildx", "version")
NO_BUILDX = result(returncode=1, stderr="docker: unknown command: docker buildx")


@pytest.mark.parametrize(
    ("versions", "buildx", "expected"),
    [
        pytest.param("20.10.24+dfsg1 20.10.24+dfsg1 linux", NO_BUILDX, True, id="debian-20.10"),
        pytest.param("18.09.1 19.03.5 linux", NO_BUILDX, True, id="first-with-buildkit"),
        pytest.param("18.06.3-ce 20.10.7 linux", NO_BUILDX, False, id="cli-before-buildkit"),
        pytest.param("20.10.7 18.06.3-ce linux", NO_BUILDX, False, id="engine-before-buildkit"),
        pytest.param("28.2.2 28.2.2 linux", result("github.com/docker/buildx v0.24.0"), True, id="28-buildx"),
        pytest.param("28.2.2 28.2.2 linux", NO_BUILDX, False, id="28-without-buildx"),
        pytest.param("20.10.24 20.10.24 windows", NO_BUILDX, False, id="windows-engine"),
        pytest.param("", NO_BUILDX, False, id="no-answer"),
    ],
)  # fmt: skip
def test_buildkit_where_the_cli_and_the_engine_have_it(
    versions: str, buildx: object, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    target = RecordingTarget({VERSION: result(versions, returncode=0 if versions else 1), BUILDX: buildx})
    assert builds.has_buildkit(target) is expected


def test_docker_buildkit_0_keeps_the_classic_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_BUILDKIT", "0")
    target = RecordingTarget({VERSION: result("20.10.24 20.10.24 linux")})
    assert builds.has_buildkit(target) is False
    assert target.calls == []


@pytest.mark.parametrize(("stage", "expected"), [(None, []), ("production", ["--target", "production"])])
def test_on_buildkit_one_build_carries_the_labels(
    stage: str | None, expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    target = RecordingTarget({VERSION: result("20.10.24 20.10.24 linux")})
    builds.build_dir(target, "p/web:abc", {"wfgen.branch": "a b=$c"}, "/src", "Dockerfile", 60, stage)
    assert target.calls[1:] == [
        ["docker", "build", "--pull=false", "--progress=plain", "-t", "p/web:abc", "--label=wfgen.branch=a b=$c",
         *expected, "-f", "/src/Dockerfile", "/src"],
    ]  # fmt: skip
    assert target.envs[1:] == [{"DOCKER_BUILDKIT": "1"}]


@pytest.mark.parametrize(("stage", "expected"), [(None, []), ("production", ["--target", "production"])])
def test_on_the_classic_builder_the_labels_are_one_step_after_the_build(
    stage: str | None, expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_BUILDKIT", "0")
    target = RecordingTarget()
    builds.build_dir(target, "p/web:abc", {}, "/src", "Dockerfile", 60, stage)
    assert target.calls == [
        ["docker", "build", "--pull=false", "-t", "p/web:abc-unlabelled", *expected, "-f", "/src/Dockerfile", "/src"],
        ["docker", "build", "--pull=false", "-t", "p/web:abc", "-"],  # the labels: FROM the unlabelled build
        ["docker", "rmi", "p/web:abc-unlabelled"],
    ]  # fmt: skip
    assert target.envs == [None, None, None]

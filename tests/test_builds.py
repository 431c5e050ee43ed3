"""The docker commands of a build for each Docker: BuildKit in one build, or the classic builder and one LABEL
step, against a recording target. tests/test_image_build.py builds on the real engine, both ways."""

from __future__ import annotations

import pytest

from generator.steps.engine import builds
from generator.steps.engine.builds import Builder
from generator.steps.engine.images import ImageError
from tests.support.recording import RecordingTarget, result

VERSION = ("docker", "version")
BUILDX = ("docker", "buildx", "version")
NO_BUILDX = result(returncode=1, stderr="docker: unknown command: docker buildx")
DEBIAN = result("20.10.24+dfsg1 20.10.24+dfsg1 linux")


@pytest.fixture(autouse=True)
def no_buildkit_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)


@pytest.mark.parametrize(
    ("versions", "buildx", "expected"),
    [
        pytest.param("20.10.24+dfsg1 20.10.24+dfsg1 linux", NO_BUILDX, Builder.BUILDKIT, id="debian-20.10"),
        pytest.param("18.09.1 19.03.5 linux", NO_BUILDX, Builder.BUILDKIT, id="first-with-buildkit"),
        pytest.param("18.06.3-ce 20.10.7 linux", NO_BUILDX, Builder.CLASSIC, id="cli-before-buildkit"),
        pytest.param("20.10.7 18.06.3-ce linux", NO_BUILDX, Builder.CLASSIC, id="engine-before-buildkit"),
        pytest.param("28.2.2 28.2.2 linux", result("github.com/docker/buildx v0.24.0"), Builder.BUILDX,
                     id="28-buildx"),
        pytest.param("28.2.2 28.2.2 linux", NO_BUILDX, Builder.CLASSIC, id="28-without-buildx"),
        pytest.param("20.10.24 20.10.24 windows", NO_BUILDX, Builder.CLASSIC, id="windows-engine"),
        pytest.param("", NO_BUILDX, Builder.CLASSIC, id="no-answer"),
    ],
)  # fmt: skip
def test_buildkit_where_the_cli_and_the_engine_have_it(
    versions: str, buildx: object, expected: Builder
) -> None:
    target = RecordingTarget({VERSION: result(versions, returncode=0 if versions else 1), BUILDX: buildx})
    assert builds.builder(target) is expected
    asked = len(target.calls)
    assert builds.builder(target) is expected and len(target.calls) == asked  # asked once per host


@pytest.mark.parametrize("value", ["0", "false", "FALSE", "f"])
def test_docker_buildkit_off_keeps_the_classic_builder(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_BUILDKIT", value)
    target = RecordingTarget({VERSION: DEBIAN})
    assert builds.builder(target) is Builder.CLASSIC
    assert target.calls == []


@pytest.mark.parametrize(("stage", "expected"), [(None, []), ("production", ["--target", "production"])])
def test_on_buildkit_one_build_carries_the_labels(stage: str | None, expected: list[str]) -> None:
    target = RecordingTarget({VERSION: DEBIAN})
    builds.build_dir(target, "p/web:abc", {"wfgen.branch": "a b=$c"}, "/src", "Dockerfile", 60, stage)
    assert target.calls[1:] == [
        ["docker", "build", "--pull=false", "--progress=plain", "-t", "p/web:abc", "--label=wfgen.branch=a b=$c",
         *expected, "-f", "/src/Dockerfile", "/src"],
    ]  # fmt: skip
    assert target.envs[1:] == [{"DOCKER_BUILDKIT": "1"}]


def test_through_buildx_the_image_is_loaded_into_the_engine() -> None:
    """Whichever builder instance is selected (a docker-container one keeps its builds to itself)."""
    target = RecordingTarget({VERSION: result("28.2.2 28.2.2 linux"), BUILDX: result("buildx v0.24.0")})
    builds.build_dir(target, "p/web:abc", {}, "/src", "Dockerfile", 60)
    assert target.calls[-1][:5] == ["docker", "build", "--pull=false", "--progress=plain", "--load"]


@pytest.mark.parametrize(("stage", "expected"), [(None, []), ("production", ["--target", "production"])])
def test_on_the_classic_builder_the_labels_are_one_step_after_the_build(
    stage: str | None, expected: list[str]
) -> None:
    target = RecordingTarget({VERSION: result("28.2.2 28.2.2 linux"), BUILDX: NO_BUILDX})
    builds.build_dir(target, "p/web:abc", {}, "/src", "Dockerfile", 60, stage)
    assert target.calls[2:] == [
        ["docker", "build", "--pull=false", "-t", "p/web:abc-unlabelled", *expected, "-f", "/src/Dockerfile", "/src"],
        ["docker", "build", "--pull=false", "-t", "p/web:abc", "-"],  # the labels: FROM the unlabelled build
        ["docker", "rmi", "p/web:abc-unlabelled"],
    ]  # fmt: skip
    # DOCKER_BUILDKIT=1 in the host's environment would make a CLI of 23 or later without buildx fail
    assert target.envs[2:4] == [{"DOCKER_BUILDKIT": "0"}, {"DOCKER_BUILDKIT": "0"}]


def test_a_label_with_a_line_break_is_refused_on_both_builders() -> None:
    for versions in ("20.10.24 20.10.24 linux", "17.03.0 17.03.0 linux"):
        target = RecordingTarget({VERSION: result(versions)})
        with pytest.raises(ImageError, match="line break"):
            builds.build_dir(target, "p/web:abc", {"wfgen.branch": "a\nb"}, "/src", "Dockerfile", 60)
        assert not any(call[:2] == ["docker", "build"] for call in target.calls)  # refused before building

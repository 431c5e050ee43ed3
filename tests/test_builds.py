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


ID = "503838cc7113f8ff71987459f7bbaaef040349047ae41ce236c155cb2ea2e8af"
CLASSIC = {VERSION: result("28.2.2 28.2.2 linux"), BUILDX: NO_BUILDX}
LOST = f'unable to find image "sha256:{ID}"'  # what a fixture test's build printed when it happened


@pytest.mark.parametrize(
    ("output", "lost"),
    [
        (LOST, True),
        (f"Error response from daemon: No such image: sha256:{ID}", True),
        (f"failed to export image: failed to set parent sha256:{ID}: unknown parent image ID sha256:{ID}", True),
        (f"failed to get digest sha256:{ID}: open /var/lib/docker/image/overlay2/imagedb/content/sha256/{ID}: "
         "no such file or directory", True),
        ("COPY failed: file not found in build context or excluded by .dockerignore: stat app: file does not exist",
         False),
        ("Unable to find image 'nosuchimage:latest' locally", False),
        ("pull access denied for nosuchimage, repository does not exist or may require 'docker login'", False),
    ],
)  # fmt: skip
def test_a_lost_cache_is_told_from_other_build_failures(output: str, lost: bool) -> None:
    target = RecordingTarget({**CLASSIC, ("docker", "build"): result("Step 2/3 : COPY app /app", 1, output)})
    with pytest.raises(ImageError) as raised:
        builds.build_dir(target, "p/web:abc", {}, "/src", "Dockerfile", 60)
    assert (builds.lost_cache(raised.value) == output) is lost


def build_web(target: RecordingTarget) -> None:
    builds.build_dir(target, "p/web:abc", {}, "/src", "Dockerfile", 60)


def test_a_build_that_lost_a_cached_layer_runs_once_more() -> None:
    failed = result("Step 2/3 : COPY busybox /bin/busybox", 1, LOST)
    target = RecordingTarget({**CLASSIC, ("docker", "build"): [failed, result()]})
    said: list[str] = []
    builds.once_more_on_lost_cache(lambda: build_web(target), said.append)
    unlabelled = [
        "docker",
        "build",
        "--pull=false",
        "-t",
        "p/web:abc-unlabelled",
        "-f",
        "/src/Dockerfile",
        "/src",
    ]
    assert target.calls[2:] == [
        unlabelled,
        unlabelled,
        ["docker", "build", "--pull=false", "-t", "p/web:abc", "-"],
        ["docker", "rmi", "p/web:abc-unlabelled"],
    ]
    assert said == [f"a cached layer was removed during the build ({LOST}); building once more"]


@pytest.mark.parametrize(
    "outputs",
    [
        pytest.param(["COPY failed: file not found in build context"], id="another-failure"),
        pytest.param([LOST, LOST], id="lost-twice"),
    ],
)
def test_other_failures_and_a_second_lost_cache_fail_the_build(outputs: list[str]) -> None:
    answers = [result("", 1, output) for output in outputs]
    target = RecordingTarget({**CLASSIC, ("docker", "build"): answers})
    with pytest.raises(ImageError):
        builds.once_more_on_lost_cache(lambda: build_web(target), lambda _: None)
    assert sum(call[:2] == ["docker", "build"] for call in target.calls) == len(outputs)

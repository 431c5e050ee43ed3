"""The docker commands of a build for each Docker: BuildKit in one build, or the classic builder and one LABEL
step, against a recording target. tests/test_image_build.py builds on the real engine, both ways."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

from generator.steps.engine import builds, provide
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


@pytest.mark.parametrize(
    ("output", "lost"),
    [
        ('unable to find image "sha256:503838cc7113f8ff71987459f7bbaaef040349047ae41ce236c155cb2ea2e8af"', True),
        ("Error response from daemon: No such image: sha256:36bdf39886f98309d4cc294c752120301799303f", True),
        ("unknown parent image ID sha256:61b8b368de2f057090d44932e8e89dc5cef5584de1f56f6a6bf3049359e5148a", True),
        ("COPY failed: file not found in build context or excluded by .dockerignore: stat app: file does not exist",
         False),
        ("pull access denied for nosuchimage, repository does not exist or may require 'docker login'", False),
    ],
)  # fmt: skip
def test_a_lost_cache_is_told_from_other_build_failures(output: str, lost: bool) -> None:
    target = RecordingTarget({VERSION: result("28.2.2 28.2.2 linux"), BUILDX: NO_BUILDX,
                              ("docker", "build"): result("Step 2/3 : COPY busybox /bin/busybox", 1, output)})  # fmt: skip
    with pytest.raises(ImageError) as raised:
        builds.build_dir(target, "p/web:abc", {}, "/src", "Dockerfile", 60)
    assert builds.lost_cache(raised.value) is lost


def test_a_build_that_lost_a_cached_layer_runs_once_more(capsys: pytest.CaptureFixture[str]) -> None:
    lost = ImageError("docker build failed (exit 1)", ['unable to find image "sha256:5038"'])
    other = ImageError("docker build failed (exit 1)", ["COPY failed: file not found in build context"])
    deploy = SimpleNamespace(name="web")

    def builder_of(*outcomes: ImageError | None) -> tuple[list[int], Callable[[], None]]:
        calls: list[int] = []

        def build() -> None:
            calls.append(1)
            if outcomes[len(calls) - 1] is not None:
                raise outcomes[len(calls) - 1]  # type: ignore[misc]

        return calls, build

    calls, build = builder_of(lost, None)
    provide._once_more_on_lost_cache(deploy, build)  # type: ignore[arg-type]
    assert len(calls) == 2
    assert "a cached layer was removed during the build; building once more" in capsys.readouterr().out

    for outcomes, builds_run in (((other, None), 1), ((lost, lost), 2)):  # another failure; lost twice
        calls, build = builder_of(*outcomes)
        with pytest.raises(ImageError):
            provide._once_more_on_lost_cache(deploy, build)  # type: ignore[arg-type]
        assert len(calls) == builds_run

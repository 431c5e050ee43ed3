"""builds.build_dir / build_stream on a real engine, on BuildKit and on the classic builder: the labels land on
the image (on the classic builder in one metadata step), whatever the Dockerfile looks like (a `# syntax`
line, several stages, a Dockerfile in a sub-folder)."""

from __future__ import annotations

import json
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.steps.core.transport import LocalTarget
from generator.steps.engine import builds, images
from tests.support.docker import docker
from tests.support.fixture_service import BUSYBOX
from tests.support.requires import skip_or_fail

LABELS = {
    "wfgen.project": "p",
    "wfgen.service": "web",
    "wfgen.commit": "0123456789abcdef0123456789abcdef01234567",
    "wfgen.branch": 'feature/$HOME-"quoted"\\x',  # what Dockerfile syntax would expand or unquote
    "wfgen.built-at": "2026-12-06T10:00:00.123456Z",
}
DOCKERFILES = {
    "plain": ("Dockerfile", 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "true"]\n'),
    "syntax line": (
        "Dockerfile",
        "# syntax=docker/dockerfile:1\nFROM scratch\nCOPY busybox /bin/busybox\nENV HOME=/root\n",
    ),
    "multi-stage": (
        "Dockerfile",
        "FROM scratch AS base\nCOPY busybox /bin/busybox\nLABEL stage=base\n"
        "FROM scratch\nCOPY --from=base /bin/busybox /bin/sh\nLABEL stage=final\n",
    ),
    "in a sub-folder": ("docker/app.Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\n"),
}


BUILDERS = ("buildkit", "classic")


@pytest.fixture(params=BUILDERS)
def builder(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def local(docker_host: str, builder: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalTarget]:
    """The engine, building on `builder`: DOCKER_BUILDKIT=0 keeps the classic builder."""
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    if builder == "classic":
        monkeypatch.setenv("DOCKER_BUILDKIT", "0")
    else:
        monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    target = LocalTarget()
    if builder == "buildkit" and builds.builder(target) is builds.Builder.CLASSIC:
        skip_or_fail(
            "this docker CLI builds without BuildKit (23 or later without buildx, or older than 18.09)"
        )
    yield target
    target.close()


def context(tmp_path: Path, dockerfile: str, text: str) -> Path:
    folder = tmp_path / "ctx"
    (folder / dockerfile).parent.mkdir(parents=True, exist_ok=True)
    (folder / dockerfile).write_text(text, encoding="utf-8")
    shutil.copy2(BUSYBOX, folder / "busybox")
    return folder


def config_of(docker_host: str, image: str) -> dict[str, object]:
    done = docker(docker_host, "image", "inspect", "--format", "{{json .Config}}", image, timeout=60)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def label_steps(docker_host: str, image: str) -> list[str]:
    done = docker(docker_host, "history", "--no-trunc", "--format", "{{.CreatedBy}}", image, timeout=60)
    return [line for line in done.stdout.splitlines() if "LABEL" in line and "wfgen." in line]


# BuildKit fetches the frontend a `# syntax` line names from Docker Hub, which these tests cannot reach: that
# case is the failure test below.
CASES = [
    (builder, case)
    for builder in BUILDERS
    for case in DOCKERFILES
    if (builder, case) != ("buildkit", "syntax line")
]


@pytest.mark.parametrize(("builder", "case"), CASES, ids=[f"{builder}-{case}" for builder, case in CASES])
def test_a_directory_build_carries_every_label(
    case: str, builder: str, tmp_path: Path, local: LocalTarget, docker_host: str, docker_project: str
) -> None:
    dockerfile, text = DOCKERFILES[case]
    folder = context(tmp_path, dockerfile, text)
    image = f"{docker_project}/web:{case.replace(' ', '-')}"
    builds.build_dir(local, image, LABELS, str(folder), dockerfile, timeout=300)
    labels = config_of(docker_host, image)["Labels"]
    assert isinstance(labels, dict)
    assert {key: labels.get(key) for key in LABELS} == LABELS
    assert len(label_steps(docker_host, image)) == (1 if builder == "classic" else 0)  # BuildKit: no step
    if case == "multi-stage":
        assert labels["stage"] == "final"
    if case == "plain":
        assert config_of(docker_host, image)["Cmd"] == ["/bin/busybox", "true"]


def test_a_streamed_build_carries_every_label(
    tmp_path: Path, local: LocalTarget, docker_host: str, docker_project: str
) -> None:
    folder = context(tmp_path, "sub/Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\n")
    archive = tmp_path / "context.tar"
    with tarfile.open(archive, mode="w", format=tarfile.GNU_FORMAT) as tar:  # as git archive writes
        tar.add(folder, arcname=".")
    image = f"{docker_project}/web:streamed"
    with archive.open("rb") as stream:
        builds.build_stream(local, image, LABELS, stream, "sub/Dockerfile", timeout=300)
    labels = config_of(docker_host, image)["Labels"]
    assert isinstance(labels, dict)
    assert {key: labels.get(key) for key in LABELS} == LABELS


def test_a_failed_build_leaves_no_image(
    tmp_path: Path, local: LocalTarget, docker_host: str, docker_project: str
) -> None:
    folder = context(tmp_path, "Dockerfile", "FROM scratch\nCOPY not-there /x\n")
    image = f"{docker_project}/web:broken"
    with pytest.raises(images.ImageError, match="docker build failed"):
        builds.build_dir(local, image, LABELS, str(folder), "Dockerfile", timeout=300)
    assert docker(docker_host, "image", "inspect", image, timeout=60).returncode != 0


def test_a_label_dockerfile_quotes_what_dockerfile_syntax_would_read() -> None:
    text = builds.label_dockerfile("p/web:abc", {"a.b": 'x $Y "z" \\ w'})
    assert text == 'FROM p/web:abc\nLABEL "a.b"="x \\$Y \\"z\\" \\\\ w"\n'
    with pytest.raises(images.ImageError, match="line break"):
        builds.label_dockerfile("p/web:abc", {"a": "x\ny"})


@pytest.mark.parametrize("builder", ["buildkit"])
def test_a_syntax_line_whose_frontend_is_out_of_reach_says_what_to_do(
    builder: str, tmp_path: Path, local: LocalTarget, docker_host: str, docker_project: str
) -> None:
    dockerfile, text = DOCKERFILES["syntax line"]
    folder = context(tmp_path, dockerfile, text)
    image = f"{docker_project}/web:syntax"
    with pytest.raises(
        images.ImageError, match="set DOCKER_BUILDKIT=0 to build on the classic builder"
    ) as caught:
        builds.build_dir(local, image, LABELS, str(folder), dockerfile, timeout=300)
    assert any("docker/dockerfile" in line for line in caught.value.tail)
    assert docker(docker_host, "image", "inspect", image, timeout=60).returncode != 0

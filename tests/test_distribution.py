"""generator/distribution.py: the distribution name and version the check workflow pins."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from generator.cli import cli
from generator.distribution import FOREIGN_NAME, installed, requirement_name
from generator.manifest.validate import load_manifest
from generator.render.files import CHECK_WORKFLOW, MANIFEST_JSON, render
from tests.support.files import build_file_tree

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = ROOT / "tests" / "manifests" / "minimal.toml"


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_pyproject_installed_metadata_and_rendered_pin_agree() -> None:
    project = pyproject()
    assert (installed().name, installed().version) == (project["name"], project["version"])
    files = render(load_manifest(MINIMAL))
    assert f'WFGEN_INSTALL: "{project["name"]}=={project["version"]}"\n' in files[CHECK_WORKFLOW]
    assert f'"wfgen_install": "{project["name"]}=={project["version"]}"' in files[MANIFEST_JSON]


def test_version_names_the_distribution() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    project = pyproject()
    assert result.stdout == f"wfgen, version {project['version']} (distribution {project['name']})\n"


def test_the_distribution_is_not_the_unrelated_pypi_project() -> None:
    assert requirement_name(pyproject()["name"]) != FOREIGN_NAME


@pytest.mark.parametrize(
    ("requirement", "name"),
    [
        ("wfgen", "wfgen"),
        ("WfGen==0.1.0", "wfgen"),
        ("wfgen >= 0.1", "wfgen"),
        ("wfgen[extra] @ git+https://example.com/wfgen.git", "wfgen"),
        ("wfgen; python_version >= '3.11'", "wfgen"),
        ("wfgen_deploy==1.0", "wfgen-deploy"),
        ("wf.gen", "wf-gen"),
        (".", None),
        ("./tools/wfgen", None),
        ("git+https://example.com/team/wfgen.git@v1", None),
        ("https://example.com/wfgen-0.1.0-py3-none-any.whl", None),
    ],
)
def test_requirement_name(requirement: str, name: str | None) -> None:
    assert requirement_name(requirement) == name


def test_check_fails_when_the_pin_is_not_the_installed_version(tmp_path: Path) -> None:
    """Files rendered by another wfgen version are stale: `check` shows the pin moving."""
    build_file_tree(tmp_path, {"services.toml": MINIMAL.read_text(encoding="utf-8")})
    manifest = str(tmp_path / "services.toml")
    runner = CliRunner()
    assert runner.invoke(cli, ["render", "--manifest", manifest]).exit_code == 0
    workflow = tmp_path / CHECK_WORKFLOW
    current = installed().requirement
    older = f"{installed().name}==0.0.1"
    workflow.write_text(workflow.read_text(encoding="utf-8").replace(current, older), encoding="utf-8")
    result = runner.invoke(cli, ["check", "--manifest", manifest])
    assert result.exit_code == 1, result.output
    assert f'-          WFGEN_INSTALL: "{older}"\n+          WFGEN_INSTALL: "{current}"\n' in result.stdout


def run_installed(path_entries: list[Path], *flags: str) -> subprocess.CompletedProcess[str]:
    """`installed()` in a fresh interpreter whose sys.path starts with `path_entries`."""
    code = (
        "import sys\n"
        f"sys.path[:0] = {[str(p) for p in path_entries]!r}\n"
        "from generator.distribution import installed\n"
        "print(installed().requirement)\n"
    )
    return subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_stale_second_distribution_of_the_command_is_an_error(tmp_path: Path) -> None:
    """A venv that still holds the old 'wfgen' install must not pin whichever is found first."""
    build_file_tree(
        tmp_path,
        {
            "wfgen-0.1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: wfgen\nVersion: 0.1.0\n",
            "wfgen-0.1.0.dist-info/entry_points.txt": "[console_scripts]\nwfgen = generator.cli:main\n",
        },
    )
    result = run_installed([tmp_path, ROOT])
    assert result.returncode == 1
    assert (
        f"several installed distributions provide the 'wfgen' command (wfgen 0.1.0, {installed().name} "
        f"{installed().version}): pip uninstall the ones you no longer use"
    ) in result.stderr


def test_an_uninstalled_source_tree_cannot_pin() -> None:
    result = run_installed([ROOT], "-S")  # no site-packages: no distribution metadata at all
    assert result.returncode == 1
    assert "no installed distribution provides the 'wfgen' command" in result.stderr

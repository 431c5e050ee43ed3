"""README, --help, .ci/run and the step scripts stay in step."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import cli
from generator.steps import JOBS

README = Path("README.md").read_text(encoding="utf-8")
STEPS = Path("generator/steps")
GRAPH_BEGIN = "<!-- wfgen graph: begin"
GRAPH_END = "<!-- wfgen graph: end -->"


def _setup_commands() -> list[str]:
    section = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.S)


def test_readme_has_exactly_two_setup_commands() -> None:
    install_render, install_test = _setup_commands()
    assert "\n" not in install_render and "\n" not in install_test
    assert install_render.endswith("wfgen render")
    assert install_test.endswith("pytest")


def test_ci_runs_the_readme_test_command() -> None:
    ci = Path(".ci/run").read_text(encoding="utf-8")
    assert _setup_commands()[1] in ci


def test_every_command_is_documented() -> None:
    documented = set(re.findall(r"^\| `wfgen (\w+)", README, flags=re.M))
    assert documented == set(cli.commands)


def test_every_job_entry_script_is_documented() -> None:
    documented = set(re.findall(r"^\| `\.github/wfgen/(\w+)\.py`", README, flags=re.M))
    assert documented == set(JOBS)


def test_jobs_are_the_step_modules_with_a_main() -> None:
    with_main = {p.stem for p in STEPS.glob("*.py") if "\ndef main(" in p.read_text(encoding="utf-8")}
    assert with_main == set(JOBS)


def test_readme_installs_the_distribution_pyproject_names() -> None:
    name = tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
    section = README.split("## Install", 1)[1].split("\n## ", 1)[0]
    assert f"pip install {name} && " in section
    assert f"`{name}==<version>`" in section


def test_readme_graph_is_the_output_of_wfgen_graph(request: pytest.FixtureRequest) -> None:
    """The workflow or services.toml changed: `pytest tests/test_readme.py --force-regen` rewrites the block."""
    path = Path("README.md")
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(GRAPH_BEGIN, 1)
    begin_rest, rest = rest.split("\n", 1)
    block, tail = rest.split(GRAPH_END, 1)
    result = CliRunner().invoke(cli, ["graph", "--manifest", "services.toml"])
    assert result.exit_code == 0, result.output
    if block == result.stdout:
        return
    if request.config.getoption("force_regen", default=False):
        path.write_text(
            head + GRAPH_BEGIN + begin_rest + "\n" + result.stdout + GRAPH_END + tail, encoding="utf-8"
        )
        pytest.fail("README.md: rewrote the `wfgen graph` block; review the diff and commit it")
    pytest.fail(
        "README.md: the `wfgen graph` block differs from the output of `wfgen graph`; refresh it with\n"
        "    pytest tests/test_readme.py --force-regen\n"
        "or replace it with this output:\n" + result.stdout
    )

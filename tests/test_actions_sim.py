"""The Actions simulator reads expressions and push filters as GitHub does, and refuses what it does not model."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from generator.manifest.validate import load_manifest
from generator.render.files import DEPLOY_WORKFLOW, render
from tests.support.actions_expr import SimulatorError, condition, evaluate, interpolate, parse
from tests.support.actions_sim import filter_matches, push_triggers

MANIFESTS = Path(__file__).parent / "manifests"
CONTEXT: dict[tuple[str, ...], Any] = {
    ("inputs", "services"): None,  # a push has no inputs
    ("github", "event_name"): "push",
    ("github", "ref_name"): "main",
    ("needs", "prepare", "outputs", "services"): '["api","web"]',
    ("needs", "check-infrastructure", "outputs", "count-2"): "0",
    ("matrix", "service"): "api",
    ("secrets", "API_TOKEN"): "s3cret",
}


def resolve(path: tuple[str, ...]) -> Any:
    return CONTEXT[path]


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("inputs.services || 'all'", "all"),
        ("inputs.services || false", False),  # `||` returns an operand, not a boolean
        ("join(fromJSON(needs.prepare.outputs.services), ',')", "api,web"),
        ("fromJson(needs.prepare.outputs.services)", ["api", "web"]),  # function names ignore case
        ("needs.check-infrastructure.outputs.count-2 != '0'", False),  # names may hold '-'
        ("github.event_name == 'PUSH' && format('on {0}', github.ref_name) || 'dispatch'", "on main"),
        ("github.event_name == 'x' && format('on {0}', github.ref_name) || 'dispatch'", "dispatch"),
        ("contains(fromJSON('[\"api\"]'), matrix.service) && secrets.API_TOKEN || ''", "s3cret"),
        ("contains(fromJSON('[\"web\"]'), matrix.service) && secrets.API_TOKEN || ''", ""),
        ("!cancelled() && 'It''s'", "It's"),
        ("format('{{{0}}}', 0)", "{0}"),
    ],
)
def test_expressions_evaluate_as_on_github(expr: str, value: Any) -> None:
    assert evaluate(parse(expr), resolve) == value


@pytest.mark.parametrize(
    "expr", ["toJSON(matrix)", "matrix['service']", "1 == '1'", "success()", "a == b == c", "fromJSON('')"]
)
def test_what_is_not_modelled_raises(expr: str) -> None:
    with pytest.raises(SimulatorError):
        evaluate(parse(expr), lambda path: "x")


def test_conditions_imply_success_unless_they_ask_for_a_status() -> None:
    needs_more = "needs.check-infrastructure.outputs.count-2 == '0'"
    assert condition(needs_more, resolve, previous_ok=True) is True
    assert condition(needs_more, resolve, previous_ok=False) is False
    assert condition("${{ !cancelled() && " + needs_more + " }}", resolve, previous_ok=False) is True
    with pytest.raises(SimulatorError):  # GitHub reads it as a non-empty string: always true
        condition("${{ " + needs_more + " }} && true", resolve, previous_ok=True)
    assert interpolate("${{ fromJSON(needs.prepare.outputs.services) }}", resolve) == ["api", "web"]
    assert interpolate("Deploy ${{ matrix.service }} (wave 1)", resolve) == "Deploy api (wave 1)"


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("services/api/**", "services/api/www/index.html", True),
        ("services/api", "services/api/www/index.html", False),
        ("services/*", "services/api/Dockerfile", False),  # `*` stops at '/'
        ("services/*", "services/api", True),
        ("*.toml", "services.toml", True),
        ("**/docs/**", "docs/a.md", True),
        ("lib\\+x/**", "lib+x/a", True),  # escaped as wfgen renders a special character
        ("release/*", "release/1.2", True),
    ],
)
def test_filter_patterns(pattern: str, path: str, matches: bool) -> None:
    assert filter_matches(pattern, path) is matches


@pytest.mark.parametrize("pattern", ["!services/**", "a?b", "a+", "[ab]"])
def test_filter_syntax_not_modelled_raises(pattern: str) -> None:
    with pytest.raises(SimulatorError):
        filter_matches(pattern, "anything")


def test_a_push_runs_when_a_changed_file_is_one_a_service_builds_from(tmp_path: Path) -> None:
    shutil.copy(MANIFESTS / "monorepo.toml", tmp_path / "services.toml")
    workflow = render(load_manifest(tmp_path / "services.toml"))[DEPLOY_WORKFLOW]
    trigger = YAML(typ="safe").load(workflow)["on"]["push"]
    assert push_triggers(trigger, "main", ["README.md", "lib/shared.txt"])
    assert push_triggers(trigger, "develop", ["services/web/www/index.html"])
    assert push_triggers(trigger, "main", ["services.toml"])
    assert push_triggers(trigger, "main", ["config/api.env"])
    assert not push_triggers(trigger, "main", ["README.md", "services/webby/x", "config/api.env.bak"])
    assert not push_triggers(trigger, "feature", ["services/web/www/index.html"])

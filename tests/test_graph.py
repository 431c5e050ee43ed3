"""generator/render/graph.py and `wfgen graph`: the depends_on graph, the job graph read from the workflow, the CLI."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from generator.cli import cli
from generator.manifest.model import Manifest
from generator.manifest.validate import parse_manifest
from generator.render.files import DEPLOY_WORKFLOW, render
from generator.render.graph import (
    JOBS_HEADING,
    SERVICES_HEADING,
    job_flowchart,
    service_flowchart,
    service_waves,
)
from tests.support.files import build_file_tree
from tests.support.manifests import manifest_toml

EDGE = re.compile(r"^    (\S+) --> (\S+)$", flags=re.M)
NODE = re.compile(r'^    (\S+)\["(.*)"\]$', flags=re.M)


def manifest(services: Mapping[str, Mapping[str, Any]]) -> Manifest:
    return parse_manifest(manifest_toml(services))


def fleet(depends_on: Mapping[str, list[str]]) -> Manifest:
    """Services on ports 3000, 3001, ... in the order given, each with its `depends_on`."""
    return manifest(
        {
            name: {"repository": f"letzgo/{name}", "port": 3000 + index, "depends_on": deps}
            for index, (name, deps) in enumerate(depends_on.items())
        }
    )


def workflow_edges(model: Manifest) -> list[tuple[str, str]]:
    """(needed job, job) for every `needs` of the rendered deploy workflow, parsed here on their own."""
    data = YAML(typ="safe", pure=True).load(io.StringIO(render(model)[DEPLOY_WORKFLOW]))
    edges = []
    for job_id, job in data["jobs"].items():
        needs = job.get("needs", [])
        edges += [(need, job_id) for need in ([needs] if isinstance(needs, str) else needs)]
    return edges


# --- the services' graph ---


def test_chain() -> None:
    assert service_flowchart(fleet({"db-api": [], "auth": ["db-api"], "web": ["auth"]})) == (
        "flowchart LR\n"
        '    db-api["db-api :3000"]\n'
        '    auth["auth :3001"]\n'
        '    web["web :3002"]\n'
        "    db-api --> auth\n"
        "    auth --> web\n"
    )


def test_diamond_has_one_edge_per_dependency_in_manifest_order() -> None:
    chart = service_flowchart(
        fleet({"base": [], "left": ["base"], "right": ["base"], "top": ["left", "right"]})
    )
    assert EDGE.findall(chart) == [("base", "left"), ("base", "right"), ("left", "top"), ("right", "top")]


def test_services_without_dependencies_are_drawn_without_edges() -> None:
    assert service_flowchart(fleet({"auth": [], "chat": []})) == (
        'flowchart LR\n    auth["auth :3000"]\n    chat["chat :3001"]\n'
    )


def test_names_mermaid_would_misread_get_neutral_ids_and_keep_their_label() -> None:
    chart = service_flowchart(
        fleet({"end": [], "graph-db": ["end"], "a--b": ["graph-db"], "3d": [], "ok": ["3d"]})
    )
    assert NODE.findall(chart) == [
        ("n_1", "end :3000"),
        ("n_2", "graph-db :3001"),
        ("n_3", "a--b :3002"),
        ("n_4", "3d :3003"),
        ("ok", "ok :3004"),
    ]
    assert EDGE.findall(chart) == [("n_1", "n_2"), ("n_2", "n_3"), ("n_4", "ok")]


# --- the job graph, read from the workflow ---


def test_job_graph_without_dependencies_is_the_workflow_with_one_deploy_job() -> None:
    model = fleet({"auth": [], "chat": []})
    chart = job_flowchart(render(model)[DEPLOY_WORKFLOW], service_waves(model))
    assert EDGE.findall(chart) == workflow_edges(model)
    assert ("prepare", "check-infrastructure") in EDGE.findall(chart)
    assert ("deploy-service", "Deploy each service") in NODE.findall(chart)
    assert not any("wave" in job_id for job_id, _ in NODE.findall(chart))


def test_job_graph_with_dependencies_follows_the_workflow_and_names_each_waves_services() -> None:
    model = fleet({"auth": [], "user": ["auth"], "chat": ["auth"], "feed": ["user"]})
    chart = job_flowchart(render(model)[DEPLOY_WORKFLOW], service_waves(model))
    assert EDGE.findall(chart) == workflow_edges(model)
    waves = {job_id: label.split("<br/>")[1] for job_id, label in NODE.findall(chart) if "<br/>" in label}
    assert waves == {"deploy-wave-1": "auth", "deploy-wave-2": "user, chat", "deploy-wave-3": "feed"}
    assert ("deploy-wave-1", "deploy-wave-2") in EDGE.findall(chart)


def test_wave_jobs_list_their_services_and_other_jobs_do_not() -> None:
    workflow = """\
        jobs:
          plan: {name: Plan}
          deploy-wave-1: {name: "Deploy ${{ matrix.service }}", needs: plan}
          deploy-wave-2: {needs: [plan, deploy-wave-1]}
          deploy-wave-3: {needs: deploy-wave-2}
          deploy-wave-0: {name: Not a wave}
    """
    chart = job_flowchart(workflow.replace("        ", ""), [["auth", "event"], ["chat"]])
    assert chart == (
        "flowchart LR\n"
        '    plan["Plan"]\n'
        '    deploy-wave-1["Deploy each service<br/>auth, event"]\n'
        '    deploy-wave-2["deploy-wave-2<br/>chat"]\n'
        '    deploy-wave-3["deploy-wave-3"]\n'
        '    deploy-wave-0["Not a wave"]\n'
        "    plan --> deploy-wave-1\n"
        "    plan --> deploy-wave-2\n"
        "    deploy-wave-1 --> deploy-wave-2\n"
        "    deploy-wave-2 --> deploy-wave-3\n"
    )


def test_labels_are_quoted_with_entities() -> None:
    workflow = 'jobs:\n  build_it: {name: "`Say` \\"hi\\" <b> #quot; & direction  LR"}\n'
    assert job_flowchart(workflow) == (
        'flowchart LR\n    n_1["#96;Say#96; #quot;hi#quot; #lt;b#gt; #35;quot; #amp; #100;irection LR"]\n'
    )


# --- the command ---

BASE = manifest_toml(
    {
        "auth": {"repository": "shop/auth", "port": 3000},
        "web": {"repository": "shop/web", "port": 3001, "depends_on": ["auth"]},
    }
)


def invoke(tmp_path: Path, *args: str, text: str = BASE) -> Any:
    build_file_tree(tmp_path, {"services.toml": text})
    return CliRunner().invoke(cli, ["graph", "--manifest", str(tmp_path / "services.toml"), *args])


def test_graph_prints_both_graphs_as_markdown(tmp_path: Path) -> None:
    result = invoke(tmp_path)
    assert result.exit_code == 0, result.output
    model = parse_manifest(BASE)
    jobs = job_flowchart(render(model)[DEPLOY_WORKFLOW], service_waves(model))
    assert result.stdout == (
        f"{SERVICES_HEADING}\n\n```mermaid\n{service_flowchart(model)}```\n\n"
        f"{JOBS_HEADING}\n\n```mermaid\n{jobs}```\n"
    )
    assert "    auth --> web\n" in result.stdout
    assert invoke(tmp_path).stdout == result.stdout


@pytest.mark.parametrize(
    ("flags", "headings"),
    [
        (["--services"], [SERVICES_HEADING]),
        (["--jobs"], [JOBS_HEADING]),
        (["--services", "--jobs"], [SERVICES_HEADING, JOBS_HEADING]),
    ],
)
def test_graph_prints_what_is_asked_for(tmp_path: Path, flags: list[str], headings: list[str]) -> None:
    result = invoke(tmp_path, *flags)
    assert result.exit_code == 0, result.output
    assert re.findall(r"^###.*$", result.stdout, flags=re.M) == headings
    assert result.stdout.count("```mermaid\n") == len(headings)


def test_graph_of_a_bad_manifest_is_a_one_line_error(tmp_path: Path) -> None:
    result = invoke(tmp_path, text=BASE.replace('depends_on = ["auth"]', 'depends_on = ["auht"]'))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"{tmp_path / 'services.toml'}:19: services.web.depends_on[0]: unknown service 'auht' (did you mean 'auth'?)\n"
    )


def test_help_lists_graph() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert re.search(r"^  graph +Print the services' dependency graph", result.stdout, flags=re.M)

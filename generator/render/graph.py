"""`wfgen graph`: the services' depends_on graph and the deploy workflow's job graph, as mermaid.

Pure: manifest in, Markdown out. The job graph is read from the workflow `render` produces, never derived from
the manifest a second time, so it shows whatever jobs and `needs` the template has.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML

from generator.errors import WfgenError
from generator.manifest.model import Manifest
from generator.render.files import DEPLOY_WORKFLOW, render
from generator.steps.core.order import waves

SERVICES_HEADING = "### Service dependencies"
JOBS_HEADING = "### Deploy workflow jobs"

# A name is its own mermaid id when the flowchart lexer reads it as one plain id; any other name gets
# `n_<position>`, which no plain id can equal (they have no '_'). The label always shows the real name.
_PLAIN_ID = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*")
# Keywords the lexer takes at the start of an id (older releases need no word boundary) or as a whole word.
_KEYWORD_PREFIXES = ("class", "flowchart", "graph", "interpolate", "linkstyle", "style", "subgraph")
_KEYWORDS = frozenset({"call", "click", "default", "direction", "end", "href"})
# Inside a quoted label: '"' would end it, a leading '`' starts a markdown string, '#name;' is an entity.
_ENTITIES = {"#": "#35;", '"': "#quot;", "`": "#96;", "<": "#lt;", ">": "#gt;", "&": "#amp;"}
# The lexer reads any line with `direction LR` (TB, ...) in it as a direction statement, labels included.
_DIRECTION = re.compile(r"(d)(irection\s)", re.IGNORECASE)
_WAVE_JOB = re.compile(r"deploy-wave-([1-9][0-9]*)")


@dataclass(frozen=True)
class Job:
    """A job of a workflow: its id, the `name:` GitHub shows, and the jobs it needs."""

    id: str
    name: str
    needs: tuple[str, ...]


def graph_markdown(
    manifest: Manifest, *, services: bool = True, jobs: bool = True, source: str = "services.toml"
) -> str:
    """The chosen graphs, each under a short heading in its own ```mermaid block: pastes into Markdown."""
    sections = []
    if services:
        sections.append(_section(SERVICES_HEADING, service_flowchart(manifest)))
    if jobs:
        workflow = render(manifest, source=source)[DEPLOY_WORKFLOW]
        sections.append(_section(JOBS_HEADING, job_flowchart(workflow, service_waves(manifest))))
    return "\n".join(sections)


def service_flowchart(manifest: Manifest) -> str:
    """Every service with its port, and an edge from each dependency to its dependent, in manifest order."""
    nodes = [(name, [f"{name} :{service.port}"]) for name, service in manifest.services.items()]
    edges = [(dep, name) for name, service in manifest.services.items() for dep in service.depends_on]
    return flowchart(nodes, edges)


def service_waves(manifest: Manifest) -> list[list[str]]:
    return waves({name: service.depends_on for name, service in manifest.services.items()})


def job_flowchart(workflow: str, wave_members: Sequence[Sequence[str]] = ()) -> str:
    """The jobs of a workflow and their `needs`; a `deploy-wave-N` job also lists the services of wave N."""
    jobs = workflow_jobs(workflow)
    nodes = [(job.id, [job.name, *_wave_services(job.id, wave_members)]) for job in jobs]
    edges = [(need, job.id) for job in jobs for need in job.needs]
    return flowchart(nodes, edges)


def workflow_jobs(workflow: str) -> list[Job]:
    """The jobs of a workflow's YAML text, in file order; a job without `name:` is shown by its id."""
    data: Any = YAML(typ="safe", pure=True).load(io.StringIO(workflow))
    jobs = data.get("jobs") if isinstance(data, dict) else None
    if not isinstance(jobs, dict):
        raise WfgenError("the deploy workflow has no jobs to draw")
    found = []
    for job_id, job in jobs.items():
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        # GitHub shows a matrix job once per leg, `${{ matrix.service }}` filled in; the graph has one node.
        name = re.sub(r"\$\{\{\s*matrix\.service\s*\}\}", "each service", str(job.get("name", job_id)))
        found.append(Job(str(job_id), name, tuple(str(need) for need in needs)))
    return found


def _wave_services(job_id: str, wave_members: Sequence[Sequence[str]]) -> list[str]:
    found = _WAVE_JOB.fullmatch(job_id)
    if not found or int(found.group(1)) > len(wave_members):
        return []
    members = wave_members[int(found.group(1)) - 1]
    return [", ".join(members)] if members else []


def flowchart(nodes: Sequence[tuple[str, Sequence[str]]], edges: Iterable[tuple[str, str]]) -> str:
    """`flowchart LR`: a line per node (label lines joined by <br/>), then one per edge, in given order."""
    edges = list(edges)
    names = list(dict.fromkeys([name for name, _ in nodes] + [name for edge in edges for name in edge]))
    ids = mermaid_ids(names)
    labels = {name: lines for name, lines in nodes}
    lines = ["flowchart LR"]
    lines += [f"    {ids[name]}[{quote_label(labels.get(name, [name]))}]" for name in names]
    lines += [f"    {ids[start]} --> {ids[end]}" for start, end in edges]
    return "\n".join(lines) + "\n"


def mermaid_ids(names: Sequence[str]) -> dict[str, str]:
    """A safe, distinct mermaid id for each name: the name itself when plain, else `n_<position>`."""
    return {name: name if _is_plain(name) else f"n_{index}" for index, name in enumerate(names, start=1)}


def _is_plain(name: str) -> bool:
    lower = name.lower()
    return (
        _PLAIN_ID.fullmatch(name) is not None
        and not lower.startswith(_KEYWORD_PREFIXES)
        and lower.split("-")[0] not in _KEYWORDS
    )


def quote_label(lines: Sequence[str]) -> str:
    """A double-quoted mermaid label that shows `lines` as written, one per row."""
    escaped = []
    for line in lines:
        text = "".join(_ENTITIES.get(char, char) for char in " ".join(line.split()))
        escaped.append(_DIRECTION.sub(lambda found: f"#{ord(found[1])};{found[2]}", text))
    return '"' + "<br/>".join(escaped) + '"'


def _section(heading: str, chart: str) -> str:
    return f"{heading}\n\n```mermaid\n{chart}```\n"

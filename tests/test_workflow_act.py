"""The rendered deploy workflow run by nektos/act (tests/support/act.py), beside the simulator's run.

act, not our simulator, reads the YAML: expressions, `needs`, `if:`, the matrix and job outputs are GitHub's
semantics as act implements them. Jobs run on this machine against the real Docker engine; the pinned actions
are local stand-ins, so nothing leaves loopback.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from generator.manifest.validate import load_manifest
from generator.pins import action_pins
from generator.render.files import DEPLOY_WORKFLOW, render
from generator.render.output import write_files
from tests.support.act import Act, ActError, ActRun
from tests.support.docker import docker
from tests.support.files import build_file_tree
from tests.support.fixture_service import git, init_repo
from tests.support.fleet import Fleet, make_fleet, max_overlap
from tests.support.github_api import shared_github
from tests.support.reports import status_reports, summary_rows

# `broken` exits on start, so its deploy fails at once (a missing /health would wait out the deadline).
SERVICES = {"api": {}, "notes": {}, "broken": {"variant": "exits"}}
DISPATCH = {"services": "all", "branch": "main", "force_rebuild": False}
# What the deploy workflow asks of the pinned actions, and a bit more, checked by the jobs themselves.
# `uses: <action>` becomes its pin.
STANDINS_WORKFLOW = """
on: workflow_dispatch
jobs:
  checkout:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout
      - run: |
          test "$(git rev-parse HEAD)" = "$MAIN"
          test "$(git rev-list --count HEAD)" = 1
          test "$(git branch --show-current)" = main
          git config --get http.https://github.com/.extraheader | grep -q '^AUTHORIZATION: basic '
      - uses: actions/checkout
        with: {ref: develop, path: dev, fetch-depth: 0, persist-credentials: false}
      - run: |
          cd dev
          test "$(git rev-parse HEAD)" = "$DEVELOP"
          test "$(git rev-list --count HEAD)" = 3
          test "$(git tag)" = v1
          test "$(git branch --show-current)" = develop
          test -z "$(git config --get-regexp extraheader)"
      - uses: actions/checkout
        with: {ref: v1, path: tag, sparse-checkout: kept, persist-credentials: false}
      - run: |
          test -f tag/kept/file
          test ! -e tag/dropped
          test "$(git -C tag rev-parse HEAD)" = "$TAGGED"
      - uses: actions/checkout
        with: {ref: "FIRST", path: first, persist-credentials: false}
      - run: test "$(git -C first rev-parse HEAD)" = FIRST
      - run: |
          mkdir -p out/deep
          echo a > out/a.txt
          echo b > out/deep/b.json
          echo c > out/deep/c.json
      - uses: actions/upload-artifact
        with: {name: one, path: out/a.txt}
      - uses: actions/upload-artifact
        with:
          name: two
          path: |
            out/**/*.json
            !out/deep/c.json
      - name: Upload one again
        id: again
        continue-on-error: true
        uses: actions/upload-artifact
        with: {name: one, path: out/a.txt}
      - run: test "${{ steps.again.outcome }}" = failure
      - id: none
        continue-on-error: true
        uses: actions/upload-artifact
        with: {name: three, path: out/nothing-*, if-no-files-found: error}
      - run: test "${{ steps.none.outcome }}" = failure
  artifacts:
    needs: checkout
    runs-on: ubuntu-latest
    steps:
      - uses: actions/download-artifact
        with: {name: one, path: by-name}
      - uses: actions/download-artifact
        with: {pattern: t*, path: one-match}
      - uses: actions/download-artifact
        with: {path: every}
      - uses: actions/download-artifact
        with: {pattern: "*", merge-multiple: true, path: merged}
      - run: |
          test "$(find by-name one-match every merged -type f | sort | xargs)" = \\
            "by-name/a.txt every/one/a.txt every/two/deep/b.json merged/a.txt merged/deep/b.json one-match/deep/b.json"
"""


def commit_rendered(root: Path) -> Path:
    """`root` (services.toml beside the service repos) as the deploy repository: rendered, committed on main."""
    write_files(root, render(load_manifest(root / "services.toml"), source="services.toml"))
    (root / ".gitignore").write_text("repos/\ntarget-state/\n.wfgen/\n", encoding="utf-8")
    init_repo(root, author="wfgen act")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "wfgen render")
    return root


def statuses(run: ActRun) -> dict[str, dict[str, Any]]:
    """service -> the status JSON its leg uploaded."""
    return {status["service"]: status for status in status_reports(run.artifacts)}


def test_standins_do_what_the_pinned_actions_do(tmp_path: Path) -> None:
    """Checkout by branch, tag, commit, depth, sparse and credentials; artifacts by name, pattern and merge."""
    repo = build_file_tree(tmp_path / "repo", {"kept/file": "k\n", "dropped/file": "d\n"})
    init_repo(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "v1")
    git(repo, "checkout", "-q", "-b", "develop")
    for n in (2, 3):
        git(repo, "commit", "-q", "--allow-empty", "-m", f"develop {n}")
    git(repo, "checkout", "-q", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "main 2")
    text = STANDINS_WORKFLOW.replace("FIRST", first)
    for name, pin in action_pins().items():
        text = text.replace(f"uses: {name}\n", f"uses: {pin}\n")
    workflow = build_file_tree(tmp_path, {"standins.yml": text}) / "standins.yml"
    heads = {"MAIN": "main", "DEVELOP": "develop", "TAGGED": "v1"}
    env = {name: git(repo, "rev-parse", ref) for name, ref in heads.items()}

    run = Act(repo, tmp_path / "act", env=env).dispatch(workflow, {})

    assert run.results() == {"checkout": "success", "artifacts": "success"}, run.report()
    assert run.leg("checkout").steps["Upload one again"] == "failure"  # the outcome, before continue-on-error
    assert sorted(p.name for p in run.artifacts.iterdir()) == ["one", "two"]


def test_an_action_without_a_standin_is_refused(tmp_path: Path) -> None:
    """act would fetch it from GitHub: refused before act starts."""
    tree = build_file_tree(tmp_path, {"w.yml": """
        on: workflow_dispatch
        jobs:
          build:
            runs-on: ubuntu-latest
            steps:
              - uses: actions/setup-python@v5
        """})  # fmt: skip
    with pytest.raises(ActError, match=r"no stand-in for \['actions/setup-python@v5'\]"):
        Act(tree, tmp_path / "act").run(tree / "w.yml", "workflow_dispatch", {})


def test_a_run_past_its_timeout_is_stopped_with_its_steps(tmp_path: Path) -> None:
    """Steps run in process groups of their own: the whole session goes, not just act."""
    pid_file = tmp_path / "step.pid"
    tree = build_file_tree(tmp_path / "repo", {"w.yml": f"""
        on: workflow_dispatch
        jobs:
          hang:
            runs-on: ubuntu-latest
            steps:
              - run: echo $$ > {pid_file} && exec sleep 300
        """})  # fmt: skip
    started = time.monotonic()
    with pytest.raises(ActError, match="act did not finish within 3 s"):
        Act(tree, tmp_path / "act", timeout=3).run(tree / "w.yml", "workflow_dispatch", {})
    assert time.monotonic() - started < 30
    try:
        state = Path(f"/proc/{pid_file.read_text().strip()}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        state = "gone"
    assert state in ("gone", "Z"), "the step outlived its act run"


@pytest.fixture
def fleet(tmp_path_factory: pytest.TempPathFactory, docker_project: str, docker_host: str) -> Fleet:
    """The fleet in a short folder: the proxy's admin socket lives under it, and a unix socket path has at
    most 107 bytes (tmp_path holds the test's name)."""
    root = tmp_path_factory.mktemp("act") / "repo"
    return make_fleet(root, docker_project, docker_host, SERVICES, max_parallel=3)


def test_dispatch_deploys_the_fleet_and_a_broken_service_fails_only_its_leg(
    tmp_path: Path, fleet: Fleet, docker_host: str
) -> None:
    repo = commit_rendered(fleet.root)
    act = Act(repo, tmp_path / "act", env={"DOCKER_HOST": docker_host})
    github = shared_github()  # where act's legs record their GitHub deployments
    first, problems = len(github.deployments), len(github.problems)

    run = act.dispatch(repo / DEPLOY_WORKFLOW, DISPATCH)

    assert run.results() == {
        "prepare": "success",
        "check-infrastructure": "success",
        "deploy-service": "failure",
        "deployment-summary": "failure",  # it ran, and says a service failed
    }, run.report()
    legs = {leg.matrix["service"]: leg.result for leg in run.legs("deploy-service")}
    assert legs == {"api": "success", "notes": "success", "broken": "failure"}, run.report()
    status = statuses(run)
    assert {name: s["result"] for name, s in status.items()} == {
        "api": "deployed", "notes": "deployed", "broken": "failed",
    }  # fmt: skip
    assert max_overlap(list(status.values())) >= 2  # act ran the legs side by side (broken ends early)
    assert fleet.health("api") == fleet.health("notes") == 200
    assert fleet.health("broken") != 200  # never went live: the proxy has nothing to send it to
    running = docker(docker_host, "inspect", "--format", "{{.Config.Image}}", f"{fleet.project}-api")
    assert running.stdout.strip() == status["api"]["image"]

    summary = run.leg("deployment-summary")
    assert summary.steps["Summarize the deployment"] == "failure"
    rows = {"api": "✅ deployed", "notes": "✅ deployed", "broken": "❌ failed"}
    assert summary_rows(summary.summary) == rows
    assert github.problems[problems:] == []
    recorded = {item["payload"]["service"]: github.states(item["id"]) for item in github.deployments[first:]}
    assert recorded == {
        "api": ["in_progress", "success"], "notes": ["in_progress", "success"],
        "broken": ["in_progress", "failure"],
    }  # fmt: skip
    assert "```mermaid\ngantt\n" in summary.summary


def test_unknown_service_stops_in_prepare_and_skips_the_rest(tmp_path: Path) -> None:
    """No target is needed: act skips every job after prepare, the summary too."""
    fleet = make_fleet(tmp_path / "repo", "wfgt-unused", "unix:///nowhere", SERVICES, create_network=False)
    repo = commit_rendered(fleet.root)
    act = Act(repo, tmp_path / "act")

    run = act.dispatch(repo / DEPLOY_WORKFLOW, {**DISPATCH, "services": "nope"})

    assert run.results() == {
        "prepare": "failure",
        "check-infrastructure": "skipped",
        "deploy-service": "skipped",
        "deployment-summary": "skipped",
    }, run.report()
    assert "prepare: unknown service 'nope'" in run.leg("prepare").log

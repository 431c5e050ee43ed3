"""GitHub deployments per service: each call checked against GitHub's OpenAPI description of the endpoints, on a
real HTTP server standing in for the API (GITHUB_API_URL), from the recorder and from deploy_service.py."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from generator.manifest.validate import load_manifest
from generator.render.files import render
from generator.steps.core import config, config_load, github_api, github_deployments
from tests.support.deploys import DeployBench
from tests.support.fixture_service import ServiceRepo
from tests.support.github_api import TOKEN, FakeGitHub, fake_github, job_env
from tests.support.manifests import manifest_toml, write_resolved_manifest
from tests.support.ports import free_port
from tests.support.stepscripts import run_step

A, B, C = "a" * 40, "b" * 40, "c" * 40
SERVICES = {
    "auth-service": {"repository": "acme/auth", "port": 3000},
    "chat-service": {"repository": "acme/chat", "port": 3001, "domain": "chat.example.com"},
    "event-service": {"path": "event", "port": 3002},
    "web": {"path": "web", "port": 3003, "depends_on": ["auth-service"]},
}


def manifest(tmp_path: Path, **project: Any) -> config.Manifest:
    text = manifest_toml(SERVICES, project=project, target={"environment": "production"})
    return config_load.load(str(write_resolved_manifest(tmp_path, text)))


def leg(
    fleet: config.Manifest, github: FakeGitHub, name: str, commit: str, result: str, msg: str = ""
) -> None:
    """One leg's recording, as deploy_service.py does it around the deploy."""
    recorder = github_deployments.recorder(fleet, fleet.service(name), job_env(github))
    assert recorder is not None
    recorder.start(commit, "main")
    recorder.finish(result, msg)


def test_one_run_of_four_services(tmp_path: Path) -> None:
    fleet = manifest(tmp_path)
    with fake_github() as github:
        leg(fleet, github, "event-service", C, "deployed")  # an earlier run: event-service runs C
        github.calls.clear()
        leg(fleet, github, "auth-service", A, "failed", "health: no answer on /health within 60 s")
        leg(fleet, github, "chat-service", B, "deployed")
        leg(fleet, github, "event-service", C, "unchanged")
        # web: skipped, its dependency failed: the leg never starts, so nothing is recorded
    assert github.problems == []
    assert github.lines() == [
        "POST /deployments auth-service aaaaaaa",
        "POST /deployments/2/statuses in_progress",
        "GET /deployments?environment=production&task=deploy%3Aauth-service&per_page=30",
        "POST /deployments/2/statuses failure",
        "POST /deployments chat-service bbbbbbb",
        "POST /deployments/3/statuses in_progress",
        "GET /deployments?environment=production&task=deploy%3Achat-service&per_page=30",
        "POST /deployments/3/statuses success",
        "POST /deployments event-service ccccccc",
        "POST /deployments/4/statuses in_progress",
        "GET /deployments?environment=production&task=deploy%3Aevent-service&per_page=30",
        "GET /deployments/1/statuses?per_page=1",
        "POST /deployments/4/statuses inactive",
    ]
    assert github.states(1) == [
        "in_progress",
        "success",
    ]  # the earlier deployment of C keeps saying since when
    auth, chat = github.deployment(2), github.deployment(3)
    assert auth["ref"] == "f" * 40  # GitHub refuses a commit of another repository: the workflow's commit
    assert auth["payload"] == {"service": "auth-service", "commit": A, "branch": "main", "kind": "deploy"}
    assert github.deployment(1)["ref"] == C  # a folder service's commit is this repository's
    success = chat["statuses"][-1]
    assert success["environment_url"] == "https://chat.example.com" and success["auto_inactive"] is False
    assert success["log_url"] == "https://github.example/acme/fleet/actions/runs/4242/job/777"
    assert "environment_url" not in auth["statuses"][-1]  # no domain: no URL (never the target's host)


def test_a_success_retires_only_the_same_service_s_earlier_deployments(tmp_path: Path) -> None:
    fleet = manifest(tmp_path)
    with fake_github() as github:
        leg(fleet, github, "chat-service", A, "deployed")  # 1
        leg(fleet, github, "auth-service", A, "deployed")  # 2
        leg(fleet, github, "chat-service", B, "failed")  # 3: A still serves
        leg(fleet, github, "chat-service", C, "deployed")  # 4
    assert github.problems == []
    assert github.states(1) == ["in_progress", "success", "inactive"]
    assert github.states(2) == ["in_progress", "success"]  # another service: untouched
    assert github.states(3) == ["in_progress", "failure"]
    assert github.states(4) == ["in_progress", "success"]


def test_unchanged_is_a_success_when_nothing_records_the_running_commit_yet(tmp_path: Path) -> None:
    fleet = manifest(tmp_path)
    with fake_github() as github:
        leg(fleet, github, "chat-service", A, "unchanged")
    assert github.states(1) == ["in_progress", "success"]


def test_a_rollback_is_the_service_s_deployment_too(tmp_path: Path) -> None:
    fleet = manifest(tmp_path)
    with fake_github() as github:
        leg(fleet, github, "event-service", B, "deployed")
        recorder = github_deployments.recorder(fleet, fleet.service("event-service"), job_env(github))
        assert recorder is not None
        recorder.start(A, "main", kind="rollback")
        recorder.finish("deployed")
        record = recorder.record()
    assert github.problems == []
    assert github.deployment(2)["description"] == "event-service aaaaaaa (rollback)"
    assert github.states(1)[-1] == "inactive" and github.states(2)[-1] == "success"
    assert record == {
        "id": 2, "environment": "production", "state": "success",
        "url": "https://github.example/acme/fleet/deployments/production",
    }  # fmt: skip


def test_a_5xx_is_retried_once_and_a_failing_api_is_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = manifest(tmp_path)
    with fake_github() as github:
        github.fail["POST /deployments"] = [502]
        leg(fleet, github, "chat-service", A, "deployed")
        assert github.states(1) == ["in_progress", "success"]
        github.fail["POST /deployments"] = [502, 503]
        leg(fleet, github, "chat-service", B, "deployed")
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "::warning::chat-service: GitHub deployment not recorded: cannot create it: POST /deployments: HTTP 503 "
        "Server Error"
    ]
    assert TOKEN not in err


@contextmanager
def raw_server(answers: list[bytes | None]) -> Iterator[tuple[str, list[str]]]:
    """A server on 127.0.0.1 that answers its n-th connection with answers[n] (the last one again after
    them) as is: None never answers, b"" closes at once. Yields its URL and each request's first line."""
    listener = socket.create_server(("127.0.0.1", 0))
    requests: list[str] = []
    held = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            answer = answers[min(len(requests), len(answers) - 1)]
            requests.append(conn.recv(65536).decode().split("\r\n")[0])
            if answer is None:
                held.append(conn)  # keeps it open, silent
                continue
            conn.sendall(answer)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", requests
    finally:
        listener.close()
        for conn in held:
            conn.close()


EMPTY_LIST = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"


def test_a_call_times_out_and_is_tried_once_more() -> None:
    assert github_api.Client.from_env(job_env(FakeGitHub())).timeout_s == 10.0  # README's figure
    with raw_server([None]) as (url, requests):
        client = github_api.Client(url, "acme/fleet", TOKEN, timeout_s=0.5)
        started = time.monotonic()
        with pytest.raises(github_api.ApiError, match=r"^GET /deployments: timed out$"):
            client.call("GET", "/deployments")
        assert len(requests) == 2 and time.monotonic() - started < 5


def test_a_dropped_connection_is_tried_once_more() -> None:
    with raw_server([b"", EMPTY_LIST]) as (url, requests):
        assert github_api.Client(url, "acme/fleet", TOKEN).call("GET", "/deployments") == []
    assert requests == ["GET /repos/acme/fleet/deployments HTTP/1.1"] * 2


def test_the_calls_go_to_github_api_url_as_given_enterprise_server_too() -> None:
    with raw_server([EMPTY_LIST]) as (url, requests):
        client = github_api.Client.from_env(job_env(FakeGitHub(url=url + "/api/v3/")))
        assert client.call("GET", "/deployments", query={"task": "deploy:web"}) == []
    assert requests == ["GET /api/v3/repos/acme/fleet/deployments?task=deploy%3Aweb HTTP/1.1"]


def test_an_answer_that_is_not_http_is_one_warning_and_the_leg_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A proxy in front of the API that answers garbage: one warning line, no traceback (the deploy goes on)."""
    fleet = manifest(tmp_path)
    with raw_server([b"garbage\r\n\r\n"]) as (url, requests):
        leg(fleet, FakeGitHub(url=url), "chat-service", A, "deployed")
    assert len(requests) == 1
    assert capsys.readouterr().err.splitlines() == [
        "::warning::chat-service: GitHub deployment not recorded: cannot create it: POST /deployments: "
        "BadStatusLine: garbage"
    ]


@pytest.mark.parametrize("token", [TOKEN + "\n", "Bearer " + TOKEN, TOKEN + "\x00"])
def test_a_token_with_a_space_or_a_control_character_is_refused_unseen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], token: str
) -> None:
    """http.client quotes a header value it refuses, token and all: never send such a token."""
    fleet = manifest(tmp_path)
    with fake_github() as github:
        assert (
            github_deployments.recorder(
                fleet, fleet.service("web"), job_env(github, WFGEN_GITHUB_TOKEN=token)
            )
            is None
        )
    assert github.calls == []
    err = capsys.readouterr().err
    assert err == (
        "::warning::web: GitHub deployment not recorded: "
        "WFGEN_GITHUB_TOKEN holds a space or a control character (its value is not shown)\n"
    )
    assert TOKEN not in err


def test_nothing_is_recorded_outside_actions_or_when_turned_off(tmp_path: Path) -> None:
    fleet = manifest(tmp_path)
    (tmp_path / "off").mkdir()
    off = manifest(tmp_path / "off", github_deployments=False)
    with fake_github() as github:
        local = {key: value for key, value in job_env(github).items() if key != "GITHUB_ACTIONS"}
        assert github_deployments.recorder(fleet, fleet.service("web"), local) is None
        assert github_deployments.recorder(off, off.service("web"), job_env(github)) is None
    assert github.calls == []


def test_a_job_without_a_token_warns_and_deploys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = manifest(tmp_path)
    with fake_github() as github:
        env = {key: value for key, value in job_env(github).items() if key != "WFGEN_GITHUB_TOKEN"}
        assert github_deployments.recorder(fleet, fleet.service("web"), env) is None
    assert capsys.readouterr().err == (
        "::warning::web: GitHub deployment not recorded: "
        "WFGEN_GITHUB_TOKEN (the job's github.token) is not set in the step's environment\n"
    )


def test_a_failing_leg_records_its_deployment_from_the_step_script(tmp_path: Path) -> None:
    """deploy_service.py in a fresh `python -I -S`: the leg fails (a secret is missing) and says so on GitHub."""
    services = {"auth-service": {"path": "auth", "port": 3000, "env": ["T_GH_SECRET"]}}
    text = manifest_toml(services, target={"state_dir": str(tmp_path / "s"), "environment": "production"})
    path = write_resolved_manifest(tmp_path, text)
    status = tmp_path / "st.json"
    with fake_github() as github:
        proc = run_step(
            "deploy_service", "--manifest", str(path), "--service", "auth-service", "--branch", "main",
            "--status-file", str(status), "--commit", A, env=job_env(github),
        )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert github.problems == []
    assert [line.split("?")[0] for line in github.lines()] == [
        "POST /deployments auth-service aaaaaaa",
        "POST /deployments/1/statuses in_progress",
        "GET /deployments",
        "POST /deployments/1/statuses failure",
    ]
    assert "T_GH_SECRET" in github.deployment(1)["statuses"][-1]["description"]
    assert json.loads(status.read_text())["github"]["state"] == "failure"
    assert TOKEN not in proc.stdout + proc.stderr


@pytest.mark.parametrize("enabled", [True, False])
def test_only_the_jobs_that_record_get_deployments_write(tmp_path: Path, enabled: bool) -> None:
    toml = tmp_path / "services.toml"
    toml.write_text(manifest_toml(SERVICES, project={"github_deployments": enabled}), encoding="utf-8")
    files = render(load_manifest(toml))
    for name in (".github/workflows/deploy-services-parallel.yml", ".github/workflows/rollback.yml"):
        jobs = YAML(typ="safe").load(files[name])["jobs"]
        writers = {job for job, spec in jobs.items() if spec["permissions"].get("deployments") == "write"}
        tokens = {job for job, spec in jobs.items() if "${{ github.token }}" in json.dumps(spec)}
        expected = (
            {job for job in jobs if job.startswith("deploy-") or job == "rollback"} if enabled else set()
        )
        assert writers == tokens == expected


def test_real_legs_and_a_rollback_record_their_deployments(
    bench: DeployBench, web: ServiceRepo, docker_project: str
) -> None:
    """deploy_service.py and rollback.py on a real Docker engine: deployed, unchanged, deployed, rolled back."""
    table = {"repository": web.url, "port": free_port(), "container_port": 3000, "proxy": False}
    table["health"] = {"interval_s": 0.2, "timeout_s": 2.0, "deadline_s": 6.0}
    bench.write({"web": table}, project={"name": docker_project}, target={"environment": "production"})
    with fake_github() as github:
        env = job_env(github)
        first, v1 = bench.deploy(env=env), web.head
        again = bench.deploy(env=env)
        web.write_marker("v2")
        second = bench.deploy(env=env)
        back = run_step("rollback", "--manifest", str(bench.manifest), "--service", "web",
                        "--status-file", str(bench.workdir / "rollback.json"), env={**bench.env, **env})  # fmt: skip
    results = [run.status["result"] for run in (first, again, second)]
    assert results == ["deployed", "unchanged", "deployed"], again.stdout + again.stderr
    assert back.returncode == 0, back.stdout + back.stderr
    assert github.problems == []
    assert [github.states(n) for n in (1, 2, 3, 4)] == [
        ["in_progress", "success", "inactive"],  # v1, until v2 replaced it
        ["in_progress", "inactive"],  # unchanged: v1's deployment keeps saying since when
        ["in_progress", "success", "inactive"],  # v2, until the rollback
        ["in_progress", "success"],  # the rollback to v1
    ]
    assert github.deployment(4)["payload"]["commit"] == v1
    assert github.deployment(4)["description"] == f"web {v1[:7]} (rollback)"
    assert second.status["github"] == {**second.status["github"], "id": 3, "state": "success"}
    assert TOKEN not in first.stdout + first.stderr + back.stdout + back.stderr

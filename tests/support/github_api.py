"""A stand-in for GitHub's deployments API on 127.0.0.1: a real HTTP server that keeps deployments and their
statuses, and checks every request against GitHub's published OpenAPI description of those paths
(tests/github_api/deployments.openapi.json)."""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema

DESCRIPTION = Path(__file__).parent.parent / "github_api" / "deployments.openapi.json"
TOKEN = "ghs_test-token-never-printed"
REPOSITORY = "acme/fleet"


@dataclass
class Call:
    method: str
    path: str  # under /repos/<owner>/<name>
    query: dict[str, str]
    body: Any

    def line(self) -> str:
        """`POST /deployments/2/statuses state=success` for a readable sequence."""
        if self.method == "GET":
            return f"GET {self.path}" + ("?" + urllib.parse.urlencode(self.query) if self.query else "")
        detail = self.body.get("state") or self.body.get("description") or ""
        return f"POST {self.path} {detail}".rstrip()


@dataclass
class FakeGitHub:
    url: str = ""
    calls: list[Call] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # requests GitHub's description refuses
    deployments: list[dict[str, Any]] = field(default_factory=list)
    fail: dict[str, list[int]] = field(default_factory=dict)  # "POST /deployments" -> HTTP codes, in turn
    token: str | None = TOKEN  # None: any bearer token (a simulated run's own)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def lines(self) -> list[str]:
        return [call.line() for call in self.calls]

    def states(self, deployment_id: int) -> list[str]:
        return [status["state"] for status in self.deployment(deployment_id)["statuses"]]

    def deployment(self, deployment_id: int) -> dict[str, Any]:
        return next(item for item in self.deployments if item["id"] == deployment_id)

    def sequences(self, since: int = 0) -> dict[str, list[str]]:
        """service -> its calls in order, from the call numbered `since` (see `labelled`)."""
        found: dict[str, list[str]] = {}
        for service, line in self.labelled(since):
            found.setdefault(service, []).append(line)
        return found

    def labelled(self, since: int = 0) -> list[tuple[str, str]]:
        """(service, call) in the order they came, from the call numbered `since`; each deployment id is
        written `<service>#<n>` (the service's n-th deployment), so a service's calls read the same whichever
        parallel leg got which id."""
        labels: dict[int, tuple[str, str]] = {}
        for item in self.deployments:
            service = str(item["payload"].get("service"))
            count = sum(label[0] == service for label in labels.values()) + 1
            labels[item["id"]] = (service, f"{service}#{count}")
        found = []
        for call in self.calls[since:]:
            match = re.search(r"/deployments/(\d+)", call.path)
            if match and int(match[1]) in labels:
                service, label = labels[int(match[1])]
                line = call.line().replace(match[0], f"/deployments/{label}", 1)
            else:
                payload = call.body.get("payload") if isinstance(call.body, dict) else None
                named = payload.get("service") if isinstance(payload, dict) else None
                service, line = str(named or call.query.get("task", "").removeprefix("deploy:")), call.line()
            found.append((service, line))
        return found


def _description() -> dict[str, Any]:
    return json.loads(DESCRIPTION.read_text(encoding="utf-8"))


def _operation(method: str, full_path: str) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The described operation for a request path, with its path parameters."""
    for template, item in _description()["paths"].items():
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        match = re.fullmatch(pattern, full_path)
        if match and method.lower() in item:
            return item[method.lower()], match.groupdict()
    return None


def _parameter_names(operation: dict[str, Any], where: str) -> set[str]:
    components = _description()["components"]["parameters"]
    names = set()
    for parameter in operation.get("parameters", []):
        if "$ref" in parameter:
            parameter = components[parameter["$ref"].rsplit("/", 1)[1]]
        if parameter["in"] == where:
            names.add(parameter["name"])
    return names


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *_args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.handle_call("GET")

    def do_POST(self) -> None:
        self.handle_call("POST")

    def handle_call(self, method: str) -> None:
        github = self.server.github
        parts = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = re.sub(r"^/repos/[^/]+/[^/]+", "", parts.path)  # one repository's deployments, whichever
        with github.lock:
            github.calls.append(Call(method, path, query, body))
            problem = self.check(method, parts.path, query, body)
            if problem:
                github.problems.append(f"{method} {parts.path}: {problem}")
                return self.answer(422, {"message": problem})
            codes = github.fail.get(method + " " + re.sub(r"/\d+/", "/N/", path))
            if codes:
                return self.answer(codes.pop(0), {"message": "Server Error"})
            status, answer = self.serve(method, path, query, body)
        self.answer(status, answer)

    def check(self, method: str, path: str, query: dict[str, str], body: Any) -> str | None:
        token = self.server.github.token
        given = self.headers.get("Authorization") or ""
        if given != f"Bearer {token}" if token else not given.startswith("Bearer ghs_"):
            return "missing or wrong token"
        found = _operation(method, path)
        if found is None:
            return "no such operation in GitHub's description"
        operation, _ = found
        unknown = set(query) - _parameter_names(operation, "query")
        if unknown:
            return f"query parameters not in the description: {sorted(unknown)}"
        request_body = operation.get("requestBody")
        if request_body is None:
            return "a body the operation does not take" if body is not None else None
        if body is None:
            return "a required body is missing"
        schema = request_body["content"]["application/json"]["schema"]
        try:
            jsonschema.validate(body, schema)
        except jsonschema.ValidationError as exc:
            return f"body: {exc.message}"
        return None

    def serve(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        github = self.server.github
        if path == "/deployments" and method == "POST":
            item = {
                "id": len(github.deployments) + 1,
                "sha": body["ref"],
                "ref": body["ref"],
                "task": body.get("task", "deploy"),
                "environment": body.get("environment", "production"),
                "payload": body.get("payload", {}),
                "description": body.get("description", ""),
                "statuses": [],
            }
            github.deployments.append(item)
            return 201, {key: value for key, value in item.items() if key != "statuses"}
        if path == "/deployments":
            listed = [
                {key: value for key, value in item.items() if key != "statuses"}
                for item in reversed(github.deployments)  # newest first, as GitHub lists them
                if all(item.get(key) == query[key] for key in ("environment", "task") if key in query)
            ]
            return 200, listed[: int(query.get("per_page", 30))]
        match = re.fullmatch(r"/deployments/(\d+)/statuses", path)
        if not match or not any(item["id"] == int(match[1]) for item in github.deployments):
            return 404, {"message": "Not Found"}
        statuses = github.deployment(int(match[1]))["statuses"]
        if method == "POST":
            statuses.append({"id": len(statuses) + 1, **body})
            return 201, statuses[-1]
        return 200, list(reversed(statuses))[: int(query.get("per_page", 30))]

    def answer(self, status: int, data: Any) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    github: FakeGitHub


@contextmanager
def fake_github() -> Iterator[FakeGitHub]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.github = FakeGitHub(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.github
    finally:
        server.shutdown()
        server.server_close()


_SHARED: list[FakeGitHub] = []


def shared_github() -> FakeGitHub:
    """One stand-in per test process for the simulated runs that do not look at their deployments: they
    record them here instead of calling GitHub. Started on first use, stopped with the process."""
    if not _SHARED:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.github = FakeGitHub(url=f"http://127.0.0.1:{server.server_address[1]}", token=None)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        _SHARED.append(server.github)
    return _SHARED[0]


def runner_env(github: FakeGitHub) -> dict[str, str]:
    """What a simulated runner sets so the legs record their deployments on `github`."""
    return {
        "GITHUB_API_URL": github.url,
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_REPOSITORY": REPOSITORY,
    }


def job_env(github: FakeGitHub, **extra: str) -> dict[str, str]:
    """What a deploy job's step sees: the Actions variables and the job's token."""
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": github.url,
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_RUN_ID": "4242",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_SHA": "f" * 40,
        "WFGEN_GITHUB_TOKEN": TOKEN,
        "WFGEN_JOB_CHECK_RUN_ID": "777",
        **extra,
    }

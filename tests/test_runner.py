"""`wfgen deploy` end to end: real step scripts, real Docker, real git repos, the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.steps.core.steplib import parse_iso, read_json
from tests.support.docker import docker
from tests.support.files import snapshot
from tests.support.fleet import Fleet, make_fleet, max_overlap, wait_until
from tests.support.runs import assert_same_summary_as_the_job, statuses

LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] \S+ [\w.-]+: \S.*$")
FOUR = {
    "auth-service": {},
    "user-service": {},
    "chat-service": {"variant": "broken_health"},
    "event-service": {},
}


@pytest.fixture
def fleet_factory(tmp_path: Path, docker_host: str, docker_project: str) -> Iterator[object]:
    def make(services: dict[str, dict[str, object]], **kwargs: object) -> Fleet:
        return make_fleet(tmp_path / "fleet", docker_project, docker_host, services, **kwargs)  # type: ignore[arg-type]

    yield make


def test_one_failure_does_not_stop_the_others_and_retry_failed_redeploys_it(
    fleet_factory, tmp_path: Path
) -> None:
    fleet = fleet_factory(FOUR, max_parallel=4)
    first = fleet.wfgen("deploy", "all", "main")
    assert first.returncode == 1, first.stdout + first.stderr
    for line in first.stdout.splitlines():
        assert LINE.match(line), f"not a progress line: {line!r}"
    assert re.search(r"✅ auth-service: deployed [0-9a-f]{7} in \d+ s", first.stdout)
    assert re.search(r"❌ chat-service: failed at health", first.stdout)
    assert "Progress: 4/4 completed" in first.stdout
    run = fleet.last_run()
    results = {name: item["result"] for name, item in run["services"].items()}
    assert results == {"auth-service": "deployed", "user-service": "deployed", "chat-service": "failed",
                       "event-service": "deployed"}  # fmt: skip
    for name in ("auth-service", "user-service", "event-service"):
        assert fleet.health(name) == 200, name
    assert fleet.health("chat-service") is None  # a cold deploy that failed never took the port
    log = Path(run["services"]["chat-service"]["log_path"]).read_text()
    assert "health" in log and "chat-service" in log
    summary = (Path(run["run_dir"]) / "summary.md").read_text()
    assert "| chat-service | ❌ failed |" in summary and "Parallel speedup: " in summary
    assert_same_summary_as_the_job(run, tmp_path)
    # the job's report on the terminal, then the tail of the failed log
    assert re.search(r"📋 summary: ❌ 1 of 4 services failed\n", first.stdout)
    assert re.search(r"📋 summary: ❌ chat-service +failed +\d+\.\d s", first.stdout)
    assert re.search(r"📋 summary: Timeline: 0 s to \d+\.\d s\n", first.stdout)
    assert re.search(r"📋 summary: Parallel speedup: \d+\.\d×", first.stdout)
    assert f"📄 chat-service: | {log.splitlines()[-1]}".rstrip() in first.stdout

    fleet.repos["chat-service"].commit_variant("ok")
    retry = fleet.wfgen("deploy", "--retry-failed", "--json")
    assert retry.returncode == 0, retry.stdout + retry.stderr
    result = json.loads(retry.stdout)
    assert list(result["services"]) == ["chat-service"]
    assert result["services"]["chat-service"]["result"] == "deployed"
    assert result["inputs"]["branch"] == "main" and result["inputs"]["retry_of"] == run["run_id"]
    assert result["run_id"] != run["run_id"] and fleet.last_run()["run_id"] == result["run_id"]
    assert fleet.health("chat-service") == 200

    again = fleet.wfgen("deploy", "--retry-failed")
    assert again.returncode == 0 and "nothing to retry" in again.stdout


def test_the_check_learns_whether_a_secret_is_set_from_the_value_the_legs_get(fleet_factory) -> None:
    fleet = fleet_factory({"solo": {}})
    text = fleet.manifest.read_text(encoding="utf-8")
    checked = '[infrastructure]\nsecrets = ["WFGT_RUN_SECRET"]\n'
    fleet.manifest.write_text(text.replace("[infrastructure]\n", checked, 1), encoding="utf-8")
    # A flag left in the shell cannot stand in for the secret itself, nor hide it: the runner sets the flag.
    unset = fleet.wfgen("deploy", "all", "main", "--quiet", WFGEN_SECRET_SET_WFGT_RUN_SECRET="true")
    assert unset.returncode == 1, unset.stdout + unset.stderr
    assert "✗ secret WFGT_RUN_SECRET — not set in the environment" in unset.stderr
    assert fleet.last_run()["services"]["solo"]["result"] == "skipped"
    given = fleet.wfgen(
        "deploy", "all", "main", "--quiet", WFGT_RUN_SECRET="x", WFGEN_SECRET_SET_WFGT_RUN_SECRET="false"
    )
    assert given.returncode == 0, given.stdout + given.stderr
    assert fleet.last_run()["services"]["solo"]["result"] == "deployed"


def test_max_parallel_bounds_concurrency(fleet_factory) -> None:
    names = [f"svc-{i}" for i in range(5)]
    fleet = fleet_factory({name: {"delay_s": 1} for name in names}, max_parallel=6)
    done = fleet.wfgen("deploy", "all", "main", "--max-parallel", "2", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    legs = list(statuses(fleet.last_run()).values())
    assert [leg["result"] for leg in legs] == ["deployed"] * 5
    assert max_overlap(legs) == 2  # never more than two, and the pool did use both slots


def test_fail_fast_skips_queued_services(fleet_factory) -> None:
    fleet = fleet_factory({"bad": {"variant": "exits"}, "good-1": {}, "good-2": {}}, max_parallel=1)
    done = fleet.wfgen("deploy", "all", "main", "--fail-fast", "--json")
    assert done.returncode == 1
    results = {name: item["result"] for name, item in json.loads(done.stdout)["services"].items()}
    assert results == {"bad": "failed", "good-1": "skipped", "good-2": "skipped"}
    assert statuses(fleet.last_run())["good-1"]["result"] == "skipped"


def process_sessions() -> dict[int, int]:
    """pid -> session id of every process on this machine."""
    sessions = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            sessions[int(entry.name)] = int(fields[3])
    return sessions


def test_sigint_cancels_cleanly_and_keeps_the_old_versions_serving(fleet_factory) -> None:
    names = ["alpha", "beta", "gamma"]
    fleet = fleet_factory({name: {} for name in names}, max_parallel=3)
    assert fleet.wfgen("deploy", "all", "main", "--quiet").returncode == 0
    for name in names:
        fleet.repos[name].commit_variant("ok", delay_s=30)  # the new version is slow to become healthy
    runner = subprocess.Popen(
        [sys.executable, "-m", "generator", "deploy", "all", "main"], cwd=fleet.root, env=fleet.env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        runs = fleet.root / ".wfgen" / "runs"

        def all_in_health() -> bool:
            latest = runs / "latest"
            found = [read_json(latest / f"{name}.json") or {} for name in names]
            return all(status.get("phase") == "health" for status in found)

        assert wait_until(all_in_health, timeout=120), "the deploys never reached the health phase"
        run_dir = (runs / "latest").resolve()
        os.killpg(runner.pid, signal.SIGINT)  # like Ctrl-C: the whole foreground group of the runner
        output, _ = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130, output
    run = json.loads((run_dir / "run.json").read_text())
    assert {item["result"] for item in run["services"].values()} == {"cancelled"}, output
    pids = {item["pid"] for item in run["services"].values()}
    leftovers = {pid for pid, sid in process_sessions().items() if pid in pids or sid in pids}
    assert not leftovers, f"children still alive: {leftovers}"
    assert not list((fleet.state_dir / "locks").glob("*")), "a lock was left behind"
    for name in names:
        assert fleet.health(name) == 200, f"{name} stopped answering"
    containers = docker(fleet.docker_host, "ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert not [c for c in containers if c.startswith(fleet.project) and c.endswith("-candidate")]


def test_a_deploy_killed_outright_does_not_hold_the_next_one_for_lock_stale_s(fleet_factory) -> None:
    """`kill -9` of the runner and its legs (no release, no heartbeat): the next deploy on this machine breaks
    the dead leg's lock at once instead of waiting lock_stale_s (300 s), and says so."""
    fleet = fleet_factory({"web": {}})
    assert fleet.wfgen("deploy", "web", "main", "--quiet").returncode == 0
    fleet.repos["web"].commit_variant("ok", delay_s=30)  # slow to become healthy: killed while in health
    runner = subprocess.Popen(
        [sys.executable, "-m", "generator", "deploy", "web", "main"], cwd=fleet.root, env=fleet.env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    latest = fleet.root / ".wfgen" / "runs" / "latest"
    try:
        in_health = lambda: (read_json(latest / "web.json") or {}).get("phase") == "health"  # noqa: E731
        assert wait_until(in_health, timeout=120), "the deploy never reached the health phase"
        owner = json.loads((fleet.state_dir / "locks" / "web" / "owner").read_text())
        leg = owner["pid"]
        os.killpg(runner.pid, signal.SIGKILL)
        os.killpg(os.getpgid(leg), signal.SIGKILL)  # the leg runs in a session of its own
    finally:
        runner.kill()
        runner.wait()
    assert wait_until(lambda: leg not in process_sessions(), timeout=30)
    killed = time.monotonic()
    fleet.repos["web"].commit_variant("ok", delay_s=0)
    second = fleet.wfgen("deploy", "web", "main")
    assert second.returncode == 0, second.stdout + second.stderr
    log = Path(fleet.last_run()["services"]["web"]["log_path"]).read_text()
    assert f"web: warning: breaking the lock of pid {leg} on this host, which is no longer running" in log
    assert "waiting for the lock" not in log
    phases = {item["phase"]: item["at"] for item in read_json(latest / "web.json")["phases"]}
    lock_wait = (parse_iso(phases["source"]) - parse_iso(phases["lock"])).total_seconds()
    assert lock_wait < 10, f"the lock took {lock_wait:.1f} s"
    print(
        f"lock taken {lock_wait:.2f} s after the leg asked; deploy done {time.monotonic() - killed:.1f} s after the kill"
    )


def read_pty(fd: int, proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif proc.poll() is not None:
            break
    return b"".join(chunks)


def test_every_leg_deploys_the_commit_the_plan_showed_though_the_branch_moves_meanwhile(
    fleet_factory,
) -> None:
    fleet = fleet_factory({"slow": {"build_s": 6}, "late": {}}, max_parallel=1)  # late starts after slow
    planned = fleet.repos["late"].head
    runner = subprocess.Popen(
        [sys.executable, "-m", "generator", "deploy", "all", "main", "--quiet"], cwd=fleet.root,
        env=fleet.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        slow = fleet.root / ".wfgen" / "runs" / "latest" / "slow.json"
        assert wait_until(lambda: (read_json(slow) or {}).get("phase") == "build", timeout=120), "no build"
        pushed = fleet.repos["late"].write_marker("pushed after the plan")
        output, _ = runner.communicate(timeout=300)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, output
    late = fleet.last_run()["services"]["late"]
    assert late["result"] == "deployed" and late["commit"] == planned != pushed


def test_terminal_output_is_a_live_table(fleet_factory) -> None:
    fleet = fleet_factory({"tty-a": {"delay_s": 1}, "tty-b": {}}, max_parallel=2)
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "generator", "deploy", "all", "main"], cwd=fleet.root,
        env=fleet.env(TERM="xterm-256color", COLUMNS="120"), stdin=slave, stdout=slave, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    try:
        output = read_pty(master, proc, timeout=300).decode("utf-8", errors="replace")
        proc.wait(timeout=60)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "Progress: 2/2 completed" in output and "Progress: 0/2 completed" in output
    for header in ("service", "phase", "elapsed", "result"):
        assert header in output
    assert "\x1b[" in output  # rich drew with terminal control sequences
    assert "Traceback" not in output
    assert "Parallel speedup: " in output and "Timeline: 0 s to " in output


def test_failed_infrastructure_check_ends_with_the_jobs_summary(tmp_path: Path) -> None:
    """No Docker engine behind DOCKER_HOST: nothing starts, and summary.md says what the job would."""
    fleet = make_fleet(
        tmp_path / "fleet", "wfgt-noinfra", f"unix://{tmp_path / 'none.sock'}", {"ia": {}, "ib": {}},
        create_network=False,
    )  # fmt: skip
    done = fleet.wfgen("deploy", "all", "main")
    assert done.returncode == 1, done.stdout + done.stderr
    run = fleet.last_run()
    assert {item["result"] for item in run["services"].values()} == {"skipped"}
    assert "📋 summary: ❌ infrastructure check failed: none of 2 services deployed" in done.stdout
    assert_same_summary_as_the_job(run, tmp_path, WFGEN_CHECK_RESULT="failure")


def test_dry_run_touches_nothing(tmp_path: Path) -> None:
    spy_host = f"unix://{tmp_path / 'docker.sock'}"
    fleet = make_fleet(
        tmp_path / "fleet", "wfgt-dry", spy_host, {"dry-a": {}, "dry-b": {}}, create_network=False
    )
    before = snapshot(fleet.root)
    spy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    spy.bind(str(tmp_path / "docker.sock"))
    spy.listen(8)
    spy.setblocking(False)
    done = fleet.wfgen("deploy", "all", "main", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert f"{fleet.project}/dry-a:{fleet.repos['dry-a'].head[:12]}" in done.stdout
    assert "branch main" in done.stdout and "local Docker" in done.stdout
    assert snapshot(fleet.root) == before and not (fleet.root / ".wfgen").exists()
    with pytest.raises(BlockingIOError):
        spy.accept()  # nobody tried to talk to "Docker"
    spy.close()


def test_retry_failed_without_a_previous_run_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "services.toml").write_text(
        '[project]\nname = "x"\n\n[services.a]\nrepository = "o/a"\nport = 3000\n'
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-m", "generator", "deploy", "--retry-failed"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"--retry-failed: no previous run in {tmp_path / '.wfgen' / 'runs'}; deploy something first"
    ]
    assert not (tmp_path / ".wfgen").exists()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{}", "no 'services' object"),
        ("[]", "not a JSON object"),
        ('{"services": {"a": "failed"}, "inputs": {"branch": "main", "force_rebuild": false}, "run_id": "r"}',
         "services.a is not an object"),
        ('{"services": {}, "inputs": [], "run_id": "r"}', "no 'inputs' object"),
        ('{"services": {"a": {"result": "failed"}}, "inputs": {"branch": 7}, "run_id": "r"}',
         "inputs.branch is not a string"),
        ('{"services": ' + "[" * 100_000 + "]" * 100_000 + "}", "not valid JSON"),
    ],
    # Named, not the text itself: pytest 8 puts a parameter's text in the test id, and so in the child's
    # PYTEST_CURRENT_TEST, where 200,000 brackets are more than one environment variable may hold.
    ids=["empty", "list", "service-not-object", "inputs-not-object", "branch-not-string", "deep-nesting"],
)  # fmt: skip
def test_retry_failed_with_a_broken_run_record_is_a_usage_error(
    tmp_path: Path, text: str, problem: str
) -> None:
    (tmp_path / "services.toml").write_text(
        '[project]\nname = "x"\n\n[services.a]\nrepository = "o/a"\nport = 3000\n'
    )
    run_dir = tmp_path / ".wfgen" / "runs" / "20261129-142315-ab12"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(text)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-m", "generator", "deploy", "--retry-failed"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert done.stderr.splitlines() == [
        f"--retry-failed: {run_dir / 'run.json'}: not a run record: {problem}"
    ]


def test_bad_selection_is_prepares_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "services.toml").write_text(
        '[project]\nname = "x"\n\n[services.a]\nrepository = "o/a"\nport = 3000\n'
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-m", "generator", "deploy", "a,x\n::error::y", "main"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == ["prepare: unknown service 'x\\n::error::y'; valid: a"]
    assert not (tmp_path / ".wfgen").exists()

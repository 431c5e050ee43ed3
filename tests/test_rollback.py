"""`wfgen rollback` and generator/steps/rollback.py: the version chosen read-only, then the deploy's own
health-gated cutover with a kept image, against a real Docker engine with real git fixture repos."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from generator.steps import rollback
from generator.steps.core import steplib
from generator.steps.core.audit import AuditEntry, parse_audit_line
from tests.support.deploys import fetch
from tests.support.docker import docker
from tests.support.fleet import Fleet, make_fleet, wait_until, write_manifest
from tests.support.manifests import manifest_toml, write_resolved_manifest
from tests.support.stepscripts import run_step

A, B, C = "a" * 40, "b" * 40, "c" * 40


def deploy(fleet: Fleet) -> str:
    result = fleet.wfgen("deploy", "web", "main", "--quiet", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return fleet.repos["web"].head


def served(fleet: Fleet) -> str:
    return fetch(f"http://127.0.0.1:{fleet.ports['web']}/version")[1].strip()


def status_of(fleet: Fleet) -> dict[str, Any]:
    result = fleet.wfgen("status", "--json", timeout=120)
    assert result.stdout.startswith("{"), result.stdout + result.stderr
    web: dict[str, Any] = json.loads(result.stdout)["services"][0]
    return web


def audit_lines(fleet: Fleet) -> list[str]:
    return (fleet.state_dir / "audit.log").read_text(encoding="utf-8").splitlines()


def live_id(fleet: Fleet) -> str:
    return docker(fleet.docker_host, "inspect", "--format", "{{.Id}}", f"{fleet.project}-web").stdout.strip()


def test_rollback_goes_back_toggles_and_takes_a_named_commit(
    tmp_path: Path, docker_host: str, docker_project: str
) -> None:
    fleet = make_fleet(tmp_path / "f", docker_project, docker_host, {"web": {}})
    repo = fleet.repos["web"]
    first = repo.write_marker("v1")
    deploy(fleet)
    second = repo.write_marker("v2")
    deploy(fleet)
    third = repo.write_marker("v3")
    deploy(fleet)

    back = fleet.wfgen("rollback", "web", timeout=300)
    assert back.returncode == 0, back.stdout + back.stderr
    lines = back.stdout.splitlines()
    assert lines[0].endswith(
        f"web: rolling back from {third[:7]} to {second[:7]} on port {fleet.ports['web']}"
    )
    assert lines[-1].split("] ", 1)[1].startswith(f"web: rolled back to {second[:7]} in ")
    assert not any("building" in line for line in lines)  # the kept image, no build
    assert served(fleet) == "v2"
    web = status_of(fleet)
    assert (web["commit"], web["serving"]) == (second, True)
    assert (web["deploys"][0]["commit"], web["deploys"][0]["result"], web["deploys"][0]["action"]) == (
        second, "deployed", "rollback"
    )  # fmt: skip
    assert [v["commit"] for v in web["versions"] if v["rollback"]] == [third]  # the next one goes back again

    again = fleet.wfgen("rollback", "web", timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert served(fleet) == "v3" and status_of(fleet)["commit"] == third

    named = fleet.wfgen("rollback", "web", "--to", first[:5].upper(), timeout=300)
    assert named.returncode == 0, named.stdout + named.stderr
    assert served(fleet) == "v1"
    web = status_of(fleet)
    assert web["commit"] == first and web["deploys"][0]["action"] == "rollback"
    table = fleet.wfgen("status", timeout=120).stdout
    assert any(line.split()[2:4] == ["deployed", "(rollback)"] for line in table.splitlines())

    before = audit_lines(fleet)
    running = fleet.wfgen("rollback", "web", "--to", first, timeout=120)
    assert (running.returncode, running.stdout) == (2, "")
    assert running.stderr == f"web: {first[:7]} is already running\n"
    unknown = fleet.wfgen("rollback", "web", "--to", "0000000", timeout=120)
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert (
        unknown.stderr
        == f"web: 0000000 was pruned or never built; can roll back to: {third[:7]}, {second[:7]}\n"
    )
    assert audit_lines(fleet) == before and served(fleet) == "v1"


def test_rollback_when_the_previous_image_was_pruned_touches_nothing(
    tmp_path: Path, docker_host: str, docker_project: str
) -> None:
    fleet = make_fleet(tmp_path / "f", docker_project, docker_host, {"web": {}})
    repo = fleet.repos["web"]
    first = repo.write_marker("v1")
    deploy(fleet)
    second = repo.write_marker("v2")
    deploy(fleet)
    # Removed by hand (prune keeps it): its stopped container still uses it, so only the tag goes.
    docker(docker_host, "rmi", "-f", f"{fleet.project}/web:{first[:12]}", timeout=60, check=True)
    before, container = audit_lines(fleet), live_id(fleet)

    refused = fleet.wfgen("rollback", "web", timeout=120)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        f"web: nothing to roll back to: the images of the versions deployed before {second[:7]} "
        f"({first[:7]}) were pruned; kept: {second[:7]} (running)\n"
    )
    assert (audit_lines(fleet), live_id(fleet), served(fleet)) == (before, container, "v2")
    assert not (fleet.state_dir / "locks" / "web").exists()
    web = status_of(fleet)
    assert web["commit"] == second and not any(v["rollback"] for v in web["versions"])


def test_a_kept_image_whose_deploy_failed_is_no_rollback_target(
    tmp_path: Path, docker_host: str, docker_project: str
) -> None:
    """Its release command never ran (a rollback skips it), so `--to` refuses it and says what it can go to."""
    fleet = make_fleet(tmp_path / "f", docker_project, docker_host, {"web": {}})
    repo = fleet.repos["web"]
    first = repo.write_marker("v1")
    deploy(fleet)
    broken = repo.commit_variant("broken_health")
    failed = fleet.wfgen("deploy", "web", "main", "--quiet", timeout=600)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"{fleet.project}/web:{broken[:12]}" in docker(docker_host, "images", "--format",
                                                          "{{.Repository}}:{{.Tag}}").stdout  # fmt: skip
    at = parse_audit_line(audit_lines(fleet)[-1])
    assert at is not None and (at.commit, at.result) == (broken, "failed")
    before, container = audit_lines(fleet), live_id(fleet)

    refused = fleet.wfgen("rollback", "web", "--to", broken[:7], timeout=120)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        f"web: {broken[:7]} never deployed (its deploy failed at {at.at}); can roll back to: none\n"
    )
    assert (audit_lines(fleet), live_id(fleet), served(fleet)) == (before, container, "v1")
    assert not (fleet.state_dir / "locks" / "web").exists()
    assert first == status_of(fleet)["commit"]


def test_a_rollback_target_that_fails_its_health_check_leaves_the_running_one(
    tmp_path: Path, docker_host: str, docker_project: str
) -> None:
    """Without the proxy (the restart cutover); the candidate of a deployed version that no longer answers in
    time never serves. A version whose own deploy failed is no rollback target at all."""
    spec = {"web": {"health": {"deadline_s": 6.0}}}
    fleet = make_fleet(tmp_path / "f", docker_project, docker_host, spec, proxied=False)
    repo = fleet.repos["web"]
    repo.commit_variant("ok", delay_s=2.0)  # answers 2 s after it starts: within 6 s, not within 1 s
    first = repo.write_marker("v1")
    deploy(fleet)
    broken = repo.commit_variant("broken_health")
    assert fleet.wfgen("deploy", "web", "main", "--quiet", timeout=600).returncode == 1  # built, never served

    nothing = fleet.wfgen("rollback", "web", timeout=120)
    assert nothing.returncode == 2
    assert nothing.stderr == f"web: nothing to roll back to: the audit log has no deploy before {first[:7]}\n"
    never = fleet.wfgen("rollback", "web", "--to", broken[:8], timeout=120)
    assert never.returncode == 2
    assert never.stderr.startswith(f"web: {broken[:7]} never deployed (its deploy failed at ")

    repo.commit_variant("ok", delay_s=0.0)
    second = repo.write_marker("v2")
    deploy(fleet)
    fleet.settings["web"]["health"] = {"deadline_s": 1.0}
    write_manifest(fleet, max_parallel=6, proxied=False)
    container = live_id(fleet)
    failed = fleet.wfgen("rollback", "web", timeout=300)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert failed.stderr.startswith("web: candidate never became healthy: ")
    assert failed.stderr.endswith("; running container untouched\n")
    assert (live_id(fleet), served(fleet)) == (container, "v2")
    web = status_of(fleet)
    assert web["commit"] == second and web["serving"]
    newest = web["deploys"][0]
    assert (newest["commit"], newest["result"], newest["action"]) == (first, "failed", "rollback")
    assert not (fleet.state_dir / "locks" / "web").exists()


def test_the_vendored_step_waits_for_the_lock_like_a_deploy_and_writes_the_job_summary(
    tmp_path: Path, docker_host: str, docker_project: str
) -> None:
    """`.github/wfgen/rollback.py` as a job runs it: `python3 -I -S`, inputs in env vars."""
    fleet = make_fleet(tmp_path / "f", docker_project, docker_host, {"web": {}})
    repo = fleet.repos["web"]
    first = repo.write_marker("v1")
    deploy(fleet)
    repo.write_marker("v2")
    deploy(fleet)
    assert fleet.wfgen("render", timeout=120).returncode == 0
    held = fleet.state_dir / "locks" / "web"
    held.mkdir(parents=True)
    (held / "owner").write_text(json.dumps({"holder": "alice", "host": "laptop", "since": steplib.now_iso()}))
    summary = tmp_path / "summary.md"
    env = {
        "PATH": os.environ["PATH"], "HOME": os.environ["HOME"], "DOCKER_HOST": docker_host,
        "WFGEN_SERVICE": "web", "WFGEN_LOCK_WAIT": "1.5", "WFGEN_STATUS_FILE": str(tmp_path / "st.json"),
        "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTOR": "octocat", "GITHUB_RUN_ID": "77",
    }  # fmt: skip
    script = [sys.executable, "-I", "-S", ".github/wfgen/rollback.py"]
    started = time.monotonic()
    locked = subprocess.run(script, cwd=fleet.root, env=env, capture_output=True, text=True, timeout=120)
    assert locked.returncode == 1, locked.stdout + locked.stderr
    assert time.monotonic() - started >= 1.5
    assert "waiting for the lock held by alice@laptop" in locked.stdout
    assert locked.stderr.splitlines()[-1].endswith("; gave up after 1.5 s")
    assert served(fleet) == "v2"
    entry = parse_audit_line(audit_lines(fleet)[-1])
    assert entry is not None and (entry.commit, entry.result, entry.run, entry.action) == (
        first, "failed", "77", "rollback"
    )  # fmt: skip

    held.joinpath("owner").unlink()
    held.rmdir()
    done = subprocess.run(script, cwd=fleet.root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert served(fleet) == "v1"
    status = json.loads((tmp_path / "st.json").read_text())
    assert (status["result"], status["commit"], status["phase"]) == ("deployed", first, "done")
    assert "build" not in [phase["phase"] for phase in status["phases"]]
    lines = summary.read_text(encoding="utf-8").splitlines()
    assert (
        len(lines) == 2
        and lines[0].startswith("❌ rollback of **web**")
        and "gave up after 1.5 s" in lines[0]
    )
    assert lines[1].startswith(f"✅ rollback of **web** from `{repo.head[:7]}` to `{first[:7]}`: deployed: ")


def test_ctrl_c_during_the_health_check_puts_the_running_version_back(
    tmp_path: Path, docker_host: str, docker_project: str
) -> None:
    fleet = make_fleet(tmp_path / "f", docker_project, docker_host, {"web": {"health": {"deadline_s": 60.0}}})
    repo = fleet.repos["web"]
    repo.commit_variant(
        "ok", delay_s=8.0
    )  # its candidate answers only after 8 s: time to interrupt its health
    slow = repo.write_marker("slow")
    deploy(fleet)  # a rollback goes back only to a version that was deployed
    repo.commit_variant("ok", delay_s=0.0)
    repo.write_marker("fast")
    deploy(fleet)
    status_file = fleet.root / ".wfgen" / "rollback" / "web.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "generator", "rollback", "web", "--to", slow], cwd=fleet.root, env=fleet.env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    in_health = lambda: status_file.exists() and json.loads(status_file.read_text())["phase"] == "health"  # noqa: E731
    assert wait_until(in_health, timeout=60, interval=0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert err.splitlines()[-1] == "interrupted"
    assert json.loads(status_file.read_text())["result"] == "cancelled"
    assert served(fleet) == "fast"
    assert not (fleet.state_dir / "locks" / "web").exists()


# --- usage, without a target ----------------------------------------------------------------------


def test_bad_input_is_one_line_and_exit_2_before_the_target_is_asked(tmp_path: Path) -> None:
    manifest = write_resolved_manifest(tmp_path, manifest_toml({"web": {"repository": "o/w", "port": 3000}}))
    summary = tmp_path / "summary.md"
    unknown = run_step("rollback", "--manifest", str(manifest), "--service", "wbe",
                       env={"GITHUB_STEP_SUMMARY": str(summary)})  # fmt: skip
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert unknown.stderr == "wbe: unknown service 'wbe' (did you mean 'web'?); known: web\n"
    assert summary.read_text(encoding="utf-8") == (
        "⛔ rollback of **wbe**: refused: unknown service 'wbe' (did you mean 'web'?); known: web\n"
    )
    summary.unlink()
    newline = run_step("rollback", "--manifest", str(manifest), env={"GITHUB_STEP_SUMMARY": str(summary),
                       "WFGEN_SERVICE": "web\n::error::x"})  # fmt: skip
    assert (newline.returncode, newline.stdout) == (2, "")  # never a raw line break: no `::command::` line
    assert newline.stderr == "rollback: unknown service 'web\\n::error::x'; known: web\n"
    assert summary.read_text(encoding="utf-8") == (
        "⛔ rollback of **rollback**: refused: unknown service 'web\\n::error::x'; known: web\n"
    )
    malformed = run_step("rollback", "--manifest", str(manifest), env={"WFGEN_SERVICE": "web",
                         "WFGEN_ROLLBACK_TO": "HEAD~1"})  # fmt: skip
    assert (malformed.returncode, malformed.stderr) == (
        2, "web: --to: expected a commit or a prefix of 4 to 40 hex digits, got 'HEAD~1'\n"
    )  # fmt: skip


def entry(commit: str, result: str = "deployed") -> AuditEntry:
    return AuditEntry("2026-11-29T14:00:00Z", "alice", "web", commit, result, 3.0, None)


REFS = {C: ["p/web:c"], B: ["p/web:b"], A: ["p/web:a"]}  # newest first


@pytest.mark.parametrize(
    ("running", "refs", "deploys", "to", "expected"),
    [
        (C, REFS, [C, B, A], None, B),
        (C, {C: REFS[C], A: REFS[A]}, [C, B, A], None, A),  # b pruned: the newest kept one before it
        (A, REFS, [A, C, B, A], None, C),  # after a rollback to a, the next goes back to c
        (C, REFS, [C, B, A], "aaaa", A),
        (C, REFS, [C, B], "bbbbbbb", B),  # named: a kept image of a version once deployed
        (C, REFS, [C, A, B], "bbbbbbb", B),  # deployed once, and kept: older than the newest before
    ],
)
def test_the_version_chosen(
    running: str, refs: dict[str, list[str]], deploys: list[str], to: str | None, expected: str
) -> None:
    assert rollback.choose(running, refs, [entry(c) for c in deploys], to) == expected


@pytest.mark.parametrize(
    ("running", "refs", "deploys", "to", "message"),
    [
        (None, REFS, [], None, "nothing to roll back: no container of it runs on the target"),
        (C, {C: REFS[C]}, [entry(C)], None,
         "nothing to roll back to: the audit log has no deploy before ccccccc"),
        (C, {C: REFS[C]}, [entry(C), entry(B), entry(A)], None, "nothing to roll back to: the images of the "
         "versions deployed before ccccccc (bbbbbbb, aaaaaaa) were pruned; kept: ccccccc (running)"),
        (C, REFS, [entry(C), entry(B, "failed")], None,
         "nothing to roll back to: the audit log has no deploy before ccccccc"),
        (C, REFS, [entry(C), entry(A)], "dddd", "dddd was pruned or never built; can roll back to: aaaaaaa"),
        (C, REFS, [entry(C), entry(B, "failed"), entry(A)], "bbbb", "bbbbbbb never deployed (its deploy failed at "
         "2026-11-29T14:00:00Z); can roll back to: aaaaaaa"),
        (C, REFS, [entry(C)], "bbbb", "bbbbbbb never deployed; can roll back to: none"),
        (C, REFS, [entry(C)], "cccc", "ccccccc is already running"),
        (C, {C: REFS[C], "ab1" + "0" * 37: ["p/web:ab1"], "ab2" + "0" * 37: ["p/web:ab2"]}, [entry(C)], "ab00",
         "ab00 was pruned or never built; can roll back to: none"),
        (C, {C: REFS[C], "abcd1" + "0" * 35: ["p/web:1"], "abcd2" + "0" * 35: ["p/web:2"]}, [entry(C)], "abcd",
         "--to abcd is ambiguous: abcd10000000, abcd20000000"),
    ],
    ids=["nothing-runs", "no-earlier-deploy", "pruned", "only-failed-before", "unknown", "failed-only",
         "only-built", "running", "no-match", "ambiguous"],
)  # fmt: skip
def test_why_there_is_nothing_to_roll_back_to(
    running: str | None, refs: dict[str, list[str]], deploys: list[AuditEntry], to: str | None, message: str
) -> None:
    with pytest.raises(steplib.UsageError) as caught:
        rollback.choose(running, refs, deploys, to)
    assert str(caught.value) == message


@pytest.mark.parametrize("to", ["abc", "HEAD", "a" * 41, "-1234", "12 34"])
def test_a_malformed_to_is_refused(to: str) -> None:
    with pytest.raises(
        steplib.UsageError, match="^--to: expected a commit or a prefix of 4 to 40 hex digits"
    ):
        rollback.checked_to(to)
    assert rollback.checked_to("ABCD") == "abcd"

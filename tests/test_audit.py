"""generator/steps/core/audit.py: the audit log's lines, written and read back in every form, and the version a
rollback goes to (the file itself on a real target: tests/test_status.py and tests/test_rollback.py)."""

from __future__ import annotations

import pytest

from generator.steps.core import audit
from generator.steps.core.audit import AuditEntry

SERVICE = "svc"


@pytest.mark.parametrize(
    ("environ", "who", "run"),
    [
        ({"GITHUB_ACTOR": "octocat", "GITHUB_RUN_ID": "123456789"}, "octocat", "123456789"),
        (
            {"WFGEN_RUN_ID": "20261129-142315-ab12", "GITHUB_ACTOR": "dev ops"},
            "dev_ops",
            "20261129-142315-ab12",
        ),
        ({"GITHUB_ACTOR": "octocat"}, "octocat", None),
        (
            {"GITHUB_ACTOR": "octocat", "GITHUB_TRIGGERING_ACTOR": "hubot", "GITHUB_RUN_ID": "123456789"},
            "hubot",
            "123456789",
        ),
        ({"GITHUB_ACTOR": "octocat", "GITHUB_TRIGGERING_ACTOR": " "}, "octocat", None),
    ],
    ids=["workflow", "local", "no-run", "re-run-by-another", "blank-triggering-actor"],
)
def test_an_audit_line_records_who_which_run_and_what(
    environ: dict[str, str], who: str, run: str | None
) -> None:
    line = audit.audit_line(SERVICE, "a" * 40, "deployed", 12.34, environ)
    run_field = [f"run={run}"] if run else []
    assert line.split()[1:] == [who, SERVICE, "a" * 40, "deployed", "12.3s", *run_field, "action=deploy"]
    entry = audit.parse_audit_line(line)
    assert entry is not None
    assert (entry.who, entry.service, entry.commit, entry.result, entry.duration_s, entry.run, entry.action) == (
        who, SERVICE, "a" * 40, "deployed", 12.3, run, "deploy"
    )  # fmt: skip


def test_a_rollback_line_says_so_after_the_run() -> None:
    line = audit.audit_line(SERVICE, "b" * 40, "deployed", 3.0, {"GITHUB_ACTOR": "ana", "GITHUB_RUN_ID": "9"},
                            action="rollback")  # fmt: skip
    assert line.split()[-2:] == ["run=9", "action=rollback"]
    entry = audit.parse_audit_line(line)
    assert entry is not None and (entry.commit, entry.result, entry.action) == (
        "b" * 40,
        "deployed",
        "rollback",
    )
    assert entry.as_json()["action"] == "rollback"


def test_lines_written_before_the_run_or_the_action_was_recorded_still_parse() -> None:
    entry = audit.parse_audit_line("2026-11-29T14:23:37Z alice auth-service - failed 61.0s")
    assert entry == AuditEntry(
        "2026-11-29T14:23:37Z", "alice", "auth-service", None, "failed", 61.0, None, "deploy"
    )
    older = audit.parse_audit_line("2026-11-29T14:23:37Z alice auth-service abc deployed 6.0s run=7")
    assert older is not None and (older.run, older.action) == ("7", "deploy")
    later = audit.parse_audit_line("2026-11-29T14:23:37Z alice auth-service - failed 61.0s run=7 attempt=2")
    assert later is not None and later.run == "7"  # a field added later is skipped, not misread


@pytest.mark.parametrize("line", ["", "2026-11-29T14:23:37Z alice auth-service", "a b c d e f"])
def test_lines_that_are_not_entries_are_skipped(line: str) -> None:
    assert audit.parse_audit_line(line) is None


def entry(
    commit: str, result: str = "deployed", action: str = "deploy", service: str = SERVICE
) -> AuditEntry:
    found = audit.parse_audit_line(
        f"2026-11-29T14:00:00Z alice {service} {commit} {result} 3.0s action={action}"
    )
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("running", "deploys", "kept", "expected"),
    [
        ("b", ["b", "a"], {"a", "b"}, "a"),
        ("b", ["b", "a"], {"b"}, None),  # pruned: nothing to go back to
        ("b", ["b", "b", "a"], {"a", "b"}, "a"),  # a configuration change redeployed the same commit
        ("a", ["a", "b", "a"], {"a", "b"}, "b"),  # back to a after b: the rollback is b
        ("c", ["c", "b", "a"], {"a", "c"}, "a"),  # b was pruned: the newest kept one before it
        (None, ["a"], {"a"}, None),
    ],
)
def test_rollback_goes_to_the_version_deployed_before_the_running_one(
    running: str | None, deploys: list[str], kept: set[str], expected: str | None
) -> None:
    assert audit.rollback_commit(running, [entry(c) for c in deploys], kept) == expected


def test_failed_and_rolled_back_deploys_are_no_rollback_target() -> None:
    deploys = [entry("c", "rolled_back"), entry("b", "failed"), entry("b"), entry("a")]
    assert audit.rollback_commit("b", deploys, {"a", "b", "c"}) == "a"


def test_a_second_rollback_goes_back_again() -> None:
    """b deployed after a, rolled back to a: the rollback entry is a deploy of a, so the next goes to b."""
    deploys = [entry("a", action="rollback"), entry("b"), entry("a")]
    assert audit.rollback_commit("a", deploys, {"a", "b"}) == "b"
    toggled = [entry("b", action="rollback"), *deploys]
    assert audit.rollback_commit("b", toggled, {"a", "b"}) == "a"


def test_service_deploys_are_one_services_newest_first() -> None:
    lines = [entry("a"), entry("x", service="other"), entry("b")]
    assert [e.commit for e in audit.service_deploys(lines, SERVICE)] == ["b", "a"]

"""deployment_summary.py in a real `python -I -S` subprocess, over status files as the jobs leave them."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from generator.steps.core import handoff, steplib
from tests.support.github_output import output_values
from tests.support.manifests import FLEET, fleet_services, manifest_toml, write_resolved_manifest
from tests.support.stepscripts import run_step

T0 = dt.datetime(2026, 11, 29, 14, 23, 15, 120000, tzinfo=dt.UTC)
COMMIT = "9f1c2ab0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6"
# (start offset s, duration s) per leg; sum 150.2 s, wall time max(end) - min(start) = 33.5 - 0.0 s
LEGS = {
    "auth-service": (0.3, 33.2),
    "user-service": (0.4, 20.0),
    "chat-service": (0.9, 25.5),
    "event-service": (0.0, 31.3),
    "shared-service": (1.1, 18.1),
    "splitz-service": (1.5, 22.1),
}
SPEEDUP = "Parallel speedup: 4.5× (sum of leg durations 150.2 s / wall time 33.5 s)"


def iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status(
    service: str, result: str = "deployed", message: str = "deployed", **fields: Any
) -> dict[str, Any]:
    """A finished status in the shape of docs/design.md, timed by LEGS."""
    offset, seconds = LEGS[service]
    started = T0 + dt.timedelta(seconds=offset)
    finished = started + dt.timedelta(seconds=seconds)
    phase = "done" if result in ("deployed", "unchanged") else "health"
    return {
        "service": service,
        "result": result,
        "phase": phase,
        "branch": "main",
        "started_at": iso(started),
        "finished_at": iso(finished),
        "duration_s": seconds,
        "commit": COMMIT,
        "image": f"letzgo/{service}:{COMMIT[:12]}",
        "previous_image": None,
        "message": message,
        "log_path": None,
        "phases": [{"phase": "lock", "at": iso(started)}, {"phase": phase, "at": iso(finished)}],
        **fields,
    }


def write_status(folder: Path, data: dict[str, Any], name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name or data['service']}.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_resolved_manifest(tmp_path, manifest_toml(fleet_services()))


@pytest.fixture
def status_dir(tmp_path: Path) -> Path:
    return tmp_path / "wfgen-status"


def summarize(
    tmp_path: Path, manifest: Path, status_dir: Path, selected: list[str] | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    extra = {"GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), "WFGEN_STATUS_DIR": str(status_dir), **env}
    if selected is not None:
        extra["WFGEN_SELECTED"] = json.dumps(selected)
    return run_step("deployment_summary", "--manifest", str(manifest), env=extra)


def summary_md(tmp_path: Path) -> str:
    return (tmp_path / "summary.md").read_text(encoding="utf-8")


def table_rows(markdown: str) -> dict[str, list[str]]:
    """service -> cells, splitting on unescaped '|' only."""
    rows = {}
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith(("| Service", "| ---")):
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows[cells[0]] = cells
    return rows


def gantt_tasks(markdown: str) -> dict[str, tuple[str, int, int]]:
    """service -> (tags, start ms, end ms) from the mermaid block; checks one section per task."""
    block = markdown.split("```mermaid\n", 1)[1].split("```", 1)[0].splitlines()
    assert block[:3] == ["gantt", "    title Deploy legs", "    dateFormat x"]
    tasks = {}
    section = None
    for line in block:
        if line.startswith("    section "):
            section = line.removeprefix("    section ")
        match = re.fullmatch(r"    (\S+) :((?:crit, )?)leg\d+, (\d+), (\d+)", line)
        if match:
            assert match[1] == section
            tasks[match[1]] = (match[2].strip(", "), int(match[3]), int(match[4]))
    return tasks


def epoch_ms(offset: float) -> int:
    return int((T0 + dt.timedelta(seconds=offset)).timestamp() * 1000)


def test_all_deployed(tmp_path: Path, manifest: Path, status_dir: Path) -> None:
    for service in FLEET:
        write_status(status_dir, status(service))
    result = summarize(tmp_path, manifest, status_dir, list(FLEET))
    assert result.returncode == 0, result.stderr
    markdown = summary_md(tmp_path)
    assert markdown.startswith("## ✅ 6/6 services deployed\n")
    rows = table_rows(markdown)
    assert list(rows) == list(FLEET)
    assert rows["auth-service"] == [
        "auth-service",
        "✅ deployed",
        "33.2 s",
        f"`letzgo/auth-service:{COMMIT[:12]}` · 9f1c2ab",
        "deployed",
    ]
    tasks = gantt_tasks(markdown)
    assert tasks == {
        service: ("", epoch_ms(offset), epoch_ms(offset + seconds))
        for service, (offset, seconds) in LEGS.items()
    }
    assert markdown.rstrip().endswith(SPEEDUP)
    lines = result.stdout.splitlines()
    assert lines[0] == "✅ 6/6 services deployed"
    assert lines[1].split() == ["✅", "auth-service", "deployed", "33.2", "s", "9f1c2ab"]
    assert lines[7] == "Timeline: 0 s to 33.5 s"  # the gantt for a terminal, one bar per leg
    assert lines[11] == f"event-service   |{'█' * 37}{'·' * 3}|"
    assert lines[-1] == SPEEDUP


def test_one_failed_leg(tmp_path: Path, manifest: Path, status_dir: Path) -> None:
    for service in FLEET:
        failed = service == "chat-service"
        data = (
            status(service, "failed", "health: no answer on /health within 60 s")
            if failed
            else status(service)
        )
        write_status(status_dir, data)
    result = summarize(tmp_path, manifest, status_dir, list(FLEET))
    assert result.returncode == 1
    markdown = summary_md(tmp_path)
    assert markdown.startswith("## ❌ 1 of 6 services failed\n")
    assert table_rows(markdown)["chat-service"][1:3] == ["❌ failed", "25.5 s"]
    assert table_rows(markdown)["chat-service"][4] == "health: no answer on /health within 60 s"
    tags = {service: task[0] for service, task in gantt_tasks(markdown).items()}
    assert tags == {service: "crit" if service == "chat-service" else "" for service in FLEET}
    assert "❌ chat-service" in result.stdout and "health: no answer on /health within 60 s" in result.stdout
    assert SPEEDUP in markdown


def test_missing_and_unreadable_reports(tmp_path: Path, manifest: Path, status_dir: Path) -> None:
    for service in FLEET[:4]:
        write_status(status_dir, status(service))
    (status_dir / "shared-service.json").write_text('{"service": "shared-service", "res', encoding="utf-8")
    result = summarize(tmp_path, manifest, status_dir, list(FLEET))
    assert result.returncode == 1
    rows = table_rows(summary_md(tmp_path))
    assert rows["splitz-service"][1:] == ["❔ no report", "—", "—", "no status file"]
    assert rows["shared-service"][1:] == [
        "❔ no report",
        "—",
        "—",
        "unreadable status file shared-service.json",
    ]
    assert summary_md(tmp_path).startswith("## ❌ 2 of 6 services failed\n")
    assert set(gantt_tasks(summary_md(tmp_path))) == set(FLEET[:4])
    offsets = [LEGS[service] for service in FLEET[:4]]
    wall = max(start + took for start, took in offsets) - min(start for start, _ in offsets)
    assert wall == pytest.approx(33.5)
    assert "Parallel speedup: 3.3× (sum of leg durations 110.0 s / wall time 33.5 s)" in summary_md(tmp_path)


def test_leg_that_died_while_running(tmp_path: Path, manifest: Path, status_dir: Path) -> None:
    write_status(status_dir, status("auth-service"))
    running = status(
        "user-service", "running", "building image", phase="build", finished_at=None, duration_s=None
    )
    write_status(status_dir, running)
    result = summarize(tmp_path, manifest, status_dir, ["auth-service", "user-service"])
    assert result.returncode == 1
    row = table_rows(summary_md(tmp_path))["user-service"]
    assert row[1:3] == ["❌ did not finish", "—"]
    assert row[4] == "stopped during build: building image"
    assert "Parallel speedup: 1.0× (sum of leg durations 33.2 s / wall time 33.2 s)" in summary_md(tmp_path)


@pytest.mark.parametrize(
    ("result", "label", "code"),
    [("unchanged", "♻️ unchanged", 0), ("rolled_back", "↩️ rolled back", 1), ("cancelled", "🛑 cancelled", 1)],
)
def test_other_results(
    tmp_path: Path, manifest: Path, status_dir: Path, result: str, label: str, code: int
) -> None:
    write_status(status_dir, status("auth-service"))
    write_status(status_dir, status("user-service", result, "see log"))
    run = summarize(tmp_path, manifest, status_dir, ["auth-service", "user-service"])
    assert run.returncode == code
    assert table_rows(summary_md(tmp_path))["user-service"][1] == label
    heading = "## ✅ 2/2 services deployed (1 unchanged)" if code == 0 else "## ❌ 1 of 2 services failed"
    assert summary_md(tmp_path).splitlines()[0] == heading


def test_nested_artifact_layout_without_selection(tmp_path: Path, manifest: Path, status_dir: Path) -> None:
    """download-artifact nests each leg's upload in a folder; without WFGEN_SELECTED every report counts."""
    for service in ("splitz-service", "auth-service", "event-service"):
        write_status(status_dir / f"wfgen-status-{service}", status(service))
    result = summarize(tmp_path, manifest, status_dir)
    assert result.returncode == 0, result.stderr
    assert list(table_rows(summary_md(tmp_path))) == ["auth-service", "event-service", "splitz-service"]
    assert summary_md(tmp_path).startswith("## ✅ 3/3 services deployed\n")


def test_rerun_keeps_the_newest_report(tmp_path: Path, manifest: Path, status_dir: Path) -> None:
    old = status("auth-service", "failed", "first attempt")
    old.update(started_at="2026-11-29T13:00:00.000Z", finished_at="2026-11-29T13:00:05.000Z", duration_s=5.0)
    write_status(status_dir / "attempt-1", old)
    write_status(status_dir / "attempt-2", status("auth-service"))
    result = summarize(tmp_path, manifest, status_dir, ["auth-service"])
    assert result.returncode == 0, result.stderr
    assert table_rows(summary_md(tmp_path))["auth-service"][1] == "✅ deployed"


def test_pipes_and_newlines_in_messages_stay_in_their_cell(
    tmp_path: Path, manifest: Path, status_dir: Path
) -> None:
    message = "exit 1 | grep said <no>\nsecond line"
    write_status(status_dir, status("auth-service", "failed", message))
    result = summarize(tmp_path, manifest, status_dir, ["auth-service"])
    assert result.returncode == 1
    line = next(line for line in summary_md(tmp_path).splitlines() if line.startswith("| auth-service"))
    assert len(re.findall(r"(?<!\\)\|", line)) == 6
    assert (
        table_rows(summary_md(tmp_path))["auth-service"][4]
        == "exit 1 \\| grep said &lt;no&gt;<br>second line"
    )


@pytest.mark.parametrize("selected", ["auth-service", '{"services": []}', "[1, 2]", '["a"'])
def test_selection_must_be_a_json_list(
    tmp_path: Path, manifest: Path, status_dir: Path, selected: str
) -> None:
    result = summarize(tmp_path, manifest, status_dir, WFGEN_SELECTED=selected)
    assert result.returncode == 2
    expected = (
        f"deployment-summary: --services/WFGEN_SELECTED must be a JSON list of names, got {selected!r}\n"
    )
    assert result.stderr == expected
    assert not (tmp_path / "summary.md").exists()


def test_nothing_reported(tmp_path: Path, manifest: Path, status_dir: Path) -> None:
    result = summarize(tmp_path, manifest, status_dir, list(FLEET[:2]))
    assert result.returncode == 1
    assert "status folder not found" in result.stderr
    rows = table_rows(summary_md(tmp_path))
    assert [row[1] for row in rows.values()] == ["❔ no report", "❔ no report"]
    assert "Parallel speedup: n/a" in summary_md(tmp_path)


def test_failed_infrastructure_check_says_no_leg_started(
    tmp_path: Path, manifest: Path, status_dir: Path
) -> None:
    result = summarize(tmp_path, manifest, status_dir, list(FLEET[:2]), WFGEN_CHECK_RESULT="failure")
    assert result.returncode == 1
    text = summary_md(tmp_path)
    assert text.startswith("## ❌ infrastructure check failed: none of 2 services deployed\n")
    rows = table_rows(text)
    assert [row[1:] for row in rows.values()] == [
        ["⏭️ not started", "—", "—", "infrastructure check: failure"]
    ] * 2
    assert "gantt" not in text


def test_markdown_to_stdout_and_output_file(tmp_path: Path, manifest: Path, status_dir: Path) -> None:
    write_status(status_dir, status("auth-service"))
    report = tmp_path / "report.md"
    args = ("--manifest", str(manifest), "--status-dir", str(status_dir), "--output", str(report))
    result = run_step("deployment_summary", *args)
    assert result.returncode == 0, result.stderr
    markdown = report.read_text(encoding="utf-8")
    assert markdown.startswith("## ✅ 1/1 service deployed\n")
    assert result.stdout.endswith(markdown)
    assert result.stdout.startswith("✅ 1/1 service deployed\n✅ auth-service")


def test_non_utf8_console_under_isolated_python(tmp_path: Path, manifest: Path, status_dir: Path) -> None:
    """LANG=C and no PYTHONIOENCODING: stdout is ASCII; emoji become '?' instead of a crash."""
    write_status(status_dir, status("auth-service"))
    env = {
        "LC_ALL": "C",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "WFGEN_STATUS_DIR": str(status_dir),
    }
    args = ("--manifest", str(manifest))
    result = run_step("deployment_summary", *args, env=env, python_flags=("-X", "utf8=0"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].split() == ["?", "auth-service", "deployed", "33.2", "s", "9f1c2ab"]
    assert "Parallel speedup: 1.0? (" in result.stdout
    assert summary_md(tmp_path).startswith("## ✅ 1/1 service deployed")


def test_reads_status_files_written_by_steplib(tmp_path: Path, manifest: Path, status_dir: Path) -> None:
    """The contract with deploy_service.py: StatusFile's output is what the summary parses."""
    ok = steplib.StatusFile(status_dir / "auth-service.json", "auth-service", "main")
    ok.update(phase="build", commit=COMMIT, image=f"letzgo/auth-service:{COMMIT[:12]}")
    ok.finish("deployed", "deployed letzgo/auth-service")
    bad = steplib.StatusFile(status_dir / "user-service.json", "user-service", "main")
    bad.update(phase="health")
    bad.finish("rolled_back", "unhealthy; kept the previous container")
    result = summarize(tmp_path, manifest, status_dir, ["auth-service", "user-service"])
    assert result.returncode == 1
    rows = table_rows(summary_md(tmp_path))
    assert rows["auth-service"][1] == "✅ deployed" and rows["auth-service"][3].endswith("· 9f1c2ab")
    assert rows["user-service"][1:5:3] == ["↩️ rolled back", "unhealthy; kept the previous container"]
    assert re.search(r"^Parallel speedup: \d+\.\d× \(sum of leg durations", summary_md(tmp_path), re.M)


def test_selection_from_prepare_output(tmp_path: Path, manifest: Path, status_dir: Path) -> None:
    """The workflow passes prepare's `services` output straight into WFGEN_SELECTED."""
    output = tmp_path / "output"
    prepared = run_step(
        "prepare", "--manifest", str(manifest), "--services", "chat-service, auth-service",
        env={"GITHUB_OUTPUT": str(output)},
    )  # fmt: skip
    assert prepared.returncode == 0, prepared.stderr
    write_status(status_dir, status("auth-service"))
    write_status(status_dir, status("splitz-service"))  # not selected: not reported on
    result = summarize(
        tmp_path, manifest, status_dir, WFGEN_SELECTED=output_values(output.read_text())["services"]
    )
    assert result.returncode == 1
    rows = table_rows(summary_md(tmp_path))
    assert {name: row[1] for name, row in rows.items()} == {
        "auth-service": "✅ deployed",
        "chat-service": "❔ no report",
    }


@pytest.mark.parametrize(
    "text",
    [
        '{"service": "user-service", "result": "deployed", "duration_s": ' + "9" * 5000 + "}",
        "[" * 100_000 + "]" * 100_000,
        '{"service": "user-service", "result": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
    ids=["5000-digit number", "deep list", "deep value"],
)
def test_hostile_status_file_is_an_unreadable_report(
    tmp_path: Path, manifest: Path, status_dir: Path, text: str
) -> None:
    write_status(status_dir, status("auth-service"))
    (status_dir / "user-service.json").write_text(text, encoding="utf-8")
    result = summarize(tmp_path, manifest, status_dir, ["auth-service", "user-service"])
    assert (result.returncode, result.stderr) == (1, "")
    assert table_rows(summary_md(tmp_path))["user-service"][1:] == [
        "❔ no report", "—", "—", "unreadable status file user-service.json"
    ]  # fmt: skip


@pytest.mark.parametrize("duration", ["9" * 500, "1e999", "-5", "true", '"12"'])
def test_duration_that_is_not_a_number_of_seconds_is_ignored(
    tmp_path: Path, manifest: Path, status_dir: Path, duration: str
) -> None:
    path = write_status(status_dir, status("auth-service"))
    path.write_text(path.read_text().replace('"duration_s": 33.2', f'"duration_s": {duration}'))
    result = summarize(tmp_path, manifest, status_dir, ["auth-service"])
    assert (result.returncode, result.stderr) == (0, "")
    assert table_rows(summary_md(tmp_path))["auth-service"][2] == "33.2 s"  # from its start and finish
    assert "Parallel speedup: 1.0× (sum of leg durations 33.2 s / wall time 33.2 s)" in summary_md(tmp_path)


def test_every_cell_is_escaped(tmp_path: Path, manifest: Path, status_dir: Path) -> None:
    """result, commit, image and message come from files a leg wrote: none may add markup to the summary."""
    hostile = "<img src=x onerror=alert(1)>|**x**\n## y"
    write_status(status_dir, status("auth-service", hostile, hostile, commit=hostile, image=hostile))
    result = summarize(tmp_path, manifest, status_dir, ["auth-service"])
    assert result.returncode == 1
    markdown = summary_md(tmp_path)
    assert "<img" not in markdown and "\n## y" not in markdown
    line = next(line for line in markdown.splitlines() if line.startswith("| auth-service"))
    assert len(re.findall(r"(?<!\\)\|", line)) == 6


def test_a_skipped_dependent_is_counted_apart_and_fails_the_run(
    tmp_path: Path, manifest: Path, status_dir: Path
) -> None:
    write_status(status_dir, status("auth-service"))
    write_status(status_dir, status("user-service", "failed", "health: no answer"))
    write_status(status_dir, status("chat-service", "skipped", "dependency user-service failed"))
    result = summarize(tmp_path, manifest, status_dir, ["auth-service", "user-service", "chat-service"])
    assert result.returncode == 1
    markdown = summary_md(tmp_path)
    assert markdown.startswith("## ❌ 1 of 3 services failed, 1 skipped\n")
    assert table_rows(markdown)["chat-service"][4] == "dependency user-service failed"


def test_a_service_the_plan_gave_no_leg_is_unchanged(
    tmp_path: Path, manifest: Path, status_dir: Path
) -> None:
    write_status(status_dir, status("chat-service", plan_id="5eed5eed5eed5eed"))
    services = [
        {"service": "auth-service", "verdict": "unchanged", "reason": "faf10ca runs already", "running": COMMIT,
         "desired": COMMIT, "changes": [], "wave": 1, "needs": [], "outside": []},
        {"service": "chat-service", "verdict": "deploy", "reason": "1c2d3e4 → 9f1c2ab", "running": "1c2d3e4" * 6,
         "desired": COMMIT, "changes": ["9f1c2ab chat: typing"], "wave": 2, "needs": ["auth-service"],
         "outside": []},
    ]  # fmt: skip
    plan = {"id": "5eed5eed5eed5eed", "branch": "main", "force_rebuild": False, "event": "push",
            "legs": ["chat-service"], "waves": [[], ["chat-service"]], "services": services}  # fmt: skip
    selected = ["auth-service", "chat-service"]
    result = summarize(tmp_path, manifest, status_dir, selected, WFGEN_PLAN=handoff.encode(plan))
    assert result.returncode == 0, result.stderr
    markdown = summary_md(tmp_path)
    assert markdown.startswith("## ✅ 2/2 services deployed (1 unchanged)")
    assert table_rows(markdown)["auth-service"][1] == "♻️ unchanged"
    assert table_rows(markdown)["auth-service"][4] == f"{COMMIT[:7]} runs already; no deploy job"


def test_a_report_of_another_attempt_is_not_news_and_a_bad_plan_is_said(
    tmp_path: Path, manifest: Path, status_dir: Path
) -> None:
    write_status(status_dir, status("auth-service", plan_id="0ld0ld0ld0ld0ld0"))  # before "Re-run all jobs"
    plan = {"id": "5eed5eed5eed5eed", "branch": "main", "legs": ["auth-service"],
            "services": [{"service": "auth-service", "running": None, "desired": COMMIT, "needs": []}]}  # fmt: skip
    result = summarize(tmp_path, manifest, status_dir, ["auth-service"], WFGEN_PLAN=handoff.encode(plan))
    assert result.returncode == 1
    assert table_rows(summary_md(tmp_path))["auth-service"][4] == "no status file"
    write_status(status_dir, status("auth-service"))
    broken = summarize(tmp_path, manifest, status_dir, ["auth-service"], WFGEN_PLAN="zz")
    assert broken.returncode == 0, broken.stderr  # the report is still written
    assert "WFGEN_PLAN: not the plan of this run" in broken.stderr
    assert summary_md(tmp_path).split("## ")[-1].startswith("✅ 1/1 service deployed")  # appended

"""The run folder: sortable ids, the `latest` pointer, log tails, timing figures, what summary.md adds."""

from __future__ import annotations

import subprocess
from pathlib import Path

from generator.local.legs import Leg
from generator.local.runlog import (
    create_run,
    details_markdown,
    latest_run,
    point_latest,
    tail,
    timing,
    write_run,
)


def test_run_ids_are_unique_sortable_and_latest_follows(tmp_path: Path) -> None:
    assert latest_run(tmp_path) is None
    ids = []
    for _ in range(3):
        run_id, folder = create_run(tmp_path)
        write_run(folder, {"run_id": run_id})
        point_latest(tmp_path, run_id)
        ids.append(run_id)
        assert latest_run(tmp_path) == folder.resolve()
    assert len(set(ids)) == 3 and all(len(run_id) == len("20261129-142315-ab12") for run_id in ids)
    assert sorted(ids, key=lambda i: i[:15]) == ids  # time prefix never goes backwards


def test_the_runs_stay_out_of_the_users_repository(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, timeout=30)
    run_id, folder = create_run(tmp_path)
    write_run(folder, {"run_id": run_id})
    point_latest(tmp_path, run_id)
    status = subprocess.run(["git", "-C", str(tmp_path), "status", "--porcelain", "--ignored"],
                            capture_output=True, text=True, check=True, timeout=30)  # fmt: skip
    assert status.stdout == "!! .wfgen/\n"  # ignored, not untracked
    create_run(tmp_path)  # a second run keeps the file as it is
    assert (tmp_path / ".wfgen" / "runs" / ".gitignore").read_text().endswith("\n*\n")


def test_latest_without_a_pointer_is_the_newest_folder(tmp_path: Path) -> None:
    runs = tmp_path / ".wfgen" / "runs"
    for run_id in ("20261129-142315-ab12", "20261130-080000-0001"):
        (runs / run_id).mkdir(parents=True)
        write_run(runs / run_id, {"run_id": run_id})
    assert latest_run(tmp_path) == runs / "20261130-080000-0001"


def test_tail_reads_the_end_of_a_big_log(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"{i:06d} {'x' * 100}\n" for i in range(20000)))
    assert [line[:6] for line in tail(log, 3)] == ["019997", "019998", "019999"]
    assert tail(tmp_path / "missing.log") == []


def test_timing_uses_the_runner_clock_for_wall_time(tmp_path: Path) -> None:
    legs = []
    for name, (start, end) in {"a": (10.0, 20.0), "b": (11.0, 31.0), "c": (12.0, 17.0)}.items():
        leg = Leg(name, "main", tmp_path / f"{name}.json", tmp_path / f"{name}.log", result="deployed")
        leg.started, leg.ended = start, end
        legs.append(leg)
    legs.append(Leg("never", "main", tmp_path / "n.json", tmp_path / "n.log", result="skipped"))
    figures = timing(legs)
    assert figures == {"deploy_wall_s": 21.0, "sum_s": 35.0, "slowest_s": 20.0, "speedup": 1.67}


def test_details_name_the_run_and_show_failed_logs(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("".join(f"line {i}\n" for i in range(40)) + "``` closes the fence\n", encoding="utf-8")
    record = {
        "run_id": "r1", "run_dir": str(tmp_path), "inputs": {"branch": "main", "force_rebuild": True},
        "wall_s": 12.0,
        "services": {
            "a": {"result": "failed", "log_path": str(log), "message": "<b>boom</b> | x"},
            "b": {"result": "deployed", "log_path": str(log), "message": ""},
        },
    }  # fmt: skip
    text = details_markdown(record, tmp_path)
    assert text.startswith("### Run r1\n\nBranch `main`, force rebuild: yes; run time 12.0 s; logs in `.`.\n")
    assert "#### a: &lt;b&gt;boom&lt;/b&gt; \\| x\n" in text and "#### b" not in text
    assert text.endswith("line 39\n''' closes the fence\n```\n")


def test_details_say_why_nothing_was_deployed(tmp_path: Path) -> None:
    (tmp_path / "check-infrastructure.log").write_text("✗ network app-net — missing\n", encoding="utf-8")
    record = {
        "run_id": "r2", "run_dir": str(tmp_path), "inputs": {"branch": "main", "force_rebuild": False},
        "wall_s": 0.5, "message": "infrastructure check failed; nothing deployed",
        "services": {"a": {"result": "skipped", "log_path": None, "message": ""}},
    }  # fmt: skip
    text = details_markdown(record, tmp_path)
    assert "**infrastructure check failed; nothing deployed**" in text
    assert "✗ network app-net — missing" in text

"""One `wfgen deploy` run after its checks passed: the run folder, the plan against the target, the deploy
legs as child processes with live progress, then the summary (run.json, summary.md, the terminal)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from generator.errors import ExitCode
from generator.local.deploy_options import DeployOptions
from generator.local.interrupts import Interrupts
from generator.local.legs import Leg, LegPool, write_never_started
from generator.local.progress import Reporter, make_reporter
from generator.local.runlog import create_run, details_markdown, leg_record, point_latest, timing, write_run
from generator.local.steprun import step_argv
from generator.steps import deployment_summary, plan, prepare
from generator.steps.core import config, handoff
from generator.steps.core.steplib import JOB_MARGIN_MINUTES, RESULTS_OK, now_iso, write_json_atomic
from generator.steps.core.transport import CommandFailed, TargetError

POLL_S = 0.2
CANCEL_GRACE_S = 60.0


def deploy_argv(leg: Leg, manifest: Path, repo_root: Path, plan_text: str) -> list[str]:
    """The deploy job's step for one leg, with the resolved manifest this run wrote and the plan (the leg
    deploys the commit it showed, not what the branch points to once the leg starts)."""
    args = ["--service", leg.service, "--branch", leg.branch, "--status-file", str(leg.status_path)]
    args += ["--plan", plan_text]
    return step_argv("deploy_service", *args, "--manifest", str(manifest), "--repo-root", str(repo_root))


class Run:
    """One run folder: infrastructure check, the deploy legs, run.json and summary.md."""

    def __init__(
        self,
        options: DeployOptions,
        resolved: dict[str, Any],
        view: config.Manifest,
        plan: prepare.Plan,
        env: dict[str, str],
        stream: TextIO,
        interrupts: Interrupts,
    ):
        self.options, self.resolved, self.plan, self.interrupts = options, resolved, plan, interrupts
        self.view = view  # what the steps see of the manifest
        self.branch = plan.branch
        self.environment = view.project.environment  # None without [environments]
        self.root = options.manifest.resolve().parent
        self.run_id, self.dir = create_run(self.root)
        point_latest(self.root, self.run_id)
        self.env = {**env, "WFGEN_RUN_ID": self.run_id}
        self.stream = stream
        self.reporter: Reporter = make_reporter(stream, mode=options.output)
        self.legs = [
            Leg(name, self.branch, self.dir / f"{name}.json", self.dir / f"{name}.log")
            for name in plan.services
        ]
        self.max_parallel = options.max_parallel or int(resolved["project"]["max_parallel"])
        self.started_at, self.t0 = now_iso(), time.monotonic()
        self.stage, self.message, self.check_result = "infrastructure", "", "success"
        self.document: dict[str, Any] | None = None  # the plan, once the target has been asked
        (self.dir / "manifest.json").write_text(json.dumps(resolved, indent=2) + "\n", encoding="utf-8")
        self.save(state="running")

    def execute(self, check: tuple[int, str, str]) -> int:
        count = len(self.legs)
        self.reporter.note(
            "📋",
            "run",
            f"{self.run_id}: {count} service(s), branch {self.branch}"
            + (f" to {self.environment}, " if self.environment else ", ")
            + f"at most {self.max_parallel} in parallel, log folder {self.dir}",
        )
        for note in self.plan.notes:
            self.reporter.note("📋", "prepare", note)
        if not self.check_infrastructure(*check):
            return self.finish()
        self.stage = "plan"
        if not self.plan_against_target():
            return self.finish()
        self.stage = "deploy"
        self.deploy_legs()
        return self.finish()

    def check_infrastructure(self, code: int, out: str, err: str) -> bool:
        (self.dir / "check-infrastructure.log").write_text(out + err, encoding="utf-8")
        if code == 0:
            self.reporter.block("check-infrastructure", out)
            return True
        if self.options.output == "quiet":
            print(out + err, file=sys.stderr, end="")
        else:
            self.reporter.block("check-infrastructure", out + err)
        interrupted = code == ExitCode.INTERRUPTED
        self.check_result = "cancelled" if interrupted else "failure"  # as the workflow's `needs` reports it
        self.message = "interrupted" if interrupted else "infrastructure check failed; nothing deployed"
        self.never_start("cancelled" if interrupted else "skipped", self.message)
        return False

    def plan_against_target(self) -> bool:
        """The plan step's verdicts; with --only-changed, the legs of what differs from what runs."""
        try:
            self.document = plan.assess_selection(
                self.view, self.plan, event="push" if self.options.only_changed else "local",
                repo_root=str(self.root), environ=self.env,
            )  # fmt: skip
        except (TargetError, CommandFailed, OSError) as exc:
            self.message = f"plan: cannot read what runs: {exc}"
        if self.interrupts.requested:  # Ctrl-C reaches the plan's git and docker too: not their failure
            self.message = "interrupted"
        if self.message or self.document is None:
            self.reporter.note("❌", "plan", self.message)
            self.never_start("cancelled" if self.interrupts.requested else "skipped", self.message)
            return False
        self.reporter.block("plan", plan.text(self.document))
        (self.dir / "plan.json").write_text(json.dumps(self.document, indent=2) + "\n", encoding="utf-8")
        for name, status in handoff.without_legs(self.document).items():
            write_json_atomic(self.dir / f"{name}.json", status)
        self.legs = [leg for leg in self.legs if leg.service in self.document["legs"]]
        self.save(state="running")
        return True

    def never_start(self, result: str, message: str) -> None:
        for leg in self.legs:
            leg.result, leg.message = result, message
            write_never_started(leg)

    def deploy_legs(self) -> None:
        # As the job's timeout-minutes: the leg's own deadline comes first and its cleanup runs before this.
        minutes = float(self.resolved["project"]["deploy_timeout_minutes"]) + JOB_MARGIN_MINUTES
        timeout_s = 60.0 * minutes
        # The plan's `needs`, the selected dependencies; one with no leg (unchanged on a push) is met.
        planned = self.document["services"] if self.document else []
        pool = LegPool(
            self.legs,
            self.leg_argv,
            self.env,
            self.max_parallel,
            fail_fast=self.options.fail_fast,
            cwd=self.root,
            depends_on={item["service"]: item["needs"] for item in planned},
        )
        self.reporter.begin(self.legs)
        try:
            self.watch(pool, timeout_s)
        finally:
            pool.kill()
            pool.close()
            self.reporter.end()

    def watch(self, pool: LegPool, timeout_s: float) -> None:
        cancelled_at = killed_at = None
        while not pool.done:
            now = time.monotonic()
            if self.interrupts.requested and cancelled_at is None:
                cancelled_at = now
                self.reporter.note("🛑", "run", "interrupted: stopping; Ctrl-C again kills the deploys")
                for event in pool.cancel():
                    self.reporter.event(event, self.legs)
            wants_kill = self.interrupts.kill_requested or (
                cancelled_at and now - cancelled_at > CANCEL_GRACE_S
            )
            if wants_kill and killed_at is None:
                killed_at = now
                self.reporter.note("💀", "run", "killing the remaining deploys")
                pool.kill()
            if killed_at is not None and now - killed_at > 15:
                break  # children that ignore SIGKILL (stuck in the kernel) are not worth hanging for
            pool.enforce_timeout(timeout_s)
            for event in pool.step():
                self.reporter.event(event, self.legs)
            self.reporter.tick(self.legs)
            if not pool.done:
                pool.wait(POLL_S)
        for leg in self.legs:
            if not leg.finished:
                leg.result, leg.message = "cancelled", "did not exit after SIGKILL"

    def leg_argv(self, leg: Leg) -> list[str]:
        assert self.document is not None  # plan_against_target: no legs without a plan
        return deploy_argv(leg, self.dir / "manifest.json", self.root, handoff.encode(self.document))

    def finish(self) -> int:
        interrupted = self.interrupts.requested
        if interrupted:
            code = ExitCode.INTERRUPTED
        else:
            code = ExitCode.OK if all(leg.result in RESULTS_OK for leg in self.legs) else ExitCode.FAILED
        record = self.save(state="interrupted" if interrupted else "finished", exit_code=int(code))
        report = self.report()
        planned = plan.markdown(self.document) if self.document else ""
        summary = planned + deployment_summary.markdown(report) + "\n" + details_markdown(record, Path.cwd())
        (self.dir / "summary.md").write_text(summary, encoding="utf-8")
        if self.options.output == "json":
            print(json.dumps(record, indent=2), file=self.stream, flush=True)
        else:
            self.reporter.summary(report, record, Path.cwd())
        return code

    def report(self) -> deployment_summary.Report:
        """The deployment-summary job's report over this run's status files."""
        selected = list(self.plan.services)
        paths = {name: self.dir / f"{name}.json" for name in selected}
        found = {
            name: (path, deployment_summary.load_status(path))
            for name, path in paths.items()
            if path.exists()
        }
        return deployment_summary.build_report(
            selected, found, list(self.resolved["services"]), self.check_result
        )

    def save(self, *, state: str, exit_code: int | None = None) -> dict[str, Any]:
        record: dict[str, Any] = {
            "run_id": self.run_id,
            "run_dir": str(self.dir),
            "manifest": str(self.options.manifest.resolve()),
            "inputs": {
                "services": list(self.plan.services),
                "branch": self.branch,
                "environment": self.environment,
                "force_rebuild": self.options.force_rebuild,
                "max_parallel": self.max_parallel,
                "fail_fast": self.options.fail_fast,
                "only_changed": self.options.only_changed,
                "retry_of": self.options.retry_of,
            },
            "state": state,
            "stage": self.stage,
            "message": self.message,
            "exit_code": exit_code,
            "started_at": self.started_at,
            "finished_at": None if state == "running" else now_iso(),
            "wall_s": round(time.monotonic() - self.t0, 3),
            **timing(self.legs),
            "services": {leg.service: leg_record(leg) for leg in self.legs},
        }
        write_run(self.dir, record)
        return record

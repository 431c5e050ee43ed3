"""Roll one service back: to the version deployed before the running one, or `--to` another image kept on the
target, through the deploy's own health-gated cutover, lock, audit line and status file; no build, no prune.

The version is chosen first, read-only; anything that makes the rollback impossible is one line and exit 2,
with nothing touched. Stdlib only; runs under `python3 -I -S`. Each option falls back to an env var.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .core import config, config_load, github_deployments, steplib
from .core.audit import AuditEntry, audit_path, read_audit, rollback_commit, service_deploys
from .core.names import is_safe_git_ref
from .core.report_text import append_step_summary, markdown_cell, result_icon
from .core.target import open_target
from .core.transport import CommandFailed, Target, TargetError
from .deploy_service import Cancelled, cancel_on_signals, lock_wait_seconds, redactions
from .engine import changes, images
from .engine.changes import short
from .engine.delivery import Outcome
from .engine.deployment import Deployment, Settings
from .engine.proxy import live_name

COMMIT_PREFIX = re.compile(r"[0-9a-f]{4,40}")
ENDED = {"failed": "failed", "cancelled": "was cancelled", "skipped": "was skipped"}  # an audit line's result
SIGNALS = frozenset({"SIGINT", "SIGTERM"})  # a cancel by one of these exits 130; by the deadline, 1


@dataclass(frozen=True)
class Request:
    """What to roll back, as given (argparse, env vars, or `wfgen rollback`)."""

    service: str | None
    to: str | None = None
    lock_wait: str | None = None
    status_file: str | None = None


@dataclass(frozen=True)
class Choice:
    running: str  # the commit the live container runs
    commit: str  # the commit to go back to
    image: str  # its kept image (a tag)
    branch: str  # what that image was built from


def build_parser() -> argparse.ArgumentParser:
    env = steplib.env_default
    parser = argparse.ArgumentParser(description="Roll one service back with a health-gated cutover.")
    steplib.add_manifest_option(parser)
    parser.add_argument("--service", default=env("WFGEN_SERVICE"), help="service name (env WFGEN_SERVICE)")
    parser.add_argument(
        "--to",
        default=env("WFGEN_ROLLBACK_TO"),
        help="commit (or a unique prefix of 4+ hex digits) of a kept image; default: the version deployed "
        "before the running one (env WFGEN_ROLLBACK_TO)",
    )
    parser.add_argument(
        "--status-file", default=env("WFGEN_STATUS_FILE"), help="status JSON (env WFGEN_STATUS_FILE)"
    )
    parser.add_argument("--lock-wait", default=env("WFGEN_LOCK_WAIT"), help="seconds to wait for the lock")
    return parser


def checked_to(to: str | None) -> str | None:
    if to is None or to == "":
        return None
    if not COMMIT_PREFIX.fullmatch(to.lower()):
        raise steplib.UsageError(f"--to: expected a commit or a prefix of 4 to 40 hex digits, got {to!r}")
    return to.lower()


def choose(
    running: str | None, refs: dict[str, list[str]], deploys: Sequence[AuditEntry], to: str | None
) -> str:
    """The commit to go back to; UsageError saying why there is none. `running`: the live container's
    commit; `refs`: images.kept_refs; `deploys`: the service's audit entries, newest first."""
    if running is None:
        raise steplib.UsageError("nothing to roll back: no container of it runs on the target")
    return back_to(running, deploys, refs) if to is None else named(running, refs, deploys, to)


def back_to(running: str, deploys: Sequence[AuditEntry], refs: dict[str, list[str]]) -> str:
    """The default: the version deployed before the running one, when its image is kept."""
    found = rollback_commit(running, deploys, refs)
    if found:
        return found
    deployed = (entry.commit for entry in deploys if entry.result == "deployed" and entry.commit != running)
    earlier = [short(commit) for commit in dict.fromkeys(deployed)]
    if not earlier:
        problem = f"the audit log has no deploy before {short(running)}"
        raise steplib.UsageError(f"nothing to roll back to: {problem}")
    raise steplib.UsageError(
        f"nothing to roll back to: the images of the versions deployed before {short(running)} "
        f"({', '.join(earlier[:5])}) were pruned; kept: {kept_list(running, refs)}"
    )


def named(running: str, refs: dict[str, list[str]], deploys: Sequence[AuditEntry], to: str) -> str:
    """`--to`: a kept image of a commit the audit log says was deployed. One that never was (its deploy
    failed, or it was only built) never ran its release command, which a rollback skips."""
    matches = sorted(commit for commit in {*refs, running} if commit.startswith(to))
    if not matches:
        raise steplib.UsageError(
            f"{to} was pruned or never built; can roll back to: {eligible(running, refs, deploys)}"
        )
    if len(matches) > 1:
        raise steplib.UsageError(f"--to {to} is ambiguous: {', '.join(c[:12] for c in matches)}")
    commit = matches[0]
    if commit == running:
        raise steplib.UsageError(f"{short(running)} is already running")
    if not any(entry.commit == commit and entry.result == "deployed" for entry in deploys):
        failed = next(
            (entry for entry in deploys if entry.commit == commit and entry.result != "unchanged"), None
        )
        ended = ENDED.get(failed.result, f"ended {failed.result}") if failed else ""
        why = f" (its {failed.action} {ended} at {failed.at})" if failed else ""
        raise steplib.UsageError(
            f"{short(commit)} never deployed{why}; can roll back to: {eligible(running, refs, deploys)}"
        )
    return commit


def eligible(running: str, refs: dict[str, list[str]], deploys: Sequence[AuditEntry]) -> str:
    """The kept versions a rollback may go to (deployed once, not running), newest first."""
    deployed = {entry.commit for entry in deploys if entry.result == "deployed"}
    return ", ".join(short(c) for c in refs if c != running and c in deployed) or "none"


def kept_list(running: str, refs: dict[str, list[str]]) -> str:
    """`abc1234 (running), def5678`: the kept versions, newest first."""
    return ", ".join(short(c) + (" (running)" if c == running else "") for c in refs) or "none"


def choose_on(target: Target, manifest: config.Manifest, service: config.Service, to: str | None) -> Choice:
    """Read what runs, the kept images and the audit log (at once), then choose; touches nothing."""
    log_path = audit_path(target, manifest.target.state_dir)  # reaches the target once before the threads
    with ThreadPoolExecutor(max_workers=3) as pool:
        live = pool.submit(changes.running_versions, target, manifest, [service.name])
        kept = pool.submit(images.project_images, target, manifest.project.name, service.name)
        audit = pool.submit(read_audit, target, log_path)
        running, rows, (entries, note) = live.result().get(service.name), kept.result(), audit.result()
    if note:  # --to too: only the audit log tells a version that was deployed from one merely built
        raise steplib.UsageError(f"nothing to roll back to: {note}")
    if running is not None and running.commit is None:
        name = live_name(manifest, service)
        raise steplib.UsageError(f"nothing to roll back: the container {name} has no wfgen.commit label")
    now = running.commit if running else None
    refs = images.kept_refs(rows)
    commit = choose(now, refs, service_deploys(entries, service.name), to)
    assert now is not None  # choose() refuses a service that runs nothing
    preferred = images.image_name(manifest, service.name, commit)  # one commit may have several tags
    image = preferred if preferred in refs[commit] else refs[commit][0]
    branch = next((row.labels.get("wfgen.branch", "") for row in rows if row.ref == image), "")
    return Choice(now, commit, image, branch)


class Rollback(Deployment):
    """A deploy of a kept image: the same lock, cutover, restore and audit, with source and build replaced
    by a check that the image is still there."""

    action = "rollback"

    def __init__(
        self,
        manifest: config.Manifest,
        settings: Settings,
        target: Target,
        status: steplib.StatusFile,
        choice: Choice,
    ):
        super().__init__(manifest, settings, target, status)
        self.choice = choice
        self.commit = choice.commit  # the audit line names it even when the lock never came
        self.cancelled_by: str | None = None

    def opening(self) -> str:
        frm, to = short(self.choice.running), short(self.choice.commit)
        return f"rolling back from {frm} to {to} on port {self.service.port}"

    def source(self) -> str:
        """The chosen image, still there, and the running version still the one it was chosen against (a
        deploy that held the lock meanwhile may have changed it: then the choice is stale)."""
        image = self.choice.image
        self.status.update(phase="source", message=f"checking {image}", commit=self.commit, image=image)
        if images.image_id(self.target, image) is None:
            raise Outcome("failed", f"image {image} is gone from the target (pruned meanwhile?)")
        now = changes.running_versions(self.target, self.manifest, [self.name]).get(self.name)
        if now is None or now.commit != self.choice.running:
            what = short(now.commit if now else None)
            raise Outcome("failed", f"the running version changed to {what} while this rollback waited")
        self.log(f"image {image} is kept on the target; no build")
        return image

    def provide(self, image: str) -> str:
        return image  # kept on the target: nothing to build or pull

    def release(self, image: str, env_file: str | None) -> None:
        """Nothing: the version rolled back to ran its release command when it was deployed (migrations go
        forward only; undoing one is the application's own, deliberate release)."""
        if self.service.release is not None:
            self.log(f"not running the release command: {short(self.commit)} ran it when it was deployed")

    def prune(self, image: str, old: object) -> None:
        """Nothing: the version this rollback replaces is the next rollback's, and no image was added."""

    def done(self) -> str:
        return f"rolled back to {short(self.commit)} in {self.elapsed():.0f} s"

    def on_cancel(self, signal_name: str) -> tuple[str, str]:
        self.cancelled_by = signal_name
        return super().on_cancel(signal_name)


def run(manifest: config.Manifest, request: Request) -> int:
    """The rollback of request.service; the exit code (130 when a signal cancelled it)."""
    subject = steplib.log_subject(request.service, "rollback")
    try:
        service = manifest.service(request.service)
        to, wait_s = checked_to(request.to), lock_wait_seconds(request.lock_wait, manifest)
    except steplib.UsageError as exc:
        return refused(subject, str(exc))
    name = service.name
    try:
        with (
            cancel_on_signals(60.0 * manifest.project.deploy_timeout_minutes),
            open_target(manifest.target, os.environ) as target,
            steplib.redacting(*redactions(manifest, service, target)),
        ):
            try:
                choice = choose_on(target, manifest, service, to)
            except (TargetError, CommandFailed, OSError) as exc:
                problem = f"cannot read what runs on the target: {target.redact(str(exc))}"
                steplib.error(name, problem)
                summarize(name, "failed", problem)
                return steplib.Exit.FAILED
            branch = choice.branch if is_safe_git_ref(choice.branch) else manifest.project.branches[0]
            settings = Settings(service, branch, False, wait_s, str(Path.cwd()))
            status_path = request.status_file or f"wfgen-status/{name}.json"
            try:
                status = steplib.StatusFile(status_path, name, branch)
            except OSError as exc:
                return refused(name, f"--status-file {status_path}: cannot write ({exc.strerror})")
            github = github_deployments.recorder(manifest, service)
            if github is not None:
                github.start(choice.commit, branch, kind="rollback")
            rollback = Rollback(manifest, settings, target, status, choice)
            result = rollback.run(cancelled=Cancelled)
            if github is not None:
                github.finish(result, str(status.data["message"]))
                status.update(github=github.record())
            summarize(name, result, str(status.data["message"]), choice)
    except steplib.UsageError as exc:
        return refused(name, str(exc))
    except Cancelled as exc:
        steplib.error(name, "cancelled before the rollback started")
        return steplib.Exit.INTERRUPTED if str(exc) in SIGNALS else steplib.Exit.FAILED
    if result == "cancelled" and rollback.cancelled_by in SIGNALS:
        return steplib.Exit.INTERRUPTED
    return steplib.Exit.OK if result in steplib.RESULTS_OK else steplib.Exit.FAILED


def refused(subject: str, problem: str) -> int:
    steplib.error(subject, problem)
    summarize(subject, "refused", problem)
    return steplib.Exit.USAGE


def summarize(service: str, result: str, message: str, choice: Choice | None = None) -> None:
    """One line of Markdown in the job summary, when there is one."""
    icon = result_icon(result) if result != "refused" else "⛔"
    moved = f" from `{short(choice.running)}` to `{short(choice.commit)}`" if choice else ""
    cell = markdown_cell(steplib.redact(message))
    append_step_summary(f"{icon} rollback of **{service}**{moved}: {result}: {cell}\n")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        manifest = config_load.load(args.manifest)
    except steplib.UsageError as exc:
        return refused(steplib.log_subject(args.service, "rollback"), str(exc))
    return run(manifest, Request(args.service, args.to, args.lock_wait, args.status_file))


if __name__ == "__main__":
    raise SystemExit(main())

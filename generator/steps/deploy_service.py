"""Deploy one service: lock, source, image, health-gated cutover, prune, audit; never downs a healthy one.

Stdlib only; runs under `python3 -I -S`. Each option falls back to an env var (see --help, docs/design.md).
Test hook: WFGEN_TEST_BEFORE_SWITCH, a shell command run here after the candidate is healthy and before the
switch (the tests use it to make the final start fail for real); unset in normal use.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from .core import config, config_load, github_deployments, handoff, order, steplib
from .core.names import is_commit
from .core.target import open_target
from .core.transport import Target
from .engine import source
from .engine.deployment import Deployment, Settings, hold_signals

EMPTY_PLAN = "WFGEN_PLAN is empty: the plan job's output did not reach this leg"
RESULT_EXIT = {"deployed": steplib.Exit.OK, "unchanged": steplib.Exit.OK}


class Cancelled(BaseException):
    """SIGTERM/SIGINT/the deadline: a BaseException so no `except Exception` on the way swallows it."""


def _cancel(signum: int, _frame: FrameType | None) -> None:
    # One cancel is enough: ignore repeats so the restore that follows runs to its end (steps have timeouts).
    hold_signals()
    if signum == signal.SIGALRM:
        raise Cancelled("the deadline of project.deploy_timeout_minutes")
    raise Cancelled(signal.Signals(signum).name)


@contextlib.contextmanager
def cancel_on_signals(deadline_s: float) -> Iterator[None]:
    """Within the block, SIGTERM, SIGINT and the deadline raise Cancelled; handlers restored afterwards."""
    previous = {sig: signal.signal(sig, _cancel) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)}
    signal.setitimer(signal.ITIMER_REAL, deadline_s)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def build_parser() -> argparse.ArgumentParser:
    env = steplib.env_default
    parser = argparse.ArgumentParser(description="Deploy one service with a health-gated cutover.")
    steplib.add_manifest_option(parser)
    parser.add_argument("--service", default=env("WFGEN_SERVICE"), help="service name (env WFGEN_SERVICE)")
    parser.add_argument("--branch", default=env("WFGEN_BRANCH"), help="branch to deploy (env WFGEN_BRANCH)")
    parser.add_argument(
        "--force-rebuild",
        nargs="?",
        const="true",
        default=env("WFGEN_FORCE_REBUILD", "false"),
        help="rebuild even if the image exists (env WFGEN_FORCE_REBUILD)",
    )
    parser.add_argument(
        "--status-file", default=env("WFGEN_STATUS_FILE"), help="status JSON (env WFGEN_STATUS_FILE)"
    )
    parser.add_argument("--lock-wait", default=env("WFGEN_LOCK_WAIT"), help="seconds to wait for the lock")
    parser.add_argument(
        "--repo-root", default=env("WFGEN_REPO_ROOT", "."), help="checkout for 'path' services"
    )
    parser.add_argument(
        "--plan-id",
        default=env("WFGEN_PLAN_ID"),
        help="the run's plan, stamped on the report (env WFGEN_PLAN_ID)",
    )
    parser.add_argument(
        "--plan", default=env("WFGEN_PLAN"), help="the run's plan, from plan.py (env WFGEN_PLAN)"
    )
    parser.add_argument(
        "--commit",
        default=env("WFGEN_COMMIT"),
        help="the commit to deploy, as the plan showed it; default: the plan's, else the branch's head "
        "(env WFGEN_COMMIT)",
    )
    parser.add_argument(
        "--dependency-dir",
        default=env("WFGEN_DEPENDENCY_DIR"),
        help="status reports of the earlier waves; with --plan, skip when a dependency did not deploy "
        "(env WFGEN_DEPENDENCY_DIR)",
    )
    return parser


def settings_from(args: argparse.Namespace, manifest: config.Manifest) -> Settings:
    """Validated inputs; UsageError on anything wrong."""
    service = manifest.service(args.service)
    if not args.branch:
        raise steplib.UsageError("no branch: pass --branch or set WFGEN_BRANCH")
    return Settings(
        service=service,
        branch=args.branch,
        force_rebuild=steplib.parse_bool(args.force_rebuild, what="--force-rebuild"),
        lock_wait_s=lock_wait_seconds(args.lock_wait, manifest),
        repo_root=str(Path(args.repo_root).resolve()),
    )


def planned_commit(args: argparse.Namespace, service: str) -> str | None:
    """The commit this leg deploys: --commit, else the one the run's plan showed for `service`. None only for
    a deploy run by hand (no plan): it deploys the head of the branch."""
    if args.commit:
        if not is_commit(args.commit):
            raise steplib.UsageError(f"--commit: expected a full 40-character commit id, got {args.commit!r}")
        return str(args.commit)
    if not args.plan:
        # A workflow's leg: without its plan it would deploy whatever the branch points to by now.
        if args.plan_id:
            raise steplib.UsageError(f"{EMPTY_PLAN}, so the commit it showed is unknown; nothing deployed")
        return None
    for item in handoff.decode(args.plan)["services"]:
        if item["service"] == service:
            if not item["desired"]:
                raise steplib.UsageError("the plan has no commit for it (its branch could not be read then)")
            return str(item["desired"])
    raise steplib.UsageError(f"WFGEN_PLAN: {service!r} is not in the plan of this run")


def lock_wait_seconds(value: str | None, manifest: config.Manifest) -> float:
    """--lock-wait, or project.lock_wait_s when unset; UsageError unless a finite, non-negative number."""
    lock_wait = value if value is not None else manifest.project.lock_wait_s
    try:
        wait_s = float(lock_wait)
    except ValueError:
        raise steplib.UsageError(f"--lock-wait: expected seconds, got {lock_wait!r}") from None
    if not math.isfinite(wait_s):  # nan never compares past a deadline: the wait would never end
        raise steplib.UsageError(f"--lock-wait: expected a finite number of seconds, got {lock_wait!r}")
    if math.copysign(1.0, wait_s) < 0:
        raise steplib.UsageError("--lock-wait: must not be negative")
    return wait_s


def unmet_dependencies(args: argparse.Namespace, service: str) -> str | None:
    """'dependency auth-service failed' when an earlier wave did not deploy what this service needs."""
    if not args.dependency_dir:  # the first wave, or a local run: the runner orders the legs itself
        return None
    if not args.plan:
        raise steplib.UsageError(
            f"{EMPTY_PLAN}, so its dependencies cannot be checked "
            "(GitHub drops an output that holds a secret's value)"
        )
    results = order.dependency_results(handoff.decode(args.plan), service, Path(args.dependency_dir))
    problems = order.unmet(list(results), results)
    return order.describe_unmet(problems) if problems else None


def redactions(
    manifest: config.Manifest, service: config.Service, target: Target
) -> list[Callable[[str], str]]:
    """The service's secrets, a token in its clone URL and the target's own (host, user, home) never leave
    this step as values."""
    names = [*service.env, manifest.build.registry_password_env]
    values = {name: os.environ.get(name, "") for name in names if name}
    clone_url = service.clone_url
    return [steplib.hide_values(values), lambda text: source.redact(text, clone_url), target.redact]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    subject = steplib.log_subject(args.service, "deploy")
    try:
        manifest = config_load.load(args.manifest)
        settings = settings_from(args, manifest)
    except steplib.UsageError as exc:
        steplib.error(subject, str(exc))
        return steplib.Exit.USAGE
    name = settings.service.name
    status_path = args.status_file or f"wfgen-status/{name}.json"
    try:
        status = steplib.StatusFile(status_path, name, settings.branch, plan_id=args.plan_id or None)
    except OSError as exc:
        steplib.error(name, f"--status-file {status_path}: cannot write ({exc.strerror}: {exc.filename})")
        return steplib.Exit.USAGE
    try:
        settings = dataclasses.replace(settings, commit=planned_commit(args, name))
        unmet = unmet_dependencies(args, name)
    except steplib.UsageError as exc:
        status.finish("failed", str(exc))
        steplib.error(name, str(exc))
        return steplib.Exit.USAGE
    if unmet:
        status.finish("skipped", unmet)
        steplib.error(name, f"skipped: {unmet}")
        return steplib.Exit.FAILED
    github = github_deployments.recorder(manifest, settings.service)
    if github is not None:
        github.start(settings.commit, settings.branch)
    code = deploy(manifest, settings, status)
    if github is not None:
        github.finish(str(status.data.get("result")), str(status.data.get("message") or ""))
        status.update(github=github.record())
    return code


def deploy(manifest: config.Manifest, settings: Settings, status: steplib.StatusFile) -> int:
    """The leg itself, its result in the status file; the exit code."""
    name = settings.service.name
    # The deploy's own deadline: it cancels itself and cleans up before the job's timeout-minutes kills it.
    try:
        with (
            cancel_on_signals(60.0 * manifest.project.deploy_timeout_minutes),
            open_target(manifest.target, os.environ) as target,
            steplib.redacting(*redactions(manifest, settings.service, target)),
        ):
            deployment = Deployment(manifest, settings, target, status)
            result = deployment.run(cancelled=Cancelled)
    except steplib.UsageError as exc:
        status.finish("failed", str(exc))
        steplib.error(name, str(exc))
        return steplib.Exit.USAGE
    except Cancelled:
        status.finish("cancelled", "cancelled before the deploy started")
        steplib.error(name, "cancelled")
        return steplib.Exit.FAILED
    return RESULT_EXIT.get(result, steplib.Exit.FAILED)


if __name__ == "__main__":
    raise SystemExit(main())

"""The commands that act on the deploy target: deploy, plan, status, rollback and unlock.

Declared here, registered on the `wfgen` group by generator/cli.py; each imports what it uses in its body."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from generator.options import environment_option, exit_with, manifest_option


@click.command("deploy")
@click.argument("services", required=False)
@click.argument("branch", required=False)
@manifest_option
@environment_option
@click.option("--force-rebuild", is_flag=True, help="Rebuild even if the commit is deployed.")
@click.option("--retry-failed", is_flag=True, help="Redeploy what failed in the last run.")
@click.option("--max-parallel", type=click.IntRange(min=1), help="Deploys at once [project.max_parallel].")
@click.option("--fail-fast", is_flag=True, help="Start no more deploys after the first failure.")
@click.option(
    "--only-changed",
    is_flag=True,
    help="As a push does: deploy only what differs from what runs on the target (see 'wfgen plan').",
)
@click.option("--dry-run", is_flag=True, help="Print the plan; touch nothing.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary.")
@click.option("--json", "as_json", is_flag=True, help="Print only a machine-readable result.")
def deploy_command(
    services: str | None,
    branch: str | None,
    manifest_path: Path,
    environment: str | None,
    force_rebuild: bool,
    retry_failed: bool,
    max_parallel: int | None,
    fail_fast: bool,
    only_changed: bool,
    dry_run: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Deploy SERVICES ('all' or a comma list) from BRANCH, in parallel, with the workflow's step scripts."""
    from generator.local.deploy_options import DeployOptions
    from generator.local.runner import deploy

    if services is None and not retry_failed:
        raise click.UsageError("give SERVICES ('all' or a comma list) and BRANCH, or --retry-failed")
    if quiet and as_json:
        raise click.UsageError("--quiet and --json exclude each other")
    options = DeployOptions(
        manifest=manifest_path,
        services=services,
        branch=branch,
        environment=environment,
        force_rebuild=force_rebuild,
        retry_failed=retry_failed,
        max_parallel=max_parallel,
        fail_fast=fail_fast,
        only_changed=only_changed,
        dry_run=dry_run,
        output="json" if as_json else "quiet" if quiet else "auto",
    )
    exit_with(deploy(options))


@click.command("plan")
@click.argument("services")
@click.argument("branch", required=False)
@manifest_option
@environment_option
@click.option("--force-rebuild", is_flag=True, help="Plan every selected service as a deploy.")
@click.option(
    "--only-changed", "push", is_flag=True, help="Plan as a push does: only what differs gets a deploy leg."
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_command(
    services: str,
    branch: str | None,
    manifest_path: Path,
    environment: str | None,
    force_rebuild: bool,
    push: bool,
    as_json: bool,
) -> None:
    """What deploying SERVICES from BRANCH would do, against what runs on the target; touches nothing."""
    from generator.commands.plan import PlanOptions, show_plan

    options = PlanOptions(manifest_path, services, branch, force_rebuild, push, as_json, environment)
    exit_with(show_plan(options, sys.stdout, sys.stderr))


@click.command("status")
@manifest_option
@environment_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_command(manifest_path: Path, environment: str | None, as_json: bool) -> None:
    """What runs on the target now, per service: commit, since when, health, last deploys, rollback images.

    Touches nothing. Exit 1 when a service does not run and answer its health check."""
    from generator.commands.status import StatusOptions, show_status

    exit_with(show_status(StatusOptions(manifest_path, as_json, environment), sys.stdout, sys.stderr))


@click.command("rollback")
@click.argument("service")
@manifest_option
@environment_option
@click.option("--to", metavar="COMMIT", help="A kept version (a unique prefix of 4+ hex digits will do).")
def rollback_command(service: str, manifest_path: Path, environment: str | None, to: str | None) -> None:
    """Put SERVICE back on the version deployed before the running one (or --to another image kept on the
    target), through the deploy's health-gated cutover; no build.

    Exit 1 when it failed (the running version still serves), 2 when there is nothing to roll back to."""
    from generator.commands.rollback import RollbackOptions, roll_back

    exit_with(roll_back(RollbackOptions(manifest_path, service, to, environment)))


@click.command("unlock")
@click.argument("service")
@manifest_option
@environment_option
def unlock_command(service: str, manifest_path: Path, environment: str | None) -> None:
    """Release SERVICE's deploy lock on the target by hand, after saying whose it was.

    For a lock whose holder died elsewhere (a deploy killed on another machine or runner), which would
    otherwise hold the service until project.lock_stale_s. Exit 1 when the target cannot be reached,
    2 when no lock is held."""
    from generator.commands.unlock import UnlockOptions, unlock

    exit_with(unlock(UnlockOptions(manifest_path, service, environment), sys.stdout, sys.stderr))

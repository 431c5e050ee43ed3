"""`wfgen deploy --dry-run`: what would be deployed where, read-only (no run folder, no Docker call)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from generator.runner import DeployOptions

GIT_TIMEOUT_S = 10.0


def describe_target(target: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """`local Docker (unix:///...)` or `ssh deploy@203.0.113.5:22`; names stand in for unset values."""
    if target["kind"] == "local":
        return f"local Docker ({env.get('DOCKER_HOST') or 'default socket'})"
    user = env.get(target["user_env"]) or f"${target['user_env']}"
    host = env.get(target["host_env"]) or f"${target['host_env']}"
    return f"ssh {user}@{host}:{target['port']}"


def head_commit(service: Mapping[str, Any], ref: str, root: Path, env: Mapping[str, str]) -> str | None:
    """The commit a deploy would build: the remote branch head, or the last commit touching `path`."""
    if service["clone_url"]:
        argv = ["git", "ls-remote", "--", service["clone_url"], f"refs/heads/{ref}"]
    else:
        argv = ["git", "-C", str(root), "rev-list", "-1", ref, "--", service["path"]]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
            env={**env, "GIT_TERMINAL_PROMPT": "0"},
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = done.stdout.split()
    return words[0] if done.returncode == 0 and words else None


def plan(
    resolved: Mapping[str, Any], selected: list[str], branch: str, root: Path, env: Mapping[str, str]
) -> list[dict[str, Any]]:
    project, build = resolved["project"]["name"], resolved["build"]
    prefix = f"{build['registry']}/" if build["where"] == "runner" and build["registry"] else ""
    services = [resolved["services"][name] for name in selected]
    refs = [service["ref"] or branch for service in services]
    with ThreadPoolExecutor(max_workers=8) as pool:
        commits = list(
            pool.map(lambda pair: head_commit(pair[0], pair[1], root, env), zip(services, refs, strict=True))
        )
    rows = []
    for service, ref, commit in zip(services, refs, commits, strict=True):
        tag = commit[:12] if commit else f"<head of {ref}>"
        rows.append(
            {
                "service": service["name"],
                "source": service["repository"] or f"./{service['path']}",
                "ref": ref,
                "port": service["port"],
                "image": f"{prefix}{project}/{service['name']}:{tag}",
                "commit": commit,
            }
        )
    return rows


def print_plan(
    resolved: Mapping[str, Any],
    selected: list[str],
    branch: str,
    options: DeployOptions,
    env: Mapping[str, str],
    stream: TextIO,
) -> None:
    root = options.manifest.resolve().parent
    rows = plan(resolved, selected, branch, root, env)
    target = describe_target(resolved["target"], env)
    parallel = options.max_parallel or resolved["project"]["max_parallel"]
    if options.output == "json":
        document = {
            "dry_run": True,
            "branch": branch,
            "force_rebuild": options.force_rebuild,
            "target": target,
            "max_parallel": parallel,
            "services": rows,
        }
        print(json.dumps(document, indent=2), file=stream)
        return
    headers = ("service", "source", "ref", "port", "image")
    table = [headers, *[(r["service"], r["source"], r["ref"], str(r["port"]), r["image"]) for r in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    print(
        f"Dry run: nothing will be touched. Target: {target}; branch {branch}; "
        f"force rebuild: {'yes' if options.force_rebuild else 'no'}; at most {parallel} in parallel.",
        file=stream,
    )
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
            file=stream,
        )
    print(f"{len(rows)} service(s) would be deployed, in this order.", file=stream)

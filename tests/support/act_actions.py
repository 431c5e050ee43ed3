"""Stand-ins for actions/checkout, upload-artifact and download-artifact: their action.yml and what they do.

Stdlib only: tests/support/act.py copies this file beside each stand-in's action.yml (`action_yml`), whose one
composite step runs `python3 -I act_actions.py <action>` in the job with the inputs as JSON in STANDIN_INPUTS.
`standin.json` beside it names the repository to check out and the folder that holds the run's artifacts.
Inputs the real action has but this file does not model fail the step with a message, never silently.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SHA = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
GLOB_CHARS = re.compile(r"[*?\[]")
EVERY_REF = ("+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
# The inputs of each stood-in action and their defaults, as in the real action.yml at the pinned version.
INPUTS: dict[str, dict[str, str]] = {
    "actions/checkout": {
        "repository": "${{ github.repository }}", "ref": "", "token": "${{ github.token }}", "ssh-key": "",
        "ssh-known-hosts": "", "ssh-strict": "true", "ssh-user": "git", "persist-credentials": "true",
        "path": "", "clean": "true", "filter": "", "sparse-checkout": "", "sparse-checkout-cone-mode": "true",
        "fetch-depth": "1", "fetch-tags": "false", "show-progress": "true", "lfs": "false",
        "submodules": "false", "set-safe-directory": "true", "github-server-url": "",
        "allow-unsafe-pr-checkout": "false",
    },
    "actions/upload-artifact": {
        "name": "artifact", "path": "", "if-no-files-found": "warn", "retention-days": "",
        "compression-level": "6", "overwrite": "false", "include-hidden-files": "false", "archive": "true",
    },
    "actions/download-artifact": {
        "name": "", "artifact-ids": "", "path": "", "pattern": "", "merge-multiple": "false",
        "github-token": "", "repository": "${{ github.repository }}", "run-id": "${{ github.run_id }}",
        "skip-decompress": "false", "digest-mismatch": "error",
    },
}  # fmt: skip
OUTPUTS = {
    "actions/checkout": ["ref", "commit"],
    "actions/upload-artifact": ["artifact-id"],
    "actions/download-artifact": ["download-path"],
}
# Inputs the stand-ins refuse to take with any value but the real action's default.
UNMODELLED = {
    "checkout": {"lfs": "false", "submodules": "false", "ssh-key": "", "filter": ""},
    "upload-artifact": {"archive": "true"},
    "download-artifact": {"artifact-ids": "", "github-token": "", "skip-decompress": "false"},
}


def action_yml(name: str) -> dict[str, Any]:
    """action.yml of the stand-in for `name`: one composite step running this file with the inputs as JSON."""
    step = {
        "id": "standin", "shell": "bash", "env": {"STANDIN_INPUTS": "${{ toJSON(inputs) }}"},
        "run": f'python3 -I "$GITHUB_ACTION_PATH/{Path(__file__).name}" {name.split("/")[1]}',
    }  # fmt: skip
    return {
        "name": f"{name} (stand-in)",
        "inputs": {key: {"default": value} for key, value in INPUTS[name].items()},
        "outputs": {key: {"value": f"${{{{ steps.standin.outputs.{key} }}}}"} for key in OUTPUTS[name]},
        "runs": {"using": "composite", "steps": [step]},
    }


class StandinError(Exception):
    """What the step prints before it fails."""


def truthy(value: str) -> bool:
    return value.strip().lower() == "true"


def git(*args: str, cwd: Path) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise StandinError(f"git {args[0]} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def has_commit(sha: str, repo: Path) -> bool:
    try:
        git("cat-file", "-e", f"{sha}^{{commit}}", cwd=repo)
    except StandinError:
        return False
    return True


def inside(workspace: Path, relative: str) -> Path:
    path = (workspace / relative).resolve()
    if not path.is_relative_to(workspace.resolve()):
        raise StandinError(f"path {relative!r} leaves the workspace")
    return path


def set_output(name: str, value: str) -> None:
    with Path(os.environ["GITHUB_OUTPUT"]).open("a", encoding="utf-8") as out:
        out.write(f"{name}={value}\n")


def resolve_ref(inputs: dict[str, str], dest: Path) -> tuple[str, str]:
    """(ref, commit) as the real action reads them; a bare name becomes the branch or tag of that name."""
    ref = inputs["ref"].strip()
    if not ref:  # the workflow's own repository at the event's ref and commit
        return os.environ["GITHUB_REF"], os.environ["GITHUB_SHA"]
    if SHA.fullmatch(ref):
        return "", ref
    if ref.startswith("refs/"):
        return ref, ""
    for qualified in (f"refs/heads/{ref}", f"refs/tags/{ref}"):
        if git("ls-remote", "origin", qualified, cwd=dest):
            return qualified, ""
    raise StandinError(f"A branch or tag with the name '{ref}' could not be found")


def checkout(inputs: dict[str, str], config: dict[str, Any], workspace: Path) -> None:
    """actions/checkout as real git commands: init, fetch what `ref` and `fetch-depth` ask for, check out."""
    if inputs["repository"].lower() != config["repository"].lower():
        raise StandinError(f"only {config['repository']} can be checked out here, not {inputs['repository']}")
    dest = inside(workspace, inputs["path"])
    dest.mkdir(parents=True, exist_ok=True)
    git("init", "-q", cwd=dest)
    git("remote", "add", "origin", config["repository_url"], cwd=dest)
    ref, commit = resolve_ref(inputs, dest)
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else ""
    spec = f"+{commit or ref}:refs/remotes/origin/{branch}" if branch else commit or f"+{ref}:{ref}"
    depth = int(inputs["fetch-depth"] or "1")
    if depth > 0:
        tags = [EVERY_REF[1]] if truthy(inputs["fetch-tags"]) else ["--no-tags"]
        git("fetch", "-q", f"--depth={depth}", "origin", spec, *tags, cwd=dest)
    else:  # all history of every branch and tag, then the commit if no branch or tag holds it
        git("fetch", "-q", "--prune", "origin", *EVERY_REF, cwd=dest)
        if commit and not has_commit(commit, dest):
            git("fetch", "-q", "origin", commit, cwd=dest)
    if inputs["sparse-checkout"].strip():
        cone = "--cone" if truthy(inputs["sparse-checkout-cone-mode"]) else "--no-cone"
        git("sparse-checkout", "set", cone, *inputs["sparse-checkout"].split(), cwd=dest)
    if branch:
        git("checkout", "-q", "--force", "-B", branch, commit or f"refs/remotes/origin/{branch}", cwd=dest)
    else:
        git("checkout", "-q", "--force", "--detach", commit or ref, cwd=dest)
    if truthy(inputs["persist-credentials"]):  # later git commands in the job authenticate with the token
        token = base64.b64encode(f"x-access-token:{inputs['token']}".encode()).decode()
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        git("config", "--local", f"http.{server}/.extraheader", f"AUTHORIZATION: basic {token}", cwd=dest)
    head = git("rev-parse", "HEAD", cwd=dest)
    print(f"checked out {ref or commit} at {head[:12]} into {dest}")
    set_output("ref", ref or commit)
    set_output("commit", head)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob of @actions/glob as a regex over `/`-separated paths: `**` spans folders, `*` does not."""
    parts = re.split(r"(\*\*/?|\*|\?|\[!?[^]/]+\])", pattern)
    tokens = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(tokens.get(part, _bracket(part) or re.escape(part)) for part in parts))


def _bracket(part: str) -> str:
    """`[abc]` / `[!abc]` as a regex class; "" for anything else."""
    if len(part) < 3 or part[0] != "[" or part[-1] != "]":
        return ""
    return "[^" + part[2:] if part.startswith("[!") else part


def search_path(pattern: Path) -> Path:
    """The pattern's leading folders without a wildcard: where the search starts."""
    parts = pattern.parts
    literal = next((i for i, part in enumerate(parts) if GLOB_CHARS.search(part)), len(parts))
    return Path(*parts[:literal])


def find_files(lines: list[str], workspace: Path, hidden: bool) -> tuple[list[Path], Path | None]:
    """Files the `path` input names (folders include what they hold, `!` excludes) and their root."""
    includes = [workspace / Path(line).expanduser() for line in lines if not line.startswith("!")]
    excludes = [glob_regex(str(workspace / Path(line[1:]).expanduser())) for line in lines if line[:1] == "!"]
    found: dict[Path, None] = {}
    for pattern in includes:
        start, matcher = search_path(pattern), glob_regex(str(pattern))
        candidates = [start] if start.is_file() else sorted(p for p in start.rglob("*") if p.is_file())
        for path in candidates:
            relative = path.relative_to(start).parts if path != start else ()
            if not hidden and any(part.startswith(".") for part in relative):
                continue
            ancestors = [path, *path.parents]  # a matched folder brings everything under it
            if any(matcher.fullmatch(str(a)) for a in ancestors if a.is_relative_to(start)):
                found[path] = None
    files = [path for path in found if not any(ex.fullmatch(str(path)) for ex in excludes)]
    searched = [search_path(pattern) for pattern in includes]
    if not searched:
        return files, None
    if len(searched) > 1:
        return files, Path(os.path.commonpath(searched))
    return files, searched[0].parent if files == [searched[0]] else searched[0]


def upload(inputs: dict[str, str], config: dict[str, Any], workspace: Path) -> None:
    name, lines = inputs["name"], [line.strip() for line in inputs["path"].splitlines() if line.strip()]
    files, root = find_files(lines, workspace, truthy(inputs["include-hidden-files"]))
    if not files or root is None:
        message = f"No files were found with the provided path: {inputs['path']}. No artifact uploaded."
        if inputs["if-no-files-found"] == "error":
            raise StandinError(message)
        print(("warning: " if inputs["if-no-files-found"] == "warn" else "") + message)
        return
    store = Path(config["artifacts"])
    if (store / name).exists() and not truthy(inputs["overwrite"]):
        raise StandinError(f"an artifact with the name {name!r} already exists on this run")
    staging = Path(tempfile.mkdtemp(prefix=".upload-", dir=store))
    for path in files:
        (staging / path.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, staging / path.relative_to(root))
    shutil.rmtree(store / name, ignore_errors=True)
    staging.rename(store / name)
    print(f"uploaded {len(files)} file(s) as artifact {name!r}")
    set_output("artifact-id", str(len(list(store.glob("[!.]*")))))  # how many the run holds now


def download(inputs: dict[str, str], config: dict[str, Any], workspace: Path) -> None:
    store, name, pattern = Path(config["artifacts"]), inputs["name"], inputs["pattern"]
    target = workspace / Path(inputs["path"]).expanduser() if inputs["path"] else workspace
    if name:
        if not (store / name).is_dir():
            raise StandinError(f"Unable to download artifact(s): Artifact '{name}' not found")
        chosen = [name]
    else:
        names = sorted(p.name for p in store.iterdir() if p.is_dir() and not p.name.startswith("."))
        chosen = [n for n in names if not pattern or fnmatch.fnmatchcase(n, pattern)]
    flat = bool(name) or truthy(inputs["merge-multiple"]) or len(chosen) == 1
    for artifact in chosen:
        shutil.copytree(store / artifact, target if flat else target / artifact, dirs_exist_ok=True)
    print(f"Total of {len(chosen)} artifact(s) downloaded: {', '.join(chosen)}")
    set_output("download-path", str(target))


ACTIONS = {"checkout": checkout, "upload-artifact": upload, "download-artifact": download}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="act_actions.py", description=__doc__)
    parser.add_argument("action", choices=sorted(ACTIONS))
    action = parser.parse_args(argv).action
    inputs: dict[str, str] = json.loads(os.environ["STANDIN_INPUTS"])
    config = json.loads((Path(__file__).parent / "standin.json").read_text(encoding="utf-8"))
    try:
        for key, default in UNMODELLED[action].items():
            if inputs.get(key, "").strip().lower() not in (default, ""):
                raise StandinError(f"the {action} stand-in does not model {key}: {inputs[key]!r}")
        ACTIONS[action](inputs, config, Path(os.environ["GITHUB_WORKSPACE"]))
    except (StandinError, OSError, ValueError) as exc:
        print(f"::error::{action}: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Where a service's code comes from: a repository cloned on the build host, or a folder of the checkout.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts.
"""

from __future__ import annotations

import posixpath
import subprocess
from urllib.parse import urlsplit, urlunsplit

from ..core import config, steplib
from ..core.names import GIT_REF_HINT, is_commit, is_safe_git_ref
from ..core.transport import Target

GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes"}


class SourceError(Exception):
    """The source cannot be fetched; the message is one line without credentials."""


class CommitGone(SourceError):
    """The repository no longer has the commit asked for (or cannot hand it out)."""


def check_ref(ref: str) -> str:
    """Reject what git would not take as a branch name (and anything that could pass as an option)."""
    if not is_safe_git_ref(ref):
        raise steplib.UsageError(f"branch: {ref!r} is not a safe git branch name ({GIT_REF_HINT})")
    return ref


def redact(text: str, url: str | None) -> str:
    """`text` with the credentials of `url` (https://user:token@host/...) masked."""
    if not url:
        return text
    parts = urlsplit(url)
    if not parts.password and not parts.username:
        return text
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    safe = urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))
    text = text.replace(url, safe)
    for secret in (parts.password, parts.username):
        if secret:
            text = text.replace(secret, "***")
    return text


def _detail(stderr: str, url: str | None) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return redact(lines[-1][:300], url) if lines else "no output"


def remote_commit(host: Target, url: str, ref: str, timeout: float) -> str:
    """The commit `ref` (a branch, else a tag) points to in the repository at `url`, asked from `host`."""
    argv = ["git", "ls-remote", "--", url, f"refs/heads/{ref}", f"refs/tags/{ref}", f"refs/tags/{ref}^{{}}"]
    result = host.run(argv, timeout=timeout, env=GIT_ENV)
    if result.returncode != 0:
        raise SourceError(f"cannot read {redact(url, url)}: {_detail(result.stderr, url)}")
    refs = {name: sha for sha, _, name in (line.partition("\t") for line in result.stdout.splitlines())}
    for name in (f"refs/heads/{ref}", f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}"):
        if is_commit(refs.get(name, "")):
            return refs[name]
    raise SourceError(f"branch {ref!r} not found in {redact(url, url)}")


def head_commit(service: config.Service, ref: str, repo_root: str, host: Target, timeout: float) -> str:
    """The commit a deploy of `service` builds: the last commit touching its `path` or any of its `paths`
    in the checkout, or the head of `ref` (branch, else tag) in its repository, asked from `host` (the build
    host)."""
    if service.path:
        return local_commit(repo_root, ref, (service.path, *service.paths))[1]
    assert service.clone_url is not None  # resolve.py: set for every repository service
    return remote_commit(host, service.clone_url, ref, timeout=timeout)


def fetch_commit(host: Target, url: str, commit: str, dest: str, timeout: float) -> None:
    """Shallow-fetch exactly `commit` from `url` into a new repository at `dest` on `host` and check it out.

    By commit, not by branch: the branch may have moved since the plan showed `commit`. CommitGone when the
    repository does not hand it out (a force-push, then a garbage collection; or it cannot be reached)."""
    if not is_commit(commit):
        raise SourceError(f"{commit!r} is not a full commit id")
    init = host.run(["git", "init", "--quiet", "--", dest], timeout=60, env=GIT_ENV)
    if init.returncode != 0:
        raise SourceError(f"git init {dest} failed: {_detail(init.stderr, url)}")
    argv = ["git", "-C", dest, "fetch", "--quiet", "--no-tags", "--depth", "1", "--", url, commit]
    result = host.run(argv, timeout=timeout, env=GIT_ENV)
    # FETCH_HEAD names the URL, which may hold a token, and `.git` may be in the build context.
    host.run(["rm", "-f", "--", posixpath.join(dest, ".git", "FETCH_HEAD")], timeout=60)
    if result.returncode != 0:
        raise CommitGone(f"cannot fetch {commit[:7]} from {redact(url, url)}: {_detail(result.stderr, url)}")
    checkout = host.run(["git", "-C", dest, "checkout", "--quiet", "--detach", commit], timeout=120)
    if checkout.returncode != 0:
        raise SourceError(f"cannot check out {commit[:7]}: {_detail(checkout.stderr, url)}")


def on_branch(repo_root: str, ref: str, commit: str) -> bool:
    """Whether `commit` is in the checkout and in the history of branch `ref` (local, else origin's)."""
    tip = branch_tip(repo_root, ref)
    found = run_git(repo_root, "merge-base", "--is-ancestor", commit, tip)
    return found.returncode == 0


def run_git(repo_root: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", repo_root, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise SourceError(f"git {args[0]} in {repo_root} timed out after {timeout:g} s") from None
    except OSError as exc:
        raise SourceError(f"cannot run git in {repo_root}: {exc.strerror or exc}") from None


def branch_tip(repo_root: str, ref: str) -> str:
    """The commit of branch `ref` in the checkout: refs/heads/B, else refs/remotes/origin/B."""
    for name in (f"refs/heads/{ref}", f"refs/remotes/origin/{ref}"):
        found = run_git(repo_root, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
        if found.returncode == 0 and is_commit(found.stdout.strip()):
            return found.stdout.strip()
    raise SourceError(f"branch {ref!r} not found in the checkout at {repo_root} (local or origin)")


def local_commit(repo_root: str, ref: str, paths: tuple[str, ...]) -> tuple[str, str]:
    """(branch tip, last commit touching any of `paths`) in the checkout; refs/heads/B, else
    refs/remotes/origin/B. The content of the first path is the same at both commits."""
    tip = branch_tip(repo_root, ref)
    touched = run_git(repo_root, "rev-list", "-1", tip, "--", *paths)
    commit = touched.stdout.strip()
    if touched.returncode != 0 or not is_commit(commit):
        raise SourceError(f"{paths[0]!r} has no commits on {ref!r} in {repo_root}")
    return tip, commit


def tree_path(path: str, context: str) -> str:
    """The build context inside the repository as a git tree path ("" for the root)."""
    joined = posixpath.normpath(posixpath.join(path or ".", context or "."))
    return "" if joined == "." else joined


def open_archive(repo_root: str, commit: str, subdir: str) -> subprocess.Popen[bytes]:
    """`git archive` of commit:subdir as a tar stream on stdout (the caller waits on it)."""
    treeish = f"{commit}:{subdir}" if subdir else commit
    return subprocess.Popen(
        ["git", "-C", repo_root, "archive", "--format=tar", treeish],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish_archive(proc: subprocess.Popen[bytes]) -> str | None:
    """Reap the archive process once its reader is done; its error message, or None when it succeeded."""
    if proc.stdout:
        proc.stdout.close()  # a reader that stopped early must not leave git blocked on a full pipe
        proc.stdout = None
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        return "git archive did not finish"
    message = err.decode("utf-8", "replace").strip() if err else ""
    if proc.returncode == 0:
        return None
    return message.splitlines()[-1] if message else f"git archive exited {proc.returncode}"

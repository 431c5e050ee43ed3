"""What a well-formed name is: a service name, a git ref, an environment variable name, a commit id; and
did-you-mean suggestions for a name that is not known.

Stdlib only: vendored with the step scripts; steplib names all of these too.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return " (did you mean 'x'?)" for a close match, else ""."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # as services.toml allows (manifest/fields.py)
_GIT_REF = re.compile(r"[A-Za-z0-9._/-]{1,200}")
GIT_REF_HINT = "letters, digits, '.', '_', '-', '/'; no '..'"


def is_safe_git_ref(ref: str) -> bool:
    """The one branch/tag rule (manifest, prepare, deploy): git takes it, a shell never needs it quoted."""
    return not (
        not _GIT_REF.fullmatch(ref)
        or ref == "HEAD"  # git refuses it as a branch name
        or ref.startswith(("-", "/", "."))
        or ref.endswith(("/", "."))
        or ".." in ref
        or any(part == "" or part.startswith(".") or part.endswith(".lock") for part in ref.split("/"))
    )


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_env_name(name: str) -> bool:
    """An environment variable name an env-file line `NAME=value` can carry."""
    return _ENV_NAME.fullmatch(name) is not None


_SHA = re.compile(r"^[0-9a-f]{40}$")


def is_commit(text: str) -> bool:
    """A full commit id, as a wfgen.commit label or a plan should hold (neither is trusted input)."""
    return bool(_SHA.match(text))

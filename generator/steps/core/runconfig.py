"""What a container runs with besides its image, fingerprinted: a rotated secret or a new setting redeploys.

Stdlib only: vendored into `.github/wfgen/` next to the step scripts. The fingerprint is stored on the
container as labels: `wfgen.config=<sha256 hex>` over the whole configuration, and `wfgen.config.parts` with a
short hash per part to name what changed. Secret values are hashed, never stored, and every hash is keyed with
a random salt kept on the target (`<state_dir>/config-salt`, 0600): a label copied into a log or an artifact
cannot be checked against guessed secrets without that file. Keying with the image id instead would not do:
anyone who sees the image can read its id. Whoever can read the salt file can read the container's environment
anyway.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .config import Service
from .transport import Target

RUN_OPTIONS = ("--init", "--restart", "unless-stopped")
LABEL = "wfgen.config"
PARTS_LABEL = "wfgen.config.parts"
# The plain values (services.<name>.vars) the container was given, as JSON: what `wfgen status` shows. Only
# values written in the manifest; never a secret's.
VARS_LABEL = "wfgen.vars"
SALT_FILE = "config-salt"
PART_HEX = 16

# Print the salt in "$1", creating it first from stdin when missing. The link makes creation one-winner, so
# parallel deploys on one target all read the same salt.
_SALT_SCRIPT = (
    'f=$1; if [ ! -s "$f" ]; then umask 077; mkdir -p -- "$(dirname -- "$f")" && cat > "$f.$2" '
    '&& { ln -- "$f.$2" "$f" 2>/dev/null; rm -f -- "$f.$2"; }; fi; cat -- "$f"'
)


@dataclass(frozen=True)
class Fingerprint:
    digest: str
    parts: dict[str, str]

    def label_args(self) -> list[str]:
        parts = json.dumps(self.parts, sort_keys=True, separators=(",", ":"))
        return ["--label", f"{LABEL}={self.digest}", "--label", f"{PARTS_LABEL}={parts}"]


def run_config(service: Service, network: str, env: Mapping[str, str]) -> dict[str, Any]:
    """Every setting `docker run` gets from the manifest and the secrets, by the name a log may print:
    `env NAME` for a secret, `var NAME` for a plain value."""
    config: dict[str, Any] = {
        "docker run options": list(RUN_OPTIONS),
        "network": network,
        "port": service.port,
        "container_port": service.container_port,
        "health": asdict(service.health),
    }
    if service.swarm is not None:  # on a swarm: a change of any of these redeploys too
        config.update(
            replicas=service.swarm.replicas,
            placement=list(service.swarm.placement),
            **{"health command": service.swarm.health_command},
        )
    config.update({f"env {name}": value for name, value in env.items()})
    config.update({f"var {name}": value for name, value in service.vars.items()})
    return config


def vars_label_args(service: Service) -> list[str]:
    if not service.vars:
        return []
    shown = json.dumps(dict(service.vars), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return ["--label", f"{VARS_LABEL}={shown}"]


def vars_of(labels: Mapping[str, str]) -> dict[str, str]:
    """The plain values a container's labels say it was given; {} when none (or a label not wfgen's)."""
    try:
        found = json.loads(labels.get(VARS_LABEL) or "{}")
    except json.JSONDecodeError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(name): value for name, value in sorted(found.items()) if isinstance(value, str)}


def _hash(salt: bytes, value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(salt + b"\0" + canonical.encode()).hexdigest()


def fingerprint(config: Mapping[str, Any], salt: bytes) -> Fingerprint:
    parts = {name: _hash(salt, [name, value])[:PART_HEX] for name, value in config.items()}
    return Fingerprint(digest=_hash(salt, dict(config)), parts=parts)


def difference(labels: Mapping[str, str], new: Fingerprint, unknown: Iterable[str] = ()) -> str | None:
    """None when the container's labels carry this fingerprint, else what changed (names only).

    `unknown` names parts whose value the caller does not hold (a secret the plan job is not given): only
    whether they are there at all is compared."""
    skip = set(unknown)
    if not skip and labels.get(LABEL) == new.digest:
        return None
    if not labels.get(LABEL):
        return "the running container has no configuration fingerprint"
    try:
        old = json.loads(labels.get(PARTS_LABEL) or "{}")
    except json.JSONDecodeError:
        old = None
    if not isinstance(old, dict):
        return "settings (no per-part fingerprint on the running container)"
    names = sorted(
        name
        for name in old.keys() | new.parts.keys()
        if (name in old) != (name in new.parts) or (name not in skip and old.get(name) != new.parts.get(name))
    )
    if names or skip:
        return ", ".join(names) or None
    return "settings"


def salt_path(target: Target, state_dir: str) -> str:
    return target.home_path(f"{state_dir.rstrip('/')}/{SALT_FILE}")


def read_salt(target: Target, state_dir: str) -> bytes | None:
    """The target's fingerprint salt, or None when no deploy has made one yet; never creates it."""
    result = target.run(
        ["sh", "-c", 'cat -- "$1" 2>/dev/null || true', "sh", salt_path(target, state_dir)], timeout=60
    )
    value = result.stdout.strip()
    return value.encode() if result.returncode == 0 and len(value) >= 32 else None


def salt(target: Target, state_dir: str) -> bytes:
    """The target's fingerprint salt, created on first use."""
    path = salt_path(target, state_dir)
    argv = ["sh", "-c", _SALT_SCRIPT, "sh", path, secrets.token_hex(6)]
    result = target.run(argv, input=secrets.token_hex(32).encode(), timeout=60, check=True)
    value = result.stdout.strip()
    if len(value) < 32:
        raise OSError(f"{path}: configuration salt is shorter than 32 characters; remove the file")
    return value.encode()

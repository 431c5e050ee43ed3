"""Plain configuration values: `[services.<name>] vars` and `[environments.<env>.vars.<service>]`.

A name is either a plain value (written in services.toml, shown by `wfgen status`) or a secret (`env`,
`infrastructure.secrets`: a name only, its value from the job's secrets), never both: one of the two
would silently win in the container, and a secret's name given a value in the manifest is a secret leaked.
"""

from __future__ import annotations

from generator.manifest.model import Manifest
from generator.steps.core.names import did_you_mean

Problem = tuple[tuple[str | int, ...], str]


def of_service(manifest: Manifest, service: str, environment: str | None = None) -> dict[str, str]:
    """The service's plain values, with the environment's own overriding or added, sorted by name."""
    merged = dict(manifest.services[service].vars)
    if environment is not None:
        merged.update(manifest.environments[environment].vars.get(service, {}))
    return dict(sorted(merged.items()))


def check(manifest: Manifest) -> list[Problem]:
    problems: list[Problem] = []
    shared = set(manifest.infrastructure.secrets)
    for name, service in manifest.services.items():
        for var in service.vars:
            problems += _secret_too(("services", name, "vars", var), var, set(service.env), shared)
    known = list(manifest.services)
    for env_name, environment in manifest.environments.items():
        for service_name, values in environment.vars.items():
            where = ("environments", env_name, "vars", service_name)
            if service_name not in manifest.services:
                hint = did_you_mean(service_name, known)
                problems.append((where, f"unknown service '{service_name}'{hint}"))
                continue
            secrets = set(manifest.services[service_name].env)
            for var in values:
                problems += _secret_too((*where, var), var, secrets, shared)
    return problems


def _secret_too(where: tuple[str | int, ...], var: str, env: set[str], shared: set[str]) -> list[Problem]:
    if var in env:
        return [(where, f"{var} is also in env: a name is a plain value or a secret, not both")]
    if var in shared:
        return [(where, f"{var} is in infrastructure.secrets: a name is a plain value or a secret, not both")]
    return []

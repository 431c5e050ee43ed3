"""Load services.toml and validate it: every problem becomes one `file:line: key: message` line."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from generator.errors import ManifestError
from generator.manifest import environments, plain_vars
from generator.manifest.locate import KeyLocator, format_loc
from generator.manifest.model import MAX_SERVICES, Manifest
from generator.manifest.suggest import allowed_keys
from generator.manifest.target import SSH_ONLY
from generator.steps.core.names import did_you_mean

TOO_DEEP = "arrays or tables nested too deeply to read"
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)$")

_MESSAGES = {
    "missing": "required key is missing",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be an array",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "literal_error": "must be one of {expected}",
    "too_short": "must not be empty",
    "too_long": "has too many entries (at most {max_length})",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be greater than {gt}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must not be empty",
}


def load_manifest(path: Path) -> Manifest:
    """Read and validate a manifest, or raise ManifestError listing every problem."""
    display = path.name if path.parent == Path() else str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # editors on Windows may save a byte-order mark
    except FileNotFoundError:
        raise ManifestError([f"{display}: no such file; create it or pass --manifest"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([f"{display}: cannot read: {exc}"]) from None
    return parse_manifest(text, display)


def parse_manifest(text: str, display: str = "services.toml") -> Manifest:
    try:
        return _parse(text, display)
    except RecursionError:  # tomllib, pydantic and the checks here all recurse into nested values
        raise ManifestError([f"{display}: {TOO_DEEP}"]) from None


def _parse(text: str, display: str) -> Manifest:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError([_toml_problem(str(exc), display)]) from None
    locator = KeyLocator(text)
    problems = [(loc, "must not contain '${{' (GitHub expression syntax)") for loc in _expressions(data)]
    manifest: Manifest | None = None
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        problems += [_describe(error) for error in exc.errors(include_url=False, include_input=False)]
    if manifest is not None:
        problems += cross_check(manifest)
    if problems:
        found = dict.fromkeys((locator.line(loc), format_loc(loc), message) for loc, message in problems)
        located = sorted(found, key=lambda item: item[0])  # stable: same-line problems keep their order
        raise ManifestError([f"{display}:{line}: {key}: {message}" for line, key, message in located])
    assert manifest is not None
    return manifest


def _toml_problem(message: str, display: str) -> str:
    """'Expected ... (at line 3, column 9)' -> 'services.toml:3: invalid TOML: Expected ... (column 9)'"""
    found = _TOML_POSITION.search(message)
    if not found:
        return f"{display}: invalid TOML: {message}"
    text = message[: found.start()].rstrip()
    return f"{display}:{found.group(1)}: invalid TOML: {text} (column {found.group(2)})"


def _expressions(value: Any, loc: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, str) and "${{" in value:
        yield loc
    elif isinstance(value, dict):
        for key, item in value.items():
            if "${{" in key:
                yield (*loc, key)
            yield from _expressions(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _expressions(item, (*loc, index))


def _describe(error: Any) -> tuple[tuple[str | int, ...], str]:
    loc = tuple(part for part in error["loc"] if part != "[key]")
    kind = error["type"]
    if kind == "extra_forbidden":
        suggestion = did_you_mean(str(loc[-1]), allowed_keys(loc[:-1]))
        return loc, f"unknown key{suggestion}"
    if kind == "value_error":
        return loc, str(error["msg"]).removeprefix("Value error, ")
    template = _MESSAGES.get(kind)
    if template is None:
        return loc, str(error["msg"])
    context = {key: _plain(value) for key, value in (error.get("ctx") or {}).items()}
    return loc, template.format(**context) if context else template


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def cross_check(manifest: Manifest) -> list[tuple[tuple[str | int, ...], str]]:
    """Rules that span several keys: unique ports, known dependencies, no cycles, matrix size."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    names = list(manifest.services)
    if len(names) > MAX_SERVICES:
        problems.append((("services",), f"at most {MAX_SERVICES} services (GitHub's matrix limit)"))
    owner: dict[int, str] = {}
    domains: dict[str, str] = {}
    for name, service in manifest.services.items():
        if name == "proxy":
            problems.append((("services", name), "the name is taken: <project>-proxy is the project proxy"))
        if service.port in owner:
            problems.append(
                (
                    (("services", name, "port")),
                    f"port {service.port} is already used by {owner[service.port]}",
                )
            )
        owner.setdefault(service.port, name)
        if service.domain and service.domain in domains:
            problems.append(
                (
                    ("services", name, "domain"),
                    f"{service.domain} is already served for {domains[service.domain]}",
                )
            )
        if service.domain:
            domains.setdefault(service.domain, name)
        problems += _check_depends_on(name, service.depends_on, names)
    graph = {
        name: [dep for dep in service.depends_on if dep != name]
        for name, service in manifest.services.items()
    }
    cycle = find_cycle(graph)
    if cycle:
        problems.append((("services", cycle[0], "depends_on"), "dependency cycle: " + " -> ".join(cycle)))
    if len(set(manifest.project.branches)) != len(manifest.project.branches):
        problems.append((("project", "branches"), "branches must be unique"))
    return (
        problems
        + _check_target_and_build(manifest)
        + _check_swarm(manifest)
        + _check_proxy(manifest)
        + environments.check(manifest)
        + plain_vars.check(manifest)
    )


SWARM_ONLY = (("replicas",), ("placement",), ("health", "command"))


def _check_swarm(manifest: Manifest) -> list[tuple[tuple[str | int, ...], str]]:
    """Swarm-only keys where no target is a swarm, and what a swarm cannot do: no registry build, a service
    off the proxy. A swarm anywhere counts: the top-level [target], or an environment's."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    target, build = manifest.target, manifest.build
    swarm_at = _swarm_kind_at(manifest)
    swarm = swarm_at is not None
    if target.manager is not None and not swarm:
        problems.append((("target", "manager"), "only used with kind = 'swarm'"))
    if manifest.proxy.placement and not swarm:
        problems.append((("proxy", "placement"), "only used with target.kind = 'swarm'"))
    if swarm_at is not None and build.where != "runner":
        problems.append(
            (swarm_at, "'swarm' needs images in a registry every node pulls from: set "
             "build.where = 'runner' and build.registry")
        )  # fmt: skip
    for name, service in manifest.services.items():
        for key in SWARM_ONLY:
            owner = service.health if key[0] == "health" else service
            if not swarm and key[-1] in owner.model_fields_set:
                problems.append((("services", name, *key), "only used with target.kind = 'swarm'"))
        if swarm and not service.proxy:
            problems.append(
                (("services", name, "proxy"), "a swarm has no routing mesh here: every service is reached "
                 "through the proxy on each node; remove proxy = false")
            )  # fmt: skip
        if swarm and service.domain:
            problems.append(
                (("services", name, "domain"), "not served on a swarm: terminate TLS in the load balancer "
                 "in front of the nodes")
            )  # fmt: skip
    return problems


def _swarm_kind_at(manifest: Manifest) -> tuple[str, ...] | None:
    """Where a target's kind is 'swarm': the top-level [target], else the first environment that makes it
    one."""
    if manifest.target.kind == "swarm":
        return ("target", "kind")
    for name, environment in manifest.environments.items():
        if environments.target_of(manifest, environment).kind == "swarm":
            return ("environments", name, "target", "kind")
    return None


def _check_depends_on(
    name: str, depends_on: list[str], names: list[str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """One service's depends_on: no itself, no unknown service."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for index, dependency in enumerate(depends_on):
        if dependency == name:
            problems.append((("services", name, "depends_on", index), "a service cannot depend on itself"))
        elif dependency not in names:
            suggestion = did_you_mean(dependency, names)
            problems.append(
                (("services", name, "depends_on", index), f"unknown service '{dependency}'{suggestion}")
            )
    return problems


def _check_proxy(manifest: Manifest) -> list[tuple[tuple[str | int, ...], str]]:
    """With a domain, the proxy also publishes http_port and https_port: no service may use them."""
    if not any(service.domain for service in manifest.services.values()):
        return []
    problems: list[tuple[tuple[str | int, ...], str]] = []
    proxy = manifest.proxy
    if proxy.http_port == proxy.https_port:
        problems.append((("proxy", "https_port"), "must differ from http_port"))
    for name, service in manifest.services.items():
        for key in ("http_port", "https_port"):
            if service.port == getattr(proxy, key):
                problems.append(
                    (
                        ("services", name, "port"),
                        f"port {service.port} is proxy.{key}, where domains are served",
                    )
                )
    return problems


def _check_target_and_build(manifest: Manifest) -> list[tuple[tuple[str | int, ...], str]]:
    problems: list[tuple[tuple[str | int, ...], str]] = []
    target, build = manifest.target, manifest.build
    if target.kind == "local" or target.manager == "local":
        for key in SSH_ONLY:
            if key in target.model_fields_set:
                where = "kind = 'ssh'" if target.kind == "local" else "manager = 'ssh'"
                problems.append((("target", key), f"only used with {where}"))
    if build.where == "runner" and build.registry is None:
        problems.append(
            (("build", "where"), "'runner' needs a registry to push to, e.g. registry = 'ghcr.io/owner'")
        )
    if (build.registry_user_env is None) != (build.registry_password_env is None):
        problems.append((("build",), "set both registry_user_env and registry_password_env, or neither"))
    return problems


def find_cycle(graph: dict[str, list[str]]) -> list[str]:
    """The first dependency cycle found, as a path that ends where it starts; [] when there is none."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in graph.get(node, []):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        state[node] = 2
        return []

    for start in graph:
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return []

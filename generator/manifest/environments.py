"""`[environments]`: one manifest, several copies of the fleet (production, staging, ...).

Each environment deploys from its own branches, with its own GitHub environment, optionally its own target
keys and a port offset. On the target every name it owns carries its name: `<project>-<env>-<service>`,
images `<project>-<env>/<service>`, the proxy, the network (unless its own [target] names one) and
`<state_dir>/<env>` (locks, audit log).
"""

from __future__ import annotations

from collections.abc import Sequence

from generator.errors import WfgenError
from generator.manifest.fields import check_name
from generator.manifest.model import Environment, Manifest
from generator.manifest.target import SSH_ONLY, Target
from generator.steps.core.names import did_you_mean

Problem = tuple[tuple[str | int, ...], str]


class UnknownEnvironment(WfgenError):
    """No environment fits what was asked (an unknown name, a branch no environment deploys)."""


def target_of(manifest: Manifest, environment: Environment) -> Target:
    """The base [target] with the keys the environment sets itself."""
    override = environment.target
    if override is None:
        return manifest.target
    return manifest.target.model_copy(
        update={key: getattr(override, key) for key in override.model_fields_set}
    )


def branches(manifest: Manifest) -> list[str]:
    """Every branch that deploys somewhere, in manifest order: the dispatch form's choices."""
    if not manifest.environments:
        return list(manifest.project.branches)
    return [branch for environment in manifest.environments.values() for branch in environment.branches]


def environment_of_branch(manifest: Manifest) -> dict[str, str]:
    """branch -> the environment it deploys to."""
    return {
        branch: name for name, environment in manifest.environments.items() for branch in environment.branches
    }


def choose(manifest: Manifest, name: str | None, branch: str | None) -> str | None:
    """The environment a command acts on: `--env`, else the branch's, else the first; None without any."""
    if not manifest.environments:
        if name is not None:
            raise UnknownEnvironment(f"--env {name}: the manifest has no [environments]")
        return None
    known = list(manifest.environments)
    if name is not None:
        if name not in manifest.environments:
            raise UnknownEnvironment(f"--env: unknown environment {name!r}{did_you_mean(name, known)}; "
                                    f"known: {', '.join(known)}")  # fmt: skip
        allowed = manifest.environments[name].branches
        if branch is not None and branch not in allowed:
            raise UnknownEnvironment(
                f"branch {branch!r} does not deploy to {name}; its branches: {', '.join(allowed)}"
            )
        return name
    if branch is None:
        return known[0]
    found = environment_of_branch(manifest).get(branch)
    if found is None:
        every = branches(manifest)
        hint = did_you_mean(branch, every)
        raise UnknownEnvironment(f"unknown branch {branch!r}{hint}; branches that deploy: {', '.join(every)}")
    return found


def check(manifest: Manifest) -> list[Problem]:
    """What one environment's keys cannot say alone: branches, names, ports, targets shared by two."""
    if not manifest.environments:
        return []
    problems: list[Problem] = []
    if "branches" in manifest.project.model_fields_set:
        problems.append((("project", "branches"), "with [environments], each environment lists its branches"))
    if manifest.target.environment is not None:
        problems.append(
            (("target", "environment"), "with [environments], set github_environment in each environment")
        )
    owner: dict[str, tuple[str, str]] = {}  # GitHub compares names in expressions ignoring case
    for name, environment in manifest.environments.items():
        where = ("environments", name)
        problems += _check_one(manifest, name, environment)
        for index, branch in enumerate(environment.branches):
            seen, other = owner.get(branch.lower(), (branch, name))
            if other != name:
                same = "" if seen == branch else f" as {seen} (GitHub compares branch names ignoring case)"
                problems.append(((*where, "branches", index), f"{branch} already deploys to {other}{same}"))
            owner.setdefault(branch.lower(), (branch, name))
    return (
        problems
        + _check_container_names(manifest)
        + _check_networks(manifest)
        + _check_shared_targets(manifest)
    )


def _check_container_names(manifest: Manifest) -> list[Problem]:
    """`<project>-<environment>-<service>` must name one container: environment `a` with service `b-web`
    and environment `a-b` with service `web` would share one."""
    problems: list[Problem] = []
    owner: dict[str, str] = {}
    for name in manifest.environments:
        for service in [*manifest.services, "proxy"]:
            container = f"{manifest.project.name}-{name}-{service}"
            if owner.setdefault(container, name) != name:
                problems.append((("environments", name), f"{container} would name a container of both "
                                 f"{owner[container]} and {name}; rename one environment"))  # fmt: skip
                break
    return problems


def _check_one(manifest: Manifest, name: str, environment: Environment) -> list[Problem]:
    where = ("environments", name)
    problems: list[Problem] = []
    try:
        check_name(f"{manifest.project.name}-{name}")
    except ValueError:
        problems.append(
            (where, f"'{manifest.project.name}-{name}' names its containers: at most 63 characters")
        )
    if len(set(environment.branches)) != len(environment.branches):
        problems.append(((*where, "branches"), "branches must be unique"))
    own = environment.target.model_fields_set if environment.target is not None else set()
    if "environment" in own:
        problems.append(((*where, "target", "environment"), "set github_environment instead"))
    if target_of(manifest, environment).kind == "local":
        for key in (key for key in SSH_ONLY if key in own):
            problems.append(((*where, "target", key), "only used with kind = 'ssh'"))
    for service, port in ports(manifest, environment).items():
        if port > 65535:
            problems.append(((*where, "port_offset"), f"moves {service} to port {port}, above 65535"))
            break
    if any(service.domain for service in manifest.services.values()):
        proxy = {manifest.proxy.http_port: "http_port", manifest.proxy.https_port: "https_port"}
        for service, port in ports(manifest, environment).items():
            if port in proxy and environment.port_offset:
                problems.append(((*where, "port_offset"), f"moves {service} to port {port}, the "
                                 f"proxy's {proxy[port]}, where domains are served"))  # fmt: skip
    return problems


def ports(manifest: Manifest, environment: Environment) -> dict[str, int]:
    """Each service's host port in the environment."""
    return {name: service.port + environment.port_offset for name, service in manifest.services.items()}


def network(manifest: Manifest, name: str) -> str:
    """The environment's Docker network: its own (`<network>-<environment>`) unless its own [target] table
    names one. Services answer there by their name, and whether two host secrets hold one host cannot be
    known: two environments never share a network by inference (`check` refuses two naming the same one)."""
    environment = manifest.environments[name]
    if own_network(environment):
        assert environment.target is not None and environment.target.network is not None
        return environment.target.network
    if manifest.target.network:
        return f"{manifest.target.network}-{name}"
    return f"{manifest.project.name}-{name}-network"


def own_network(environment: Environment) -> bool:
    """The environment's [target] table sets `network` itself."""
    return environment.target is not None and "network" in environment.target.model_fields_set


def _check_networks(manifest: Manifest) -> list[Problem]:
    problems: list[Problem] = []
    owner: dict[str, str] = {}
    for name in manifest.environments:
        own = network(manifest, name)
        other = owner.setdefault(own, name)
        if other != name:
            why = "on one host their services would answer each other's names"
            problems.append(
                (("environments", name, "target", "network"), f"{own} is also {other}'s network: {why}")
            )
    return problems


def _same_target(manifest: Manifest) -> list[list[str]]:
    """Environments that deploy to one host or swarm: the same kind and, over ssh (to a VPS or a swarm's
    manager), the same host secret."""
    groups: dict[tuple[str, str | None], list[str]] = {}
    for name, environment in manifest.environments.items():
        target = target_of(manifest, environment)
        over_ssh = target.kind == "ssh" or (target.kind == "swarm" and target.manager != "local")
        groups.setdefault((target.kind, target.host_env if over_ssh else None), []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def _check_shared_targets(manifest: Manifest) -> list[Problem]:
    problems: list[Problem] = []
    for names in _same_target(manifest):
        problems += _clashes(manifest, names)
    return problems


def _clashes(manifest: Manifest, names: Sequence[str]) -> list[Problem]:
    """Two environments on one host: ports and the domains' proxy ports must not meet (networks never do)."""
    problems: list[Problem] = []
    taken: dict[int, str] = {}
    domains = any(service.domain for service in manifest.services.values())
    for name in names:
        where = ("environments", name)
        mine = ports(manifest, manifest.environments[name])
        clash = next(((service, port) for service, port in mine.items() if port in taken), None)
        if clash is not None:
            service, port = clash
            problems.append(((*where, "port_offset"), f"{service}'s port {port} is taken by {taken[port]} on "
                             "the same target; set a port_offset that keeps them apart"))  # fmt: skip
        for port in mine.values():
            taken.setdefault(port, name)
        if domains and name != names[0]:
            both = f"{manifest.proxy.http_port} and {manifest.proxy.https_port}"
            problems.append(
                (where, f"serves domains on the same target as {names[0]}: both proxies would publish {both}")
            )
    return problems

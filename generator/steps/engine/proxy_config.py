"""Caddy JSON for the project proxy, and the admin API requests that read and load it. Pure: runs nothing.

One Caddy per project (docs/design.md). Its config is a function of the manifest alone:

* `apps.http.servers["wfgen-<service>"]` listens on `:<port>` and proxies to `<project>-<service>:<container
  port>`, the *live name*. A deploy never changes the config: it renames containers, and Docker's DNS answers
  the next connection with the new one. Every admin change makes Caddy reload its whole config, which closes
  idle keep-alive connections of every service and, now and then, a connection accepted during the reload,
  so a change belongs to check-infrastructure (a new service or domain), never to a deploy.
* Each request opens its own connection to the upstream (no keep-alive): a pooled connection would keep
  sending requests to the old container after the switch, for as long as traffic keeps it busy. A dial that
  finds no live name (the instant between two renames) is retried for `RETRY_FOR`.
* `apps.http.servers["wfgen-domains"]` listens on `:<https_port>` and routes by host name to the same live
  names, with automatic HTTPS (`acme`) or Caddy's own CA (`internal`).
* `admin` listens on a unix socket only and persists every change (`autosave.json` in XDG_CONFIG_HOME), so
  `caddy run --resume` brings the routes back after a restart or a reboot.

Stdlib only; admin requests are argument lists for curl on the target, the body always on stdin.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

ADMIN_DIR = "/run/wfgen-admin"  # inside the proxy container: a bind mount of a 0700 folder on the target
ADMIN_SOCKET_NAME = "admin.sock"
CONFIG_DIR = "/config"  # XDG_CONFIG_HOME: caddy/autosave.json
DATA_DIR = "/data"  # XDG_DATA_HOME: certificates, the internal CA (caddy/pki/authorities/local/)
INITIAL_CONFIG = f"{CONFIG_DIR}/wfgen-initial.json"  # read only while there is no autosave yet
DOMAINS_SERVER = "wfgen-domains"
TLS_ISSUERS = ("acme", "internal")
ADMIN_HOST = "localhost"  # the Host header of admin requests; curl talks to the socket, nothing is resolved
CURL_TIMEOUT_S = 10
RETRY_FOR = "5s"
RETRY_EVERY = "50ms"
# A dial includes the DNS lookup. Docker's DNS forwards a name it does not know (the live name in the instant
# between two renames) to the host's resolvers, which can take seconds to say no: give up on one attempt soon
# and dial again, by which time the name is back.
DIAL_TIMEOUT = "500ms"


@dataclass(frozen=True)
class Route:
    """One proxied service: its public port, the live container it reaches, and an optional host name."""

    service: str
    port: int
    upstream: str  # "<live name>:<container port>"
    domain: str | None = None


def server_id(service: str) -> str:
    return f"wfgen-{service}"


def _listen(port: int) -> list[str]:
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port must be between 1 and 65535, not {port}")
    return [f":{int(port)}"]


def reverse_proxy(upstream: str) -> JSON:
    return {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": upstream}],
        "load_balancing": {"try_duration": RETRY_FOR, "try_interval": RETRY_EVERY},
        "transport": {"protocol": "http", "keep_alive": {"enabled": False}, "dial_timeout": DIAL_TIMEOUT},
    }


def service_server(route: Route) -> JSON:
    return {
        "@id": server_id(route.service),
        "listen": _listen(route.port),
        "routes": [{"handle": [reverse_proxy(route.upstream)]}],
        "automatic_https": {"disable": True},  # plain HTTP on the service's port; TLS is the domains' server
    }


def domains_server(https_port: int, routes: Sequence[Route]) -> JSON:
    """Host-name routes on the HTTPS port; Caddy adds the HTTP→HTTPS redirect on http_port itself."""
    return {
        "@id": DOMAINS_SERVER,
        "listen": _listen(https_port),
        "protocols": ["h1", "h2"],  # no HTTP/3: its UDP port is not published
        "routes": [
            {"match": [{"host": [r.domain]}], "handle": [reverse_proxy(r.upstream)], "terminal": True}
            for r in routes
            if r.domain
        ],
    }


def apps(routes: Sequence[Route], *, http_port: int, https_port: int, tls: str) -> JSON:
    """`apps` of the proxy's config: everything but the admin endpoint."""
    if tls not in TLS_ISSUERS:
        raise ValueError(f"tls must be one of {', '.join(TLS_ISSUERS)}, not {tls!r}")
    servers = {server_id(r.service): service_server(r) for r in routes}
    if any(r.domain for r in routes):
        servers[DOMAINS_SERVER] = domains_server(https_port, routes)
    result: JSON = {"http": {"http_port": int(http_port), "https_port": int(https_port), "servers": servers}}
    if tls == "internal":
        result["tls"] = {"automation": {"policies": [{"issuers": [{"module": "internal"}]}]}}
        # The internal CA would try to add its root to the container's own trust store: nothing to gain.
        result["pki"] = {"certificate_authorities": {"local": {"install_trust": False}}}
    return result


def config(app_config: JSON) -> JSON:
    """The whole config: `apps` plus an admin endpoint on the unix socket only, persisting every change."""
    return {
        # Over a unix socket Caddy accepts no Host header unless listed, and curl always sends one.
        "admin": {
            "listen": f"unix/{ADMIN_DIR}/{ADMIN_SOCKET_NAME}",
            "origins": [ADMIN_HOST],
            "config": {"persist": True},
        },
        "apps": app_config,
    }


def dumps(data: JSON) -> bytes:
    """Deterministic JSON bytes (sorted keys) for files and request bodies."""
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def admin_request(
    socket_path: str, method: str, path: str, body: JSON | None = None
) -> tuple[list[str], bytes | None]:
    """curl argv (and stdin) for one admin request over the unix socket on the target."""
    if method not in {"GET", "POST", "PATCH", "DELETE"}:
        raise ValueError(f"unknown method {method!r}")
    if not path.startswith("/") or any(c.isspace() for c in path):
        raise ValueError(f"bad admin path {path!r}")
    argv = [
        "curl",
        "--unix-socket",
        socket_path,
        "-sS",
        "--fail-with-body",
        "--max-time",
        str(CURL_TIMEOUT_S),
    ]
    argv += ["-X", method]
    data: bytes | None = None
    if body is not None:
        argv += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        data = dumps(body)
    return [*argv, f"http://{ADMIN_HOST}{path}"], data

"""generator/steps/engine/proxy_config.py: the Caddy JSON a manifest implies and the admin requests, as tables.

What real Caddy does with this config is in tests/test_proxy.py and tests/test_handover.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from generator.steps.engine import proxy_config as pc

WEB = pc.Route("web", 3000, "p-web:8080")
CHAT = pc.Route("chat", 3002, "p-chat:3002", domain="chat.example.com")


def test_each_service_listens_on_its_port_and_dials_its_live_name() -> None:
    server = pc.service_server(WEB)
    assert server["@id"] == "wfgen-web" and server["listen"] == [":3000"]
    [route] = server["routes"]
    [handler] = route["handle"]
    assert handler["handler"] == "reverse_proxy"
    assert handler["upstreams"] == [{"dial": "p-web:8080"}]
    assert server["automatic_https"] == {"disable": True}


def test_the_upstream_is_dialled_per_request_and_a_missing_name_is_retried() -> None:
    """No pooled connection outlives a switch; the instant between the two renames is a retried dial."""
    handler = pc.reverse_proxy("p-web:8080")
    assert handler["transport"] == {
        "protocol": "http", "keep_alive": {"enabled": False}, "dial_timeout": pc.DIAL_TIMEOUT,
    }  # fmt: skip
    assert handler["load_balancing"] == {"try_duration": pc.RETRY_FOR, "try_interval": pc.RETRY_EVERY}


def test_domains_share_one_https_server_routed_by_host() -> None:
    apps = pc.apps([WEB, CHAT], http_port=80, https_port=443, tls="acme")
    servers = apps["http"]["servers"]
    assert set(servers) == {"wfgen-web", "wfgen-chat", pc.DOMAINS_SERVER}
    domains = servers[pc.DOMAINS_SERVER]
    assert domains["listen"] == [":443"] and domains["protocols"] == ["h1", "h2"]
    [route] = domains["routes"]
    assert route["match"] == [{"host": ["chat.example.com"]}]
    assert route["handle"] == [pc.reverse_proxy("p-chat:3002")], "the same live name as the port listener"
    assert "tls" not in apps, "acme: Caddy's own defaults"
    assert (apps["http"]["http_port"], apps["http"]["https_port"]) == (80, 443)


def test_no_domain_no_https_server() -> None:
    apps = pc.apps([WEB], http_port=80, https_port=443, tls="acme")
    assert set(apps["http"]["servers"]) == {"wfgen-web"}


def test_internal_ca_issues_every_certificate_and_stays_out_of_the_trust_store() -> None:
    apps = pc.apps([CHAT], http_port=8080, https_port=8443, tls="internal")
    assert apps["tls"] == {"automation": {"policies": [{"issuers": [{"module": "internal"}]}]}}
    assert apps["pki"] == {"certificate_authorities": {"local": {"install_trust": False}}}


def test_admin_is_a_persisted_unix_socket_only() -> None:
    whole = pc.config(pc.apps([WEB], http_port=80, https_port=443, tls="acme"))
    assert whole["admin"] == {
        "listen": f"unix/{pc.ADMIN_DIR}/{pc.ADMIN_SOCKET_NAME}",
        "origins": ["localhost"],
        "config": {"persist": True},
    }


@pytest.mark.parametrize(
    ("method", "path", "body", "tail"),
    [
        ("GET", "/config/", None, ["-X", "GET", "http://localhost/config/"]),
        (
            "POST",
            "/config/apps",
            {"http": {}},
            [
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "@-",
                "http://localhost/config/apps",
            ],
        ),
    ],
)
def test_admin_requests_go_to_the_socket_with_the_body_on_stdin(
    method: str, path: str, body: dict[str, Any] | None, tail: list[str]
) -> None:
    argv, data = pc.admin_request("/s/admin.sock", method, path, body)
    assert argv[:3] == ["curl", "--unix-socket", "/s/admin.sock"]
    assert argv[-len(tail) :] == tail
    assert data == (None if body is None else pc.dumps(body))
    if body is not None:
        assert not any(json.dumps(body, sort_keys=True) in arg for arg in argv)


@pytest.mark.parametrize(
    "build",
    [
        lambda: pc.admin_request("/s", "PUT", "/config/"),
        lambda: pc.admin_request("/s", "GET", "config/"),
        lambda: pc.admin_request("/s", "GET", "/config/ x"),
        lambda: pc.service_server(pc.Route("web", 0, "p-web:1")),
        lambda: pc.apps([WEB], http_port=80, https_port=443, tls="letsencrypt"),
    ],
)
def test_bad_input_is_refused(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


def test_dumps_is_deterministic() -> None:
    first = pc.dumps(pc.config(pc.apps([CHAT, WEB], http_port=80, https_port=443, tls="acme")))
    assert first == pc.dumps(json.loads(first)) and first.endswith(b"\n")


def test_module_needs_only_the_stdlib() -> None:
    code = "import sys; sys.path.insert(0, sys.argv[1]); import generator.steps.engine.proxy_config"
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code, root], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr

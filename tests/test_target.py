"""generator/steps/core/target.py and probe.py against a real local shell and a real sshd."""

from __future__ import annotations

import http.server
import io
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generator.steps.core import config, steplib, transport
from generator.steps.core import target as targets
from generator.steps.engine import probe
from tests.support.docker import docker
from tests.support.manifests import target_view
from tests.support.ports import free_port
from tests.support.sshd import SshServer, start_sshd, start_sshd_with_tools

HOSTILE = [
    "; touch {marker}",
    "$(touch {marker})",
    "`touch {marker}`",
    "a'b\"c",
    "two words",
    "line1\nline2",
    "*",
    "--help",
    "&& touch {marker} #",
]


def ssh_manifest(server: SshServer, **overrides: Any) -> config.Target:
    return target_view(server.target_config(**overrides))


@pytest.fixture
def ssh_target(sshd: SshServer) -> Iterator[transport.Target]:
    with targets.open_target(ssh_manifest(sshd), sshd.target_env()) as target:
        yield target


@pytest.fixture(params=["local", "ssh"])
def any_target(request: pytest.FixtureRequest) -> Iterator[transport.Target]:
    if request.param == "local":
        with targets.open_target(target_view({"kind": "local"}), {}) as target:
            yield target
    else:
        yield request.getfixturevalue("ssh_target")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/health":
            self.send_response(200)
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/health")
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_hostile_arguments_stay_single_literal_arguments(
    any_target: transport.Target, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    args = [arg.format(marker=marker) for arg in HOSTILE]
    result = any_target.run(["printf", "<%s>\\n", *args], check=True)
    assert result.stdout == "".join(f"<{arg}>\n" for arg in args)
    assert not marker.exists()


def test_env_values_are_passed_literally(any_target: transport.Target) -> None:
    result = any_target.run(["sh", "-c", 'printf %s "$WFGEN_X"'], env={"WFGEN_X": "a b; $(id) 'q'"})
    assert result.stdout == "a b; $(id) 'q'"


def test_nonzero_exit_is_a_result_unless_check(any_target: transport.Target) -> None:
    result = any_target.run(["sh", "-c", "echo out; echo oops >&2; exit 3"])
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "oops\n")
    with pytest.raises(transport.CommandFailed, match=r"^sh exited 3: oops$") as caught:
        any_target.run(["sh", "-c", "echo oops >&2; exit 3"], check=True)
    assert caught.value.result.returncode == 3


def test_timeout_becomes_124(any_target: transport.Target) -> None:
    started = time.monotonic()
    result = any_target.run(["sleep", "20"], timeout=1)
    assert result.returncode == 124
    assert result.stderr == "timed out after 1 s"
    assert time.monotonic() - started < 10


def test_input_and_run_stream(any_target: transport.Target, tmp_path: Path) -> None:
    assert any_target.run(["cat"], input=b"piped\x00bytes").stdout == "piped\x00bytes"
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"x" * 300_000)
    with payload.open("rb") as handle:
        assert any_target.run_stream(["wc", "-c"], stdin_file=handle, timeout=30).stdout.strip() == "300000"
    assert (
        any_target.run_stream(["wc", "-c"], stdin_file=io.BytesIO(b"12345"), timeout=30).stdout.strip() == "5"
    )


def test_put_file_is_private_by_default(any_target: transport.Target, tmp_path: Path) -> None:
    path = tmp_path / "nested" / "service.env"
    any_target.put_file(str(path), b"JWT_SECRET=s3cr3t\n")
    assert path.read_bytes() == b"JWT_SECRET=s3cr3t\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    any_target.put_file(str(path), b"replaced\n", mode=0o644)
    assert path.read_bytes() == b"replaced\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["service.env"]


def test_home_path_is_relative_to_the_target_users_home(any_target: transport.Target) -> None:
    home = any_target.run(["sh", "-c", 'printf %s "$HOME"'], check=True).stdout
    assert any_target.home_path(".wfgen") == f"{home.rstrip('/')}/.wfgen"
    assert any_target.home_path("/srv/wfgen") == "/srv/wfgen"


def test_missing_command_is_127(any_target: transport.Target) -> None:
    assert any_target.run(["wfgen-no-such-command-here"]).returncode == 127


def test_descriptions(sshd: SshServer, ssh_target: transport.Target) -> None:
    assert ssh_target.kind == "ssh"
    assert ssh_target.description == f"$VPS_USER@$VPS_HOST:{sshd.port}"
    assert targets.open_target(target_view({"kind": "local"})).description == "local docker"


def test_redact_names_home_host_and_user_but_leaves_words_that_contain_them(
    sshd: SshServer, ssh_target: transport.Target
) -> None:
    home = ssh_target.home_path("~")
    text = f"cannot open {home}/.wfgen/x for {sshd.user}@{sshd.host}: {sshd.user}ed"
    assert ssh_target.redact(text) == f"cannot open ~/.wfgen/x for $VPS_USER@$VPS_HOST: {sshd.user}ed"


def test_commands_share_one_ssh_connection(sshd: SshServer) -> None:
    def logins() -> int:
        return sshd.log.count("Accepted publickey")

    with targets.open_target(ssh_manifest(sshd), sshd.target_env()) as target:
        target.run(["true"], check=True)
        before = logins()
        for _ in range(10):
            target.run(["true"], check=True)
    assert logins() == before, "each command opened a new SSH connection"


def test_remote_exit_255_is_not_a_connection_error(ssh_target: transport.Target) -> None:
    assert ssh_target.run(["sh", "-c", "exit 255"]).returncode == 255


def test_key_file_is_private_and_removed_on_close(sshd: SshServer) -> None:
    target = targets.open_target(ssh_manifest(sshd), sshd.target_env())
    assert isinstance(target, targets.SshTarget)
    key = Path(target.key_path)
    target.run(["true"], check=True)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text() == sshd.private_key
    target.close()
    assert not key.exists()
    assert not key.parent.exists()


@pytest.mark.parametrize("mangle", [lambda k: k.strip().replace("\n", "\\n"), lambda k: k.rstrip("\n")])
def test_keys_pasted_with_literal_newlines_or_no_final_newline(sshd: SshServer, mangle: Any) -> None:
    env = {**sshd.target_env(), "VPS_SSH_KEY": mangle(sshd.private_key)}
    with targets.open_target(ssh_manifest(sshd), env) as target:
        assert target.run(["echo", "ok"], check=True).stdout == "ok\n"


@pytest.mark.parametrize("missing", ["VPS_HOST", "VPS_USER", "VPS_SSH_KEY", "VPS_KNOWN_HOSTS"])
def test_missing_env_var_is_a_usage_error_naming_it(sshd: SshServer, missing: str) -> None:
    env = {**sshd.target_env(), "VPS_SSH_KEY": "-----BEGIN SECRET-MATERIAL-----"}
    del env[missing]
    with pytest.raises(steplib.UsageError) as caught:
        targets.open_target(ssh_manifest(sshd), env)
    assert missing in str(caught.value)
    assert "SECRET-MATERIAL" not in str(caught.value)


def test_unreachable_port_fails_fast(sshd: SshServer) -> None:
    manifest = ssh_manifest(sshd, port=free_port())
    started = time.monotonic()
    with targets.open_target(manifest, sshd.target_env()) as target:
        with pytest.raises(transport.TargetError, match="cannot reach") as caught:
            target.run(["true"])
    assert time.monotonic() - started < 10
    assert "\n" not in str(caught.value)
    assert "PRIVATE KEY" not in str(caught.value)


def test_wrong_host_key_is_refused(sshd: SshServer, tmp_path: Path) -> None:
    other = start_sshd(tmp_path / "other-sshd")
    try:
        env = {
            **sshd.target_env(),
            "VPS_KNOWN_HOSTS": other.known_hosts.replace(str(other.port), str(sshd.port)),
        }
        with targets.open_target(ssh_manifest(sshd), env) as target:
            with pytest.raises(transport.TargetError, match="[Hh]ost key"):
                target.run(["true"])
    finally:
        other.stop()


def test_insecure_mode_skips_host_key_check_with_one_warning(
    sshd: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {k: v for k, v in sshd.target_env().items() if k != "VPS_KNOWN_HOSTS"}
    with targets.open_target(ssh_manifest(sshd, insecure_ignore_host_key=True), env) as target:
        assert target.run(["echo", "ok"], check=True).stdout == "ok\n"
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "insecure_ignore_host_key" in err


def test_remote_docker_reaches_the_test_engine(ssh_target: transport.Target, docker_host: str) -> None:
    local = docker(docker_host, "info", "--format", "{{.ID}}", timeout=30)
    remote = ssh_target.run(["docker", "info", "--format", "{{.ID}}"], timeout=30, check=True)
    assert remote.stdout.strip() == local.stdout.strip() != ""


def test_http_probe_from_the_target(any_target: transport.Target, http_port: int) -> None:
    base = f"http://127.0.0.1:{http_port}"
    assert probe.http_probe(any_target, f"{base}/health", 5) == 200
    assert probe.http_probe(any_target, f"{base}/missing", 5) == 404
    assert probe.http_probe(any_target, f"{base}/moved", 5) == 302
    assert probe.http_probe(any_target, f"http://127.0.0.1:{free_port()}/health", 2) is None


def test_http_probes_ask_every_url_at_once(any_target: transport.Target, http_port: int) -> None:
    base = f"http://127.0.0.1:{http_port}"
    urls = [f"{base}/health", f"{base}/missing", f"{base}/moved", f"http://127.0.0.1:{free_port()}/health"]
    assert probe.http_probes(any_target, [(url, 2) for url in urls]) == [200, 404, 302, None]
    assert probe.http_probes(any_target, []) == []


def test_http_probe_rejects_non_http_urls(any_target: transport.Target) -> None:
    with pytest.raises(ValueError, match="not an http"):
        probe.http_probe(any_target, "file:///etc/passwd", 2)


def test_tcp_probe_from_the_target(any_target: transport.Target, http_port: int) -> None:
    assert probe.tcp_probe(any_target, "127.0.0.1", http_port, 3) is True
    assert probe.tcp_probe(any_target, "127.0.0.1", free_port(), 3) is False


# What a minimal VPS without curl and wget still has.
@pytest.fixture
def sshd_without_http_client(tmp_path: Path) -> Iterator[SshServer]:
    server = start_sshd_with_tools(tmp_path / "sshd-no-curl")
    yield server
    server.stop()


def test_http_probe_without_curl_or_wget_is_an_error_not_no_answer(
    sshd_without_http_client: SshServer, http_port: int
) -> None:
    server = sshd_without_http_client
    with targets.open_target(ssh_manifest(server), server.target_env()) as target:
        assert target.run(["sh", "-c", "command -v curl || command -v wget"]).returncode != 0
        started = time.monotonic()
        with pytest.raises(transport.TargetError) as caught:
            probe.http_probe(target, f"http://127.0.0.1:{http_port}/health", 5)
        with pytest.raises(
            transport.TargetError, match="^neither curl nor wget on the target; install curl$"
        ):
            probe.http_probes(target, [(f"http://127.0.0.1:{http_port}/health", 5)] * 2)
    assert str(caught.value) == "neither curl nor wget on the target; install curl"
    assert time.monotonic() - started < 10

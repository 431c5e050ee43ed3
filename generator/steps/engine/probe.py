"""Probes run from the target's side: is an HTTP endpoint healthy, does a TCP port answer.

Stdlib only. Local targets probe directly; ssh targets run curl/wget/bash on the remote host, so a
service bound to the remote loopback is reachable.
"""

from __future__ import annotations

import re
import socket
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..core.transport import Target, TargetError


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_LOCAL_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

NO_HTTP_CLIENT = 127
LOCAL_PROBES_AT_ONCE = 8
# curl, else wget: whichever the target has. Prints "code:NNN" or wget's headers; exit 127 when neither.
_HTTP_PROBE_SCRIPT = (
    "if command -v curl >/dev/null 2>&1; then "
    'curl -s --noproxy "*" -o /dev/null -w "code:%{http_code}" -m "$1" "$2"; '
    'elif command -v wget >/dev/null 2>&1; then wget -q -S -O /dev/null -T "$1" "$2" 2>&1; '
    "else exit 127; fi"
)
# The probe script ("$1") for each timeout-url pair after it, all at once; one line per probe:
# "<index> <exit code> <its output on one line>".
_HTTP_PROBES_SCRIPT = (
    "p=$1; shift; i=0; set -f; while [ $# -ge 2 ]; do "
    '(o=$(sh -c "$p" sh "$1" "$2"); c=$?; printf "%s %s %s\\n" "$i" "$c" "$(printf "%s " $o)") & '
    "i=$((i + 1)); shift 2; done; wait"
)
_TCP_PROBE_SCRIPT = (
    "if command -v bash >/dev/null 2>&1 && command -v timeout >/dev/null 2>&1; then "
    'exec timeout "$3" bash -c \'exec 3<>"/dev/tcp/$0/$1"\' "$1" "$2" 2>/dev/null; fi; '
    "exec python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), "
    'float(sys.argv[3])).close()\' "$1" "$2" "$3" 2>/dev/null'
)


def http_probe(target: Target, url: str, timeout: float) -> int | None:
    """HTTP status of GET url as seen from the target (redirects not followed), or None if no answer."""
    _check_url(url)
    if target.kind == "local":
        return _local_probe(url, timeout)
    result = target.run(["sh", "-c", _HTTP_PROBE_SCRIPT, "sh", f"{timeout:g}", url], timeout=timeout + 15)
    return _status(result.returncode, result.stdout)


def http_probes(target: Target, probes: Sequence[tuple[str, float]]) -> list[int | None]:
    """http_probe of every (url, timeout) at once: on an ssh target in one command, not one session each."""
    for url, _timeout in probes:
        _check_url(url)
    if not probes:
        return []
    if target.kind == "local":
        with ThreadPoolExecutor(max_workers=min(len(probes), LOCAL_PROBES_AT_ONCE)) as pool:
            return list(pool.map(lambda probe: _local_probe(*probe), probes))
    args = [arg for url, timeout in probes for arg in (f"{timeout:g}", url)]
    argv = ["sh", "-c", _HTTP_PROBES_SCRIPT, "sh", _HTTP_PROBE_SCRIPT, *args]
    result = target.run(argv, timeout=max(timeout for _, timeout in probes) + 15)
    found: dict[str, int | None] = {}
    for line in result.stdout.splitlines():
        index, code, output = (line.split(" ", 2) + ["", ""])[:3]
        found[index] = _status(int(code) if code.isdigit() else 0, output)
    return [found.get(str(index)) for index in range(len(probes))]


def _check_url(url: str) -> None:
    if not re.match(r"https?://", url):
        raise ValueError(f"not an http(s) URL: {url!r}")


def _local_probe(url: str, timeout: float) -> int | None:
    try:
        with _LOCAL_OPENER.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def _status(returncode: int, output: str) -> int | None:
    """The status the probe script printed (curl's code, or the last of wget's headers), None for none."""
    if returncode == NO_HTTP_CLIENT:
        # Not "no answer": otherwise every health check would wait out its deadline and blame the service.
        raise TargetError("neither curl nor wget on the target; install curl")
    found = re.search(r"code:(\d{3})", output)
    codes = [found.group(1)] if found else re.findall(r"HTTP/\S+\s+(\d{3})", output)
    status = int(codes[-1]) if codes else 0
    return status or None


def tcp_probe(target: Target, host: str, port: int, timeout: float) -> bool:
    """True when host:port accepts a TCP connection from the target's side."""
    if target.kind == "local":
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            return False
    argv = ["sh", "-c", _TCP_PROBE_SCRIPT, "sh", host, str(int(port)), f"{timeout:g}"]
    return target.run(argv, timeout=timeout + 15).returncode == 0

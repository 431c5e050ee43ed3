"""The few GitHub REST calls a step makes: stdlib `urllib`, `GITHUB_API_URL` (GitHub Enterprise Server too),
a timeout, one retry on a 5xx answer or a dropped connection. The token goes in one header and nowhere else:
no message, exception or `repr` carries it."""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
TIMEOUT_S = 10.0
ATTEMPTS = 2  # the first try and one retry, on a 5xx or a dropped connection
REPOSITORY = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")


class ApiError(Exception):
    """A call that did not succeed; the message names the call and GitHub's reason, never the token."""


@dataclass(frozen=True)
class Client:
    api_url: str
    repository: str  # owner/name
    token: str = field(repr=False)
    timeout_s: float = TIMEOUT_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Client:
        """From WFGEN_GITHUB_TOKEN, GITHUB_REPOSITORY and GITHUB_API_URL; ApiError saying what is missing."""
        token, repository = environ.get("WFGEN_GITHUB_TOKEN", ""), environ.get("GITHUB_REPOSITORY", "")
        api_url = environ.get("GITHUB_API_URL") or DEFAULT_API_URL
        if not token:
            raise ApiError("WFGEN_GITHUB_TOKEN (the job's github.token) is not set in the step's environment")
        if not token.isprintable() or any(c.isspace() for c in token):  # http.client would echo it back
            raise ApiError("WFGEN_GITHUB_TOKEN holds a space or a control character (its value is not shown)")
        if not REPOSITORY.fullmatch(repository):
            raise ApiError(f"GITHUB_REPOSITORY: expected owner/name, got {repository[:80]!r}")
        if urllib.parse.urlsplit(api_url).scheme not in ("https", "http"):
            raise ApiError(f"GITHUB_API_URL: expected an http(s) URL, got {api_url[:80]!r}")
        return cls(api_url.rstrip("/"), repository, token)

    def url(self, path: str, query: Mapping[str, str | int] | None = None) -> str:
        suffix = "?" + urllib.parse.urlencode(query) if query else ""
        return f"{self.api_url}/repos/{self.repository}{path}{suffix}"

    def call(
        self, method: str, path: str, body: Any = None, query: Mapping[str, str | int] | None = None
    ) -> Any:
        """The decoded JSON answer of one call under /repos/<owner>/<name>; ApiError when it fails."""
        data = None if body is None else json.dumps(body).encode()
        headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self.token}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "wfgen",
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        what = f"{method} {path}"
        for attempt in range(1, ATTEMPTS + 1):
            request = urllib.request.Request(self.url(path, query), data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                    return json.loads(response.read() or b"null")
            except urllib.error.HTTPError as exc:
                if exc.code >= 500 and attempt < ATTEMPTS:
                    continue
                raise ApiError(f"{what}: HTTP {exc.code} {_reason(exc)}".rstrip()) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt < ATTEMPTS:
                    continue
                reason = getattr(exc, "reason", exc)
                raise ApiError(f"{what}: {reason}") from None
            except (ValueError, OSError, http.client.HTTPException) as exc:  # an answer that is not HTTP
                raise ApiError(f"{what}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
        raise AssertionError("unreachable")


def _reason(exc: urllib.error.HTTPError) -> str:
    """GitHub's own `message` (such as "No ref found for: ..."), short; else the HTTP reason."""
    try:
        message = json.loads(exc.read() or b"{}").get("message")
    except (ValueError, AttributeError, OSError):
        message = None
    text = message if isinstance(message, str) and message else str(exc.reason)
    return " ".join(text.split())[:200]

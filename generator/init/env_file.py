"""Env vars for `wfgen init`: the names in a .env file; which compose values are plainly not secrets.

Values of an env_file are never kept: only the names of `NAME=...` entries leave this module."""

from __future__ import annotations

import math
import re
from collections import Counter

_ENTRY = re.compile(r"^\s*(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(?P<rest>.*)$")
# Words in a name that say its value is a credential.
CREDENTIAL_WORDS = (
    "PASSWORD", "PASSWD", "PASS", "PWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "AUTH", "PRIVATE", "CERT",
    "SALT", "DSN", "SESSION", "COOKIE", "SIGNATURE", "ACCESS", "LICENSE", "WEBHOOK",
)  # fmt: skip
_URL_WITH_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@\s]*:[^/@\s]*@")
_INTERPOLATED = re.compile(r"\$\{?[A-Za-z_]")
_LONG_RANDOM = 20  # characters from which a string of mixed letters and digits looks like a generated key
MAX_VALUE = 200


def env_names_in_file(text: str) -> list[str]:
    """The names of a .env file's `NAME=value` entries, in order, read as compose reads the file: a quoted
    value may span lines and is skipped whole. Any other line is skipped; nothing of a value is kept."""
    names: list[str] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        found = _ENTRY.match(line)
        if found is None or line.lstrip().startswith("#"):
            continue
        rest = found.group("rest")
        if rest[:1] in {'"', "'"} and _closing(rest[1:], rest[0]) is None:
            while index < len(lines) and _closing(lines[index], rest[0]) is None:
                index += 1
            index += 1  # the line that closes the value
        if found.group("name") not in names:
            names.append(found.group("name"))
    return names


def _closing(text: str, quote: str) -> int | None:
    """Where the quote that ends a value is in text; a backslash escapes inside double quotes only."""
    position = 0
    while position < len(text):
        if quote == '"' and text[position] == "\\":
            position += 2
            continue
        if text[position] == quote:
            return position
        position += 1
    return None


def is_plain_value(name: str, value: str) -> bool:
    """True when an `environment:` value is configuration that may be written into services.toml as it is:
    not a credential by its name or its shape, not interpolated, short and on one line."""
    upper = name.upper()
    if any(word in upper for word in CREDENTIAL_WORDS):
        return False
    if _INTERPOLATED.search(value) or any(char in value for char in "\n\r\0") or len(value) > MAX_VALUE:
        return False
    if _URL_WITH_PASSWORD.match(value):
        return False
    return not any(_looks_random(word) for word in re.split(r"[\s,;:/=@]+", value))


def _looks_random(word: str) -> bool:
    """A long word mixing letters and digits with many different characters, as generated keys are."""
    if len(word) < _LONG_RANDOM:
        return False
    has_digit = any(char.isdigit() for char in word)
    has_letter = any(char.isalpha() for char in word)
    counts = Counter(word)
    entropy = -sum(count / len(word) * math.log2(count / len(word)) for count in counts.values())
    return has_digit and has_letter and entropy > 3.5

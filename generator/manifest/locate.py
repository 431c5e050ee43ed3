"""Map a key path such as ('services', 'auth', 'port') to its line in the TOML text, for error messages."""

from __future__ import annotations

import json
import re

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_PART = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")


def _split_key(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _PART.findall(dotted))


class KeyLocator:
    """First line on which each table header or key appears; good enough for hand-written manifests."""

    def __init__(self, text: str):
        self._lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                table = _split_key(header.group(1))
                for depth in range(1, len(table) + 1):  # [servics.api] is where 'servics' is misspelt
                    self._lines.setdefault(table[:depth], number)
                continue
            assign = _ASSIGN.match(line)
            if assign:
                key = (*table, *_split_key(assign.group(1)))
                for depth in range(len(table) + 1, len(key) + 1):
                    self._lines.setdefault(key[:depth], number)

    def line(self, loc: tuple[str | int, ...]) -> int:
        """The line of the deepest known ancestor of loc (an index falls back to its list); 1 if none."""
        keys = tuple(str(part) for part in loc if not isinstance(part, int))
        for depth in range(len(keys), 0, -1):
            found = self._lines.get(keys[:depth])
            if found is not None:
                return found
        return 1


def format_loc(loc: tuple[str | int, ...]) -> str:
    """('services', 'auth', 'env', 0) -> 'services.auth.env[0]'"""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        key = part if _BARE_KEY.fullmatch(part) else json.dumps(part)  # a quoted TOML key, escapes visible
        text += f".{key}" if text else key
    return text or "(top level)"

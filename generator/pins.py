"""Identifiers wfgen pins, read from data files beside the templates: action SHAs and the proxy image."""

from __future__ import annotations

import functools
import tomllib
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any


def templates_root() -> Traversable:
    """templates/ inside the installed package (wheel), else next to the package dir (source tree)."""
    packaged = files("generator").joinpath("templates")
    if packaged.is_dir():
        return packaged
    return Path(str(files("generator"))).parent / "templates"


def _data(name: str) -> dict[str, Any]:
    return tomllib.loads(templates_root().joinpath(name).read_text(encoding="utf-8"))


@functools.cache
def action_pins() -> dict[str, str]:
    """`owner/action` -> `owner/action@<sha> # <version>` from templates/actions.toml."""
    return {
        name: f"{name}@{pin['sha']} # {pin['version']}"
        for name, pin in _data("actions.toml")["actions"].items()
    }


@functools.cache
def proxy_image() -> str:
    """The official Caddy image, by tag and digest, from templates/proxy.toml."""
    return str(_data("proxy.toml")["proxy"]["image"])

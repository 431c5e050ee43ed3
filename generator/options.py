"""Options shared by several commands, declared once, and how a command ends with its exit code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def manifest_option(func: F) -> F:
    return click.option(
        "--manifest",
        "-m",
        "manifest_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=Path("services.toml"),
        show_default=True,
        help="The manifest to read; generated files go next to it.",
    )(func)


def environment_option(func: F) -> F:
    return click.option(
        "--env",
        "environment",
        metavar="NAME",
        help="The environment of [environments] to act on [default: the branch's, else the first one].",
    )(func)


def exit_with(code: int) -> NoReturn:
    click.get_current_context().exit(int(code))
    raise AssertionError("unreachable")

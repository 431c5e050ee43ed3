"""Compiled templates kept between runs: used only while the source and syntax match; a broken or unwritable
cache changes nothing but the time."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import pytest
from jinja2.bccache import bc_magic

from generator.render.compiled import compiled_templates

SYNTAX: dict[str, Any] = {
    "keep_trailing_newline": True,
    "variable_start_string": "[[",
    "variable_end_string": "]]",
}


@pytest.fixture(autouse=True)
def own_temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def render(source: str, syntax: dict[str, Any] = SYNTAX) -> str:
    environment = jinja2.Environment(
        loader=jinja2.DictLoader({"t.j2": source}), bytecode_cache=compiled_templates(syntax), **syntax
    )
    return environment.get_template("t.j2").render(name="web")


def cached_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("_jinja2-cache-*/__wfgen_*.cache"))


def test_a_second_run_loads_what_the_first_compiled(own_temp_folder: Path) -> None:
    first = render("deploy [[ name ]]\n")
    [cached] = cached_files(own_temp_folder)
    stamp = cached.stat().st_mtime_ns
    second = render("deploy [[ name ]]\n")
    assert first == second == "deploy web\n"
    assert cached.stat().st_mtime_ns == stamp  # read, not compiled and written again


def test_a_changed_source_or_syntax_compiles_again(own_temp_folder: Path) -> None:
    render("deploy [[ name ]]\n")
    assert render("ship [[ name ]]\n") == "ship web\n"
    other = {**SYNTAX, "variable_start_string": "<<", "variable_end_string": ">>"}
    assert render("deploy [[ name ]] << name >>\n", other) == "deploy [[ name ]] web\n"
    assert render("deploy [[ name ]] << name >>\n") == "deploy web << name >>\n"


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:12],  # cut short
        lambda data: bc_magic + b"K\x01)R.",  # a checksum that unpickles to a TypeError
        lambda data: bc_magic + b"cno_such_module_wfgen\nx\n.",  # ... to a ModuleNotFoundError
    ],
    ids=["cut-short", "type-error", "import-error"],
)
def test_a_damaged_cache_file_is_compiled_again(
    own_temp_folder: Path, damage: Callable[[bytes], bytes]
) -> None:
    render("deploy [[ name ]]\n")
    [cached] = cached_files(own_temp_folder)
    cached.write_bytes(damage(cached.read_bytes()))
    assert render("deploy [[ name ]]\n") == "deploy web\n"


def test_a_cache_that_cannot_be_written_is_skipped(own_temp_folder: Path) -> None:
    environment = jinja2.Environment(
        loader=jinja2.DictLoader({"t.j2": "deploy [[ name ]]\n"}),
        bytecode_cache=compiled_templates(SYNTAX),
        **SYNTAX,
    )
    [folder] = own_temp_folder.glob("_jinja2-cache-*")
    folder.rmdir()  # gone between start-up and the first template: nowhere to write
    assert environment.get_template("t.j2").render(name="web") == "deploy web\n"


def test_no_private_temp_folder_means_no_cache(own_temp_folder: Path) -> None:
    (own_temp_folder / f"_jinja2-cache-{os.getuid()}").write_text("not a folder")
    assert compiled_templates(SYNTAX) is None
    assert render("deploy [[ name ]]\n") == "deploy web\n"

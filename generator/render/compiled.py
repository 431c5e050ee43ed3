"""Compiled templates kept between runs: compiling the workflow templates is a tenth of `wfgen render` and
`wfgen check`, and the same on every run.

Jinja's own file cache, in its per-user directory of the temp folder. A cached template is used only if its
checksum matches: the template's source, the Jinja version and the syntax options it was compiled with. A
cache that cannot be read or written is skipped: it never changes what is rendered, nor makes it fail.
"""

from __future__ import annotations

import hashlib
from typing import Any

import jinja2
from jinja2.bccache import Bucket

_PATTERN = "__wfgen_%s.cache"  # the directory is shared with other Jinja users: wfgen's files are its own


class CompiledTemplates(jinja2.FileSystemBytecodeCache):
    def __init__(self, syntax: dict[str, Any]) -> None:
        super().__init__(pattern=_PATTERN)  # raises when the temp folder has no private directory for us
        self._salt = f"jinja2 {jinja2.__version__} {sorted(syntax.items())}\n"

    def get_source_checksum(self, source: str) -> str:
        return hashlib.sha256((self._salt + source).encode("utf-8")).hexdigest()

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # noqa: BLE001 - cut short or damaged: unpickling raises many kinds
            bucket.reset()  # compile again

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass  # a read-only or full temp folder: the next run compiles again


def compiled_templates(syntax: dict[str, Any]) -> CompiledTemplates | None:
    """The cache for an Environment built with `syntax`; None where no private temp directory can be had."""
    try:
        return CompiledTemplates(syntax)
    except (OSError, RuntimeError):
        return None

"""Build input trees inline in tests (copier's build_file_tree)."""

from __future__ import annotations

import textwrap
from pathlib import Path


def build_file_tree(root: Path, spec: dict[str, str]) -> Path:
    """Write {relative path: text} under root (text is dedented); returns root."""
    for relative, text in spec.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root, for asserting that nothing was written."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

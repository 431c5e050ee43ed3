"""Each command imports only what it uses: `wfgen check` runs on every commit, `wfgen --version` in scripts.

What a command costs to start is measured by benchmarks/cli_startup.py; here, in a fresh interpreter
each, which heavy libraries a command leaves in sys.modules.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pydantic", "jinja2", "jsonschema", "rich", "ruamel", "importlib.metadata")
# The command ("": only `import generator.cli`) -> the heavy libraries it may import.
ALLOWED: dict[str, set[str]] = {
    "": set(),
    "--help": set(),
    "--version": {"importlib.metadata"},
    "validate": {"pydantic", "importlib.metadata"},
    "render": {"pydantic", "importlib.metadata", "jinja2"},
    "check": {"pydantic", "importlib.metadata", "jinja2"},
}
PROBE = """\
import json, sys
from generator.cli import main
code = main(sys.argv[1:]) if len(sys.argv) > 1 else 0
print(json.dumps([code, sorted(sys.modules)]))
"""


def imported(command: str, cwd: Path) -> tuple[int, set[str]]:
    """The exit code of `wfgen COMMAND` and the heavy top-level libraries it imported."""
    args = [sys.executable, "-c", PROBE, *([command] if command else [])]
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=True)
    status, modules = json.loads(done.stdout.splitlines()[-1])
    return status, {
        heavy for heavy in HEAVY for name in modules if name == heavy or name.startswith(heavy + ".")
    }


@pytest.mark.parametrize("command", ALLOWED, ids=[name or "import" for name in ALLOWED])
def test_a_command_imports_only_what_it_uses(command: str, tmp_path: Path) -> None:
    shutil.copy(ROOT / "services.toml", tmp_path / "services.toml")
    if command == "check":
        imported("render", tmp_path)
    status, heavy = imported(command, tmp_path)
    assert status == 0
    assert heavy <= ALLOWED[command], (
        f"wfgen {command or '(import)'} imports {sorted(heavy - ALLOWED[command])}"
    )

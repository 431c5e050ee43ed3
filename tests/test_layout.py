"""The package layout is the architecture (docs/design.md): no import cycle between the generator's modules,
and the step package's layers only import downwards: jobs -> engine -> core, and nothing outside the stdlib."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "generator"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str]) -> Iterator[str]:
    """The generator modules one file imports, anywhere in it (a function-level import still runs)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    yield f"{base}.{alias.name}"
                elif base in modules:
                    yield base


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): set(imported(path, modules)) - {module_name(path)} for path in paths}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            if component:
                found.append(sorted([node, *component]))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_generator_modules() -> None:
    graph = import_graph()
    assert len(graph) > 60  # every module was read, sub-packages included
    assert cycles(graph) == []


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def layer(module: str) -> str:
    for name in ("generator.steps.core", "generator.steps.engine", "generator.steps"):
        if module == name or module.startswith(name + "."):
            return name
    return "generator"


def test_step_layers_import_only_downwards() -> None:
    below = {
        "generator.steps.core": {"generator.steps.core"},
        "generator.steps.engine": {"generator.steps.core", "generator.steps.engine"},
        "generator.steps": {"generator.steps.core", "generator.steps.engine", "generator.steps"},
    }
    wrong = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if layer(module) in below
        for target in sorted(targets)
        if layer(target) not in below[layer(module)]
    ]
    assert wrong == []


ENGINE = "generator.steps.engine"
# The single-host engine's own modules; engine/swarm/ is the other engine. The rest of engine/ is shared.
HOST_ENGINE = {f"{ENGINE}.{name}" for name in ("host", "cutover", "handover", "probe", "proxy_config")}
SWARM_ENGINE = f"{ENGINE}.swarm"


def test_the_two_engines_meet_only_at_the_seam() -> None:
    """Neither engine imports the other's modules, and the shared deploy names an engine only through
    engines.for_target (docs/design.md, "The seams")."""
    graph = import_graph()
    swarm = {module for module in graph if module.startswith(SWARM_ENGINE)}
    wrong = [f"{module} imports {target}" for module in swarm for target in graph[module] & HOST_ENGINE]
    wrong += [f"{module} imports {target}" for module in HOST_ENGINE for target in graph[module] & swarm]
    shared = {f"{ENGINE}.{name}" for name in ("deployment", "phases", "delivery", "provide", "release")}
    wrong += [
        f"{module} imports {target}"
        for module in shared
        for target in graph[module] & (swarm | HOST_ENGINE - {f"{ENGINE}.cutover"})  # cutover: HealthFailed
    ]
    assert swarm and wrong == []


MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50


def oversized(path: Path, root: Path = ROOT) -> list[str]:
    """The module if over MAX_MODULE_LINES lines, and its functions over MAX_FUNCTION_LINES (def to last line)."""
    relative = path.relative_to(root).as_posix()
    text = path.read_text(encoding="utf-8")
    found = []
    if (count := len(text.splitlines())) > MAX_MODULE_LINES:
        found.append(f"{relative}: {count} lines")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{relative}:{node.lineno}: {node.name}: {length} lines")
    return found


def test_modules_and_functions_stay_small() -> None:
    """House style (docs/design.md): a module under ~300 lines, a function under ~50."""
    paths = sorted(PACKAGE.rglob("*.py"))
    assert [found for path in paths for found in oversized(path)] == []


def test_oversized_names_long_modules_and_functions(tmp_path: Path) -> None:
    body = "".join(f"    x = {n}\n" for n in range(MAX_FUNCTION_LINES))
    module = tmp_path / "long.py"
    module.write_text(f"def f():\n{body}" + "\n" * MAX_MODULE_LINES, encoding="utf-8")
    assert oversized(module, tmp_path) == [
        f"long.py: {MAX_FUNCTION_LINES + 1 + MAX_MODULE_LINES} lines",
        f"long.py:1: f: {MAX_FUNCTION_LINES + 1} lines",
    ]
    module.write_text(f"def f():\n{body[: body.rindex('    x')]}", encoding="utf-8")
    assert oversized(module, tmp_path) == []

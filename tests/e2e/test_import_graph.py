"""The package's shape (DESIGN 2, 13.8). The layer and purity rules themselves are
import-linter contracts in pyproject.toml, run here through the real `lint-imports`; what
import-linter cannot say is checked below from the source: no import cycle inside a
layer, no long function, and what the fast commands do not load.

The graph is built with `ast` from every `import` and `from ... import` anywhere in a
module, function-level (lazy) imports included: a lazy import still couples the two
modules, it only moves the moment of failure. `from a.b import c` is an edge to `a.b.c`
when that is a module, else to `a.b`. The implicit import of a module's parent package is
not an edge (Python guarantees the parent is loaded first).
"""

from __future__ import annotations

import ast
import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "reconciler"
FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imported(tree: ast.AST, name: str, is_package: bool, modules: set[str]) -> Iterator[str]:
    """Every module an import statement in `tree` names, resolved to absolute."""
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                yield sub if sub in modules else source


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found = _imported(tree, name, path.name == "__init__.py", set(modules))
        graph[name] = {t for t in found if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


GRAPH = import_graph()


def test_the_graph_is_read_from_the_source() -> None:
    assert "reconciler.engine.manager" in GRAPH["reconciler.cli.planning"]  # top-level
    assert "reconciler.engine.status" in GRAPH["reconciler.cli.setup_commands"]  # in a function
    assert "reconciler.sandbox.server" in GRAPH["reconciler.sandbox"]  # a package's __init__


def test_cycles_are_found_in_a_graph_that_has_them() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycle() -> None:
    assert cycles(GRAPH) == []


def test_the_import_contracts_hold() -> None:
    """pyproject.toml's import-linter contracts (layers, pure layers, product-free
    sandbox), checked by the real tool on the real package."""
    tool = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert tool, "import-linter is a test dependency"
    done = subprocess.run([tool], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" not in done.stdout.lower().replace("0 broken", "")


def test_only_the_entry_points_sit_at_the_top() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py"]


@pytest.mark.parametrize("package", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_every_subpackage_states_its_contract(package: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
    assert doc and "Import" in doc, f"reconciler/{package}/__init__.py: say what it may import"


@functools.cache
def _long_functions() -> list[str]:
    long = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                lines = node.end_lineno - node.lineno + 1
                if lines > FUNCTION_LINES:
                    long.append(f"{name}.{node.name} ({lines} lines)")
    return sorted(long)


# Being split (issue 27); the list may only shrink.
STILL_LONG: set[str] = set()


def test_no_function_is_long() -> None:
    """Named steps, not long procedures (DESIGN 2): no function over ~60 lines."""
    long = [f for f in _long_functions() if f.split(" ")[0] not in STILL_LONG]
    assert long == []
    assert {f.split(" ")[0] for f in _long_functions()} == STILL_LONG  # shrink the list


def _loaded_by(code: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    return set(done.stdout.split())


def test_help_loads_no_http_client() -> None:
    """`reconcile --help` builds the commands; none of them may pull in httpx to do so."""
    loaded = _loaded_by("from reconciler.cli import app")
    command_modules = {m for m in GRAPH["reconciler.cli.commands"] if m.endswith("_commands")}
    assert len(command_modules) >= 5 and command_modules <= loaded
    assert "httpx" not in loaded


def test_activity_loads_no_engine() -> None:
    """`reconcile activity` reads runs/: the run log and the lock, not the sync engine."""
    loaded = _loaded_by("from reconciler.engine import history")
    assert "reconciler.records.activity" in loaded
    assert {"reconciler.engine.manager", "httpx"} & loaded == set()

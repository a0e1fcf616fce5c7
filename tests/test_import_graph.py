"""The package's shape, read from its source (issue 13): the import graph of reconciler/
has no cycle, and the layers keep to their side.

The graph is built with `ast` from every `import` and `from ... import` anywhere in a
module, function-level (lazy) imports included: a lazy import still couples the two
modules, it only moves the moment of failure. `from a.b import c` is an edge to `a.b`
and, when `a.b.c` is a module, to `a.b.c` too. The implicit import of a module's parent
package is not an edge (every submodule has it; Python guarantees the parent is loaded
first).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"

# What "a ConnectWise or ZeroTek client" is: the API clients, their shared HTTP layer and
# the readers built on them. The commands and the demo reach these only through the engine
# (which the client factory, reconciler.clients, feeds).
API_CLIENTS = (
    "reconciler.connectwise",
    "reconciler.usage",
    "reconciler.http",
    "reconciler.transport",
)
# Writing or reading the run log, sending e-mail or a chat message: the engine's job.
RUN_LOG_AND_EMAIL = (
    "reconciler.runlog", "reconciler.runindex", "reconciler.notify", "smtplib", "reconciler.chat",
)  # fmt: skip
# What fetching takes: an API client, the client factory, or what reads through them.
FETCHING = (*API_CLIENTS, "reconciler.clients", "reconciler.insight", "httpx", "urllib.request")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imported(tree: ast.AST, name: str, is_package: bool) -> Iterator[str]:
    """Every module name an import statement in `tree` names, resolved to absolute."""
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
            yield source
            yield from (f"{source}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """module -> the modules it imports: reconciler's own, plus the outside ones by full
    name (for the rules on smtplib, httpx...)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = set()
        for target in _imported(tree, name, path.name == "__init__.py"):
            if target.startswith("reconciler") and target not in modules:
                continue  # `from m import function`: the edge is to m, yielded already
            if target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each with the
    module names sorted; a self-import is not counted."""
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
            if nxt not in graph:
                continue
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


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _under(names: Iterable[str], prefixes: Iterable[str]) -> list[str]:
    prefixes = tuple(prefixes)
    return sorted(n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes))


GRAPH = import_graph()


def test_the_graph_is_read_from_the_source() -> None:
    """The scan itself: it sees the modules, top-level and function-level imports."""
    assert {"reconciler.cli", "reconciler.engine", "reconciler.sandbox"} <= set(GRAPH)
    assert "reconciler.engine" in GRAPH["reconciler.cli_sync"]  # top-level
    assert "reconciler.status" in GRAPH["reconciler.cli"]  # inside the `status` command
    assert "reconciler.sandbox.server" in GRAPH["reconciler.sandbox"]  # a package's __init__


def test_cycles_are_found_in_a_graph_that_has_them() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycle() -> None:
    assert cycles(GRAPH) == []


COMMAND_MODULES = sorted(
    n
    for n in GRAPH
    if n in {"reconciler.cli", "reconciler.demo"} or n.startswith("reconciler.cli_")
)


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_commands_hold_no_client_and_no_run_log_or_email(module: str) -> None:
    """cli*.py and demo.py parse, prompt and print; the engine reads, writes, records and
    e-mails (it is handed the clients)."""
    assert _under(GRAPH[module], API_CLIENTS) == []
    assert _under(GRAPH[module], RUN_LOG_AND_EMAIL) == []


def test_command_modules_are_found() -> None:
    assert {"reconciler.cli", "reconciler.cli_sync", "reconciler.demo"} <= set(COMMAND_MODULES)


def test_notify_fetches_nothing() -> None:
    """The engine hands notify what to send: nothing notify imports, however indirectly,
    can reach an API."""
    assert _under(reachable(GRAPH, "reconciler.notify"), FETCHING) == []


def test_github_takes_nothing_from_render() -> None:
    assert "reconciler.render" not in reachable(GRAPH, "reconciler.github")


ENGINE_FUNCTION_LINES = 60


def test_no_engine_function_is_long() -> None:
    """The engine is a sequence of named steps (README, Design): none over ~60 lines."""
    path = PACKAGE / "engine.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > ENGINE_FUNCTION_LINES
    ]
    assert long == []

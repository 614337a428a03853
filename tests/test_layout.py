"""The shape of the code: one-way dependencies, no import cycles, small classes, one owner of the state database."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("retrieval", "bot", "prompts")
# Lower layers never import higher ones: the command line and Slack use the digest and feeds, which use the
# answer engine, which uses the corpus (retrieval). Settings, logs, errors and runtime sit beside them all.
LAYERS = {
    "bot.cli": 4, "bot.slack": 4,
    "bot.digest": 3, "bot.feeds": 3,
    "bot.answer": 2, "bot.render": 2,
    "retrieval": 1,
}
MAX_CLASS_LINES = 350


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """Project modules ``name`` imports, at any depth (functions and TYPE_CHECKING blocks included)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parents, base] if base else parents)
            # ``from pkg import mod`` imports the module; ``from mod import name`` the module that defines it.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


GRAPH = {name: sorted(set(_imports(name, path))) for name, path in MODULES.items()}


def _layer(module: str) -> int | None:
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return None


def test_retrieval_never_imports_bot() -> None:
    wrong = {m: [t for t in targets if t.startswith("bot")] for m, targets in GRAPH.items()
             if m.startswith("retrieval")}
    assert {m: t for m, t in wrong.items() if t} == {}


def test_dependencies_point_down_the_layers() -> None:
    upward = []
    for module, targets in GRAPH.items():
        mine = _layer(module)
        for target in targets:
            theirs = _layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH.get(node, []):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert cycles == []


def test_no_class_is_over_350_lines() -> None:
    big = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                big.append(f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert big == []


def test_only_the_state_database_module_opens_sqlite() -> None:
    opening = [name for name, path in MODULES.items()
               if "sqlite3.connect(" in path.read_text(encoding="utf-8") and name != "retrieval.statedb"]
    assert opening == []


def test_the_graph_sees_the_real_imports() -> None:
    # A check that passes on an empty graph proves nothing: the engine must be seen importing the corpus.
    assert "retrieval.corpus" in GRAPH["bot.answer.engine"]
    assert any(t.startswith("bot.answer") for t in GRAPH["bot.slack.listeners.messages"])

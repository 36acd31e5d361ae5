"""Dependencies between the packages of ``app/`` point one way.

Every import in every module (module-level and inside functions, ``TYPE_CHECKING`` blocks
included) is read with ``ast``, without importing anything, and folded into a graph of
top-level packages (``app.core``, ``app.scheduling``, …; ``app/cli.py`` and the like count
as packages of their own). The rules:

- ``app.core`` imports nothing from ``app`` but itself;
- nothing imports ``app.api`` (HTTP only; it sits on top) but the entry points;
- ``app.protocols`` (the protocol language) imports nothing but ``app.core``;
- the package graph has no cycle.
"""

import ast
from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import app

APP = Path(app.__file__).parent

# Entry points may assemble anything, the HTTP app included.
ENTRY_POINTS = {"app.__main__", "app.cli"}

# Packages that sit at the bottom with app.core: they import nothing of the app above it.
# app.protocols is the protocol language (parse, check, compile CEL, read stored versions);
# everything that acts on a study's records is above it.
FOUNDATIONS = {"app.core", "app.protocols"}


@dataclass(frozen=True)
class Import:
    importer: str  # module, e.g. app.scheduling.planning
    imported: str  # module (or package) named by the import, e.g. app.notifications.models
    line: int

    @property
    def edge(self) -> tuple[str, str]:
        return top_level(self.importer), top_level(self.imported)

    def __str__(self) -> str:
        return f"{self.importer} imports {self.imported} (line {self.line})"


def top_level(module: str) -> str:
    return ".".join(module.split(".")[:2])


def module_name(path: Path) -> str:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def app_imports() -> list[Import]:
    modules = {module_name(path): path for path in sorted(APP.rglob("*.py"))}
    found: list[Import] = []
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = node.module or ""
                if node.level:  # relative: from . import x, from ..core import y
                    parts = package.split(".")
                    base = parts[: len(parts) - node.level + 1]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                # ``from app.x import y`` imports the module app.x.y when there is one.
                submodules = [f"{source}.{alias.name}" for alias in node.names]
                names = [source, *(name for name in submodules if name in modules)]
            else:
                continue
            for name in names:
                if name.startswith("app.") and top_level(name) != top_level(module):
                    found.append(Import(module, name, node.lineno))
    return found


def package_graph(imports: list[Import]) -> dict[str, dict[str, list[Import]]]:
    graph: dict[str, dict[str, list[Import]]] = defaultdict(lambda: defaultdict(list))
    for imp in imports:
        source, target = imp.edge
        graph[source][target].append(imp)
    return graph


def find_cycle(graph: dict[str, dict[str, list[Import]]]) -> list[str] | None:
    """A cycle of packages as a path (first == last), or None."""
    state: dict[str, str] = {}  # "open" while on the DFS stack, then "done"
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, {})):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def describe(cycle: list[str], graph: dict[str, dict[str, list[Import]]]) -> str:
    lines = [" -> ".join(cycle)]
    for source, target in pairwise(cycle):
        lines.append(f"  {source} -> {target}:")
        lines.extend(f"    {imp}" for imp in graph[source][target])
    return "\n".join(lines)


def test_the_import_reader_sees_function_level_and_relative_imports() -> None:
    imports = app_imports()
    # A lazy import inside a function (hiding a cycle) is an import all the same.
    assert any(imp.importer == "app.cli" and imp.imported == "app.wiring" for imp in imports)
    assert len({imp.importer for imp in imports}) > 50


def offending_imports(importer: set[str], allowed: set[str] | None = None) -> str:
    """Imports by the ``importer`` packages of packages outside ``allowed`` (any package
    when None), one a line."""
    return "\n".join(
        str(imp)
        for imp in app_imports()
        if imp.edge[0] in importer and (allowed is None or imp.edge[1] not in allowed)
    )


def test_core_imports_no_other_package_of_the_app() -> None:
    offending = offending_imports({"app.core"})
    assert offending == "", "app.core must not import a domain package:\n" + offending


def test_only_entry_points_import_the_api() -> None:
    packages = {package for imp in app_imports() for package in imp.edge}
    offending = offending_imports(packages - ENTRY_POINTS, packages - {"app.api"})
    assert offending == "", "app.api is HTTP only; nothing below imports it:\n" + offending


def test_the_protocol_language_imports_nothing_above_core() -> None:
    offending = offending_imports({"app.protocols"}, FOUNDATIONS)
    assert offending == "", "app.protocols must stay the pure document package:\n" + offending


def test_no_import_cycle_between_packages() -> None:
    graph = package_graph(app_imports())
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between packages:\n" + describe(cycle, graph)


def test_the_cycle_finder_finds_a_cycle() -> None:
    imp = Import("app.a.x", "app.b.y", 1)
    graph = package_graph([imp, Import("app.b.y", "app.c.z", 2), Import("app.c.z", "app.a.w", 3)])
    assert find_cycle(graph) == ["app.a", "app.b", "app.c", "app.a"]
    assert find_cycle(package_graph([imp])) is None

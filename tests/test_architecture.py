"""The floors of docs/architecture.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "channels", "adapters", "retrieval", "foundation")
# docs/architecture.md, "The floors": the top-level packages each may import.
FLOORS = {
    "foundation": set(),
    "retrieval": {"foundation"},
    "adapters": {"retrieval", "foundation"},
    "channels": {"foundation"},
    "bot": {"channels", "adapters", "retrieval", "foundation"},
}
# docs/architecture.md, "Inside bot/": each part may import the parts before it, never after.
BOT_PARTS = ("errors", "definition", "sessions", "dialogue", "learning", "insights", "build",
             "runtime", "server", "evaluation", "versions", "commands", "cli", "__main__")
# docs/architecture.md, "Inside adapters/": the rooms, each importing only those before it.
ADAPTER_ROOMS = ("errors", "settings", "engines", "training", "classifiers", "answering")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """The project modules ``path`` imports (at module level only, if asked)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # module level includes `if TYPE_CHECKING:` and `try:` blocks
        nodes = [n for top in tree.body for n in ast.walk(top)
                 if not isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n in MODULES}


def _package(module: str) -> str:
    return module.split(".")[0]


def test_each_package_imports_only_the_floors_below_it() -> None:
    for name, path in MODULES.items():
        package = _package(name)
        imported = {_package(i) for i in _imports(path, top_level_only=False)} - {package}
        assert imported <= FLOORS[package], (name, imported - FLOORS[package])


def _package_ties(part_of: Callable[[str], str | None]) -> set[tuple[str, str]]:
    """Pairs of parts (as ``part_of`` names them) that import each other, read off the code."""
    edges = {(part_of(name), part_of(i)) for name, path in MODULES.items()
             for i in _imports(path, top_level_only=False)}
    edges = {(a, b) for a, b in edges if a and b and a != b}
    return {(a, b) for a, b in edges if (b, a) in edges}


def test_no_two_top_level_packages_import_each_other() -> None:
    assert not _package_ties(_package)


def _part_in(package: str) -> Callable[[str], str | None]:
    def part(module: str) -> str | None:
        parts = module.split(".")
        return parts[1] if parts[0] == package and len(parts) > 1 else None

    return part


@pytest.mark.parametrize(("package", "order"), [("bot", BOT_PARTS), ("adapters", ADAPTER_ROOMS)])
def test_parts_of_a_package_import_only_the_parts_before_them(
        package: str, order: tuple[str, ...]) -> None:
    part_of = _part_in(package)
    for name, path in MODULES.items():
        part = part_of(name)
        if part is None:
            continue
        assert part in order, f"{name}: add its part to docs/architecture.md and the test"
        for imported in _imports(path, top_level_only=False):
            other = part_of(imported)
            if other is None or other == part:
                continue
            assert order.index(other) < order.index(part), (name, imported)
    assert not _package_ties(part_of)


def test_no_import_circles() -> None:
    graph = {name: _imports(path, top_level_only=False) for name, path in MODULES.items()}
    graph = {name: {i for i in deps if i != name and not name.startswith(f"{i}.")}
             for name, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                raise AssertionError("import circle: " + " -> ".join([*trail, node, dep]))
            if dep not in state:
                visit(dep, [*trail, node])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_every_bot_subpackage_says_its_job() -> None:
    for init in (ROOT / "bot").glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc.splitlines()) == 1, init


# docs/architecture.md, "Imports": where a project module may be imported inside a function.
LAZY_IMPORTERS = ("bot.commands", "bot.sessions.factory")


def test_project_modules_are_imported_at_module_level_but_where_the_doc_says() -> None:
    for name, path in MODULES.items():
        lazy = _imports(path, top_level_only=False) - _imports(path, top_level_only=True)
        if lazy and not name.startswith(LAZY_IMPORTERS):
            raise AssertionError(f"{name} imports {sorted(lazy)} inside a function")

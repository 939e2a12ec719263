"""The floors of docs/architecture.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "channels", "adapters", "retrieval")
CHANNEL_ALLOWED = {"bot.messages", "bot.errors", "bot.definition.schema"}


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


def test_libraries_never_import_the_floors_above() -> None:
    for name, path in MODULES.items():
        imported = _imports(path, top_level_only=False)
        if name.startswith(("adapters", "retrieval")):
            assert not {i for i in imported if i.startswith(("bot", "channels"))}, name
        if name.startswith("retrieval"):
            assert not {i for i in imported if i.startswith("adapters")}, name


def test_channels_take_only_message_types_and_config_helpers() -> None:
    for name, path in MODULES.items():
        if not name.startswith("channels"):
            continue
        imported = _imports(path, top_level_only=False)
        assert not {i for i in imported if i.startswith(("adapters", "retrieval"))}, name
        core = {i for i in imported if i.startswith("bot")}
        assert core <= CHANNEL_ALLOWED | {"bot"}, (name, core - CHANNEL_ALLOWED)


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

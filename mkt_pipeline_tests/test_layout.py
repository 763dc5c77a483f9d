"""The package's layers (docs/development.md#layers), checked on the real import graph so they keep holding.

Every ``import`` and ``from … import`` of every module counts, including those inside functions:
a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mkt_pipeline"
# what each layer may import of the project, besides itself
ALLOWED = {
    "core": set(),
    "fx": {"core"},
    "equities": {"core"},
    "sinks": {"core"},
    "run": {"core", "fx", "equities", "sinks"},
}
TOP_LEVEL = {"__init__", "cli", "definitions", "demo", "markets", "settings", "settings_docs"}
FORBIDDEN_IN_ENGINE = ("dagster", "questdb", "psycopg")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.add(base)
            # ``from mkt_pipeline.sinks import ilp`` imports the module mkt_pipeline.sinks.ilp
            found.update(
                f"{base}.{alias.name}"
                for alias in node.names
                if (PACKAGE.parent / f"{base}.{alias.name}".replace(".", "/")).with_suffix(".py").exists()
            )
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: {i for i in imports_of(path) if i in MODULES and i != name} for name, path in MODULES.items()}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ALLOWED) else "top"


def test_top_level_holds_only_the_faces_and_shared_settings():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == TOP_LEVEL
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert folders == set(ALLOWED) | {"defs"}


@pytest.mark.parametrize("lower", sorted(ALLOWED))
def test_lower_layers_only_import_downwards(lower):
    bad = sorted(
        f"{m} imports {i}"
        for m, deps in GRAPH.items()
        if layer(m) == lower
        for i in deps
        if layer(i) != lower and layer(i) not in ALLOWED[lower]
    )
    assert not bad, bad


def test_faces_are_not_imported_by_anything_below_them():
    faces = {"mkt_pipeline.cli", "mkt_pipeline.definitions", "mkt_pipeline.demo", "mkt_pipeline.settings_docs"}
    bad = sorted(f"{m} imports {i}" for m, deps in GRAPH.items() for i in deps & faces if m not in faces)
    assert not bad, bad
    defs = {m for m in MODULES if layer(m) == "defs"}
    bad = sorted(
        f"{m} imports {i}"
        for m, deps in GRAPH.items()
        if layer(m) not in ("defs", "top") or m == "mkt_pipeline.cli"
        for i in deps & defs
    )
    assert not bad, bad


@pytest.mark.parametrize("lower", ["core", "fx", "equities"])
def test_engine_layers_import_no_dagster_questdb_or_psycopg(lower):
    bad = sorted(
        f"{m} imports {i}"
        for m, path in MODULES.items()
        if layer(m) == lower
        for i in imports_of(path)
        if i.split(".")[0] in FORBIDDEN_IN_ENGINE
    )
    assert not bad, bad


def test_no_import_cycles():
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(GRAPH[node]):
            # a package's __init__ importing its own submodules is not a cycle of layers
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep) :] + [dep] if dep in path else [node, dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_the_graph_is_not_empty():
    """The checks above mean something only if the graph holds the real dependencies."""
    assert "mkt_pipeline.core.tables" in GRAPH["mkt_pipeline.fx.engine"]
    assert "mkt_pipeline.sinks.base" in GRAPH["mkt_pipeline.sinks.questdb"]
    assert "mkt_pipeline.sinks.ilp" in GRAPH["mkt_pipeline.sinks.questdb"]


def test_no_private_dagster_imports():
    """Only Dagster's public API: its private modules (``dagster._core`` …) change without notice."""
    bad = sorted(
        f"{m} imports {i}" for m, path in MODULES.items() for i in imports_of(path) if i.startswith("dagster._")
    )
    assert not bad, bad

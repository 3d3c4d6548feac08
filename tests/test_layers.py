"""The package's floors: a module imports only modules on its own floor or lower ones, and no import circles.

Read with ``ast`` and never imported: module- and function-level imports count, those under
``if TYPE_CHECKING:`` do not (they never run). Every module must be on a floor, so where a new one goes is a decision.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE = "rerank_plugins"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def _names(relative: str) -> tuple[str, ...]:
    return tuple(f"{PACKAGE}.{name}" for name in relative.split())


FLOORS: list[tuple[str, tuple[str, ...]]] = [
    (
        "leaf helpers",
        _names("_version _optional data metadata_keys metadata_text units windows validation results cpu progress")
        + _names("quiet hub cache fusion batches"),
    ),
    ("scoring-time calibration (the fitted map a core applies)", _names("calibration")),
    (
        "core (devices, runtimes, loading, encoding, inference, the Reranker and the package's facade)",
        _names("devices runtime artefact loading encoding unit_scores inference torch_inference")
        + _names("pipeline prompting scores")
        + _names("options backend reranker")
        + (PACKAGE,),
    ),
    ("beside the core: first-stage retrieval, a served core over HTTP", _names("retrieval remote")),
    ("framework adapters and the settings they share", _names("settings langchain llama_index")),
    ("evaluation", _names("evaluation")),
    (
        "jobs that make artefacts: a calibration, a fine-tuned model, an exported one",
        _names("calibrating training export"),
    ),
    ("serving", _names("serving")),
    ("command line", _names("cli")),
]
"""Lowest first. An entry holds the module of that name and everything under it (the package's own
``__init__`` only itself); a floor may import itself and those below it, never one above."""


@dataclass(frozen=True)
class Import:
    """One import of a module of the package: the module it runs and the line it is on."""

    target: str
    line: int


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _raw_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, at any depth; an ``if TYPE_CHECKING:`` body is skipped, its else kept."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    elif isinstance(node, ast.If) and _is_type_checking(node):
        for child in node.orelse:
            yield from _raw_imports(child)
    else:
        for child in ast.iter_child_nodes(node):
            yield from _raw_imports(child)


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` or its nearest enclosing module of the package (``None`` outside it)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str, source: str, modules: dict[str, Path], is_package: bool = False) -> list[Import]:
    """The package modules ``source`` (the module ``name``) imports: ``from a.b import c`` is ``a.b.c`` when that is
    a module, else ``a.b``; relative imports are resolved against ``name``."""
    found = []
    here = name if is_package else name.rpartition(".")[0]
    for node in _raw_imports(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        for target in targets:
            module = _known(target, modules)
            if module is not None and module != name:
                found.append(Import(module, node.lineno))
    return list(dict.fromkeys(found))


@cache
def _graph() -> dict[str, list[Import]]:
    modules = _modules()
    return {
        name: imports_of(name, path.read_text(encoding="utf-8"), modules, path.name == "__init__.py")
        for name, path in modules.items()
    }


def _floors_of(module: str) -> list[int]:
    return [
        level
        for level, (_, entries) in enumerate(FLOORS)
        for entry in entries
        if module == entry or (entry != PACKAGE and module.startswith(entry + "."))
    ]


def _floor(module: str) -> int | None:
    """The one floor ``module`` is on; ``None`` when it is on none or several (the placement test names it)."""
    floors = _floors_of(module)
    return floors[0] if len(floors) == 1 else None


def _runs(target: str) -> list[str]:
    """What importing ``target`` runs: the ``__init__`` of each package above it but the root (the public facade,
    which every import runs first), and ``target`` itself."""
    parts = target.split(".")
    return [".".join(parts[:end]) for end in range(2, len(parts) + 1)] or [target]


def _where(module: str, line: int) -> str:
    return f"{_modules()[module].relative_to(ROOT.parent)}:{line}"


def test_the_parser_reads_every_kind_of_import_but_type_checking_ones() -> None:
    modules = dict.fromkeys((PACKAGE, *_names("a a.b a.c a.d e f")), Path())
    source = (
        "from typing import TYPE_CHECKING\n"
        "import rerank_plugins.a.b as b\n"
        "from rerank_plugins.a import c, NAME\n"
        "from . import d\n"
        "if TYPE_CHECKING:\n"
        "    from rerank_plugins import e\n"
        "else:\n"
        "    import json\n"
        "def later():\n"
        "    from rerank_plugins.f import thing\n"
    )
    found = imports_of(f"{PACKAGE}.a.x", source, modules)
    assert found == [
        Import(f"{PACKAGE}.a.b", 2),
        Import(f"{PACKAGE}.a.c", 3),
        Import(f"{PACKAGE}.a", 3),
        Import(f"{PACKAGE}.a.d", 4),
        Import(f"{PACKAGE}.f", 10),
    ]
    assert any(edge.target == f"{PACKAGE}.calibration.calibrator" for edge in _graph()[f"{PACKAGE}.reranker"])


def test_every_module_is_on_exactly_one_floor() -> None:
    placed = {module: _floors_of(module) for module in _modules()}
    unplaced = sorted(module for module, floors in placed.items() if not floors)
    twice = sorted(module for module, floors in placed.items() if len(floors) > 1)
    assert not unplaced, f"on no floor (place them in FLOORS in tests/test_layers.py): {unplaced}"
    assert not twice, f"on more than one floor: {twice}"
    stale = [entry for _, entries in FLOORS for entry in entries if entry not in placed]
    assert not stale, f"FLOORS names modules that do not exist: {stale}"


def test_no_module_imports_a_higher_floor() -> None:
    upward = []
    for module, imports in _graph().items():
        floor = _floor(module)
        for edge in imports:
            for target in _runs(edge.target):
                above = _floor(target)
                if floor is None or above is None or above <= floor or module.startswith(target + "."):
                    continue
                upward.append(
                    f"{_where(module, edge.line)}: {module} ({FLOORS[floor][0]}) imports {target} ({FLOORS[above][0]})"
                )
    assert not upward, "imports up a floor:\n" + "\n".join(dict.fromkeys(upward))


def _circles(graph: dict[str, list[Import]]) -> list[list[tuple[str, Import]]]:
    """The import circles a depth-first search closes, each as its steps (importer, import), the last leading back
    to the first: at least one through every group of modules that import each other."""
    state: dict[str, str] = {}
    path: list[tuple[str, Import]] = []
    found: list[list[tuple[str, Import]]] = []

    def visit(module: str) -> None:
        state[module] = "open"
        for edge in graph.get(module, []):
            path.append((module, edge))
            if state.get(edge.target) == "open":
                found.append(path[[source for source, _ in path].index(edge.target) :])
            elif edge.target not in state:
                visit(edge.target)
            path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def test_no_import_circles() -> None:
    circles = [
        "\n".join(f"{_where(source, edge.line)}: {source} imports {edge.target}" for source, edge in steps)
        for steps in _circles(_graph())
    ]
    assert not circles, "import circles:\n" + "\n\n".join(circles)

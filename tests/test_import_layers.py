"""The import graph of ``pipeline/``: no import circles, and no import from a lower layer to a higher one.

The graph is read from the source (every ``import`` statement, also those inside functions and under
``TYPE_CHECKING``: a deferred import is still a dependency), so nothing is imported to check it.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "pipeline"

#: the layers of ``pipeline/``, lowest first, as ARCHITECTURE.md ("Inside pipeline/") orders them; a module may import
#: from its own layer and the layers below. An entry names a module or a package (with everything in it); the longest
#: entry that names a module decides its layer. The data sources (phantom generators, datalists and their checks, the
#: network factory) import only the ground: the evaluation's geometry checks and the losses' test volumes use them.
LAYERS: list[tuple[str, ...]] = [
    ("pipeline.errors", "pipeline.io", "pipeline.handler_order", "pipeline.collective_exit"),  # the ground
    ("pipeline.phantoms", "pipeline.data", "pipeline.networks", "pipeline.inference"),
    ("pipeline.losses",),
    ("pipeline.schedules",),
    ("pipeline.checkpoint.strategies",),
    ("pipeline.checkpoint.storage",),
    ("pipeline.checkpoint.state",),
    ("pipeline.checkpoint",),  # the Ignite handler, the original API's managers, their settings
    ("pipeline.evaluation",),
    ("pipeline.engines", "pipeline.epoch_loss", "pipeline.epoch_summary", "pipeline.cosine_lr", "pipeline.history", "pipeline.plots",
     "pipeline.training_curves", "pipeline.time_budget"),
    ("pipeline.tracking",),
    ("pipeline.training", "pipeline.bundle"),
    ("pipeline.workflows", "pipeline.cli", "pipeline.__main__", "pipeline.recipes", "pipeline.cli_plan", "pipeline.cli_compare"),
]



def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (``pipeline`` itself, the lazy facade, is left out)."""
    found = {module_name(p): p for p in ROOT.rglob("*.py")}
    found.pop("pipeline", None)
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``pipeline`` that the module ``name`` imports (a name imported from a package that is one of its
    modules counts as that module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in known else base)
    # "import pipeline.x.y" and "from pipeline.x import y" both mean the deepest module named
    resolved = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target.startswith("pipeline.") and target != name:
            resolved.add(target)
    return resolved


@functools.cache
def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def layer_of(name: str) -> int:
    matches = [(len(entry), index) for index, layer in enumerate(LAYERS) for entry in layer
               if name == entry or name.startswith(entry + ".")]
    if not matches:
        raise AssertionError(f"module {name} is in no layer of LAYERS: add it where ARCHITECTURE.md places it")
    return max(matches)[1]


def circles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected groups of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(frozenset(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def package_of(name: str, path: Path) -> str:
    """The package a module belongs to; a module directly under ``pipeline/`` stands for itself."""
    return name if path.name == "__init__.py" or name.count(".") == 1 else name.rpartition(".")[0]


def test_every_module_has_a_layer():
    for name in modules():
        layer_of(name)


def test_no_import_from_a_lower_layer_to_a_higher_one():
    upward = sorted(
        f"{source} (layer {layer_of(source)}) imports {target} (layer {layer_of(target)})"
        for source, targets in graph().items()
        for target in targets
        if layer_of(target) > layer_of(source)
    )
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_no_import_circles_between_modules():
    found = circles(graph())
    assert not found, f"import circles: {[sorted(c) for c in found]}"


def test_no_import_circles_between_packages():
    found = modules()
    edges: dict[str, set[str]] = {}
    for name, targets in graph().items():
        source = package_of(name, found[name])
        edges.setdefault(source, set()).update(
            package_of(t, found[t]) for t in targets if package_of(t, found[t]) != source
        )
    assert not circles(edges), f"import circles between packages: {[sorted(c) for c in circles(edges)]}"


@pytest.mark.parametrize(
    "edges, expected",
    [
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [frozenset({"a", "b"})]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}}, [frozenset({"a", "b", "c"})]),
    ],
)
def test_circle_finder(edges, expected):
    assert circles(edges) == expected

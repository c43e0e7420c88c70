"""The package's folders are its layers: every import points down (or stays in its folder), none loops back.

Read from the source with ``ast`` (imports inside functions and under ``TYPE_CHECKING`` count too), so a
lazy import cannot hide an upward dependency.  docs/architecture.md draws the same layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "moeplan"

# Bottom to top.  A module may import its own layer and the layers below it.
LAYERS: list[tuple[str, ...]] = [
    ("moeplan.version", "moeplan.errors", "moeplan.units", "moeplan.files", "moeplan.records", "moeplan.cache"),
    ("moeplan.model",),
    ("moeplan.formats",),
    ("moeplan.hardware",),
    ("moeplan.sources",),
    ("moeplan.deploy",),
    ("moeplan.plans",),
    ("moeplan.calibration",),
    ("moeplan.output",),
    ("moeplan.cli", "moeplan.cli_options", "moeplan.cli_calibrate", "moeplan.cli_serve", "moeplan", "moeplan.__main__"),
]
MAX_LINES = 600


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best = -1
    for i, names in enumerate(LAYERS):
        for name in names:
            if module == name or (name != "moeplan" and module.startswith(name + ".")):
                best = i
    if best < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")
    return best


def _imports(path: Path) -> set[str]:
    """The moeplan modules ``path`` imports (a ``from moeplan.x import name`` of a submodule counts as it)."""
    tree = ast.parse(path.read_text())
    here = _module(path)
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("moeplan")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("moeplan"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in MODULES else node.module)
    out.discard(here)
    return out


MODULES = {_module(p) for p in PACKAGE.rglob("*.py")}
GRAPH = {_module(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def test_every_module_is_in_a_layer() -> None:
    for module in GRAPH:
        _layer(module)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down(module: str) -> None:
    upward = [m for m in GRAPH[module] if m != "moeplan" and _layer(m) > _layer(module)]
    assert not upward, f"{module} imports the layer above it: {upward}"


def test_no_import_cycles() -> None:
    """A depth-first search over every import, the package's face (``moeplan``, which only re-exports) aside."""
    graph = {m: {d for d in deps if d in GRAPH and d != "moeplan"} for m, deps in GRAPH.items() if m != "moeplan"}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path[path.index(dep) :], dep]))
            if dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_600_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES, f"split {path.name} by what it holds"


def test_a_test_module_importing_upward_fails() -> None:
    """The rule itself: a model module that imported the deploy layer would be caught."""
    assert _layer("moeplan.deploy.engines") > _layer("moeplan.model.layers")
    assert _layer("moeplan.cli") > _layer("moeplan.output.plain") > _layer("moeplan.plans.compare")

"""The package's layers, checked from its own imports (an AST walk over ``src/sensorpipe``).

A module may import its own layer or a lower one. Imports inside functions
count (a lazy import is still a dependency); imports under
``if TYPE_CHECKING:`` do not (they never run). The layers, ground first, are
the picture in DESIGN.md and ``sensorpipe/core/__init__.py``:

====  ==========================================================================
L0    ``core`` (the data model), ``_typing``, ``_arrow``, ``_gc``, ``units``,
      ``registry``, ``plugins``, ``channels``, ``urls`` (paths that may be fsspec URLs)
L1    ``config`` (typed sections and their local checks: a leaf)
L2    ``schema``, ``privacy``, ``integrity``, ``_version``
L3    ``sources`` (one adapter per format)
L4    ``processing`` (clean, grid, features, windows, impute, normalize)
L5    ``labels``, ``captions``
L6    ``storage``, ``metadata``, ``quality``
L7    ``access`` (open(), TFDS, torch, Grain, tf.data)
L8    ``runners`` (plan, stages, drivers), ``demo``, ``reporting`` (gathers the HTML report's inputs)
L9    ``cli``, ``commands``, ``commands_versions``, ``convert``, ``__main__``, the package itself
====  ==========================================================================
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "sensorpipe"

LAYERS: dict[str, int] = {
    "core": 0, "_typing": 0, "_arrow": 0, "_gc": 0, "units": 0, "registry": 0, "plugins": 0, "channels": 0,
    "urls": 0,
    "config": 1,
    "schema": 2, "privacy": 2, "integrity": 2, "_version": 2,
    "sources": 3,
    "processing": 4,
    "labels": 5, "captions": 5,
    "storage": 6, "metadata": 6, "quality": 6,
    "access": 7,
    "runners": 8, "demo": 8, "reporting": 8,
    "cli": 9, "commands": 9, "commands_versions": 9, "convert": 9, "__main__": 9, "": 9,
}

#: the imports that may run up the layers (at most 3), each with its reason
ALLOWED_UP: dict[tuple[str, str], str] = {
    ("sensorpipe.processing.windowing.event", "sensorpipe.labels.base"):
        "the event windowing strategy asks the unit's label processors for their events",
}

#: the most modules one import cycle may hold
MAX_CYCLE = 3


def _modules() -> dict[str, Path]:
    out = {}
    for f in SRC.rglob("*.py"):
        parts = list(f.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every import statement, outside ``if TYPE_CHECKING:`` blocks."""
    todo = [tree]
    while todo:
        node = todo.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                todo.extend(child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            todo.append(child)


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        pkg = module.split(".") if is_package else module.split(".")[:-1]
        pkg = pkg[: len(pkg) - (node.level - 1)]
        base = ".".join(pkg + ([base] if base else []))
    return [base] + [f"{base}.{a.name}" for a in node.names]


def import_graph() -> dict[str, set[str]]:
    """Module -> the sensorpipe modules it imports (a ``from pkg import name`` counts the module ``name``
    when it is one, else the package)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        for node in _imports(ast.parse(f.read_text(), str(f))):
            for t in _targets(m, f.name == "__init__.py", node):
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t.startswith("sensorpipe.") and t != m:
                    graph[m].add(t)
    return graph


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else ""]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_every_module_has_a_layer(graph):
    unknown = sorted(m for m in graph if (m.split(".") + [""])[1] not in LAYERS)
    assert not unknown, f"modules outside the layer map (add their package to LAYERS and DESIGN.md): {unknown}"


def test_imports_run_down_the_layers(graph):
    up = sorted((m, t) for m, ts in graph.items() for t in ts if layer(t) > layer(m))
    assert len(ALLOWED_UP) <= 3
    assert set(up) <= set(ALLOWED_UP), "imports that run up the layers: " + "; ".join(
        f"{m} (L{layer(m)}) imports {t} (L{layer(t)})" for m, t in up if (m, t) not in ALLOWED_UP)


def test_no_import_cycle_holds_more_than_three_modules(graph):
    big = [c for c in _cycles(graph) if len(c) > MAX_CYCLE]
    assert not big, f"import cycles of more than {MAX_CYCLE} modules: {big}"


def test_config_is_a_leaf(graph):
    pipeline = sorted(t for t in graph["sensorpipe.config"] if layer(t) > 0)
    assert not pipeline, f"config.py imports the pipeline: {pipeline}"


def test_the_walk_sees_lazy_imports_and_skips_type_checking_blocks():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sensorpipe.runners\n"
                     "def f():\n    from sensorpipe.storage import writer\n")
    found = [_targets("sensorpipe.x", False, n) for n in _imports(tree)]
    assert ["sensorpipe.storage", "sensorpipe.storage.writer"] in found
    assert ["sensorpipe.runners"] not in found
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]

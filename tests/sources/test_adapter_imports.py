"""Adapters share ``sources/_toolkit/``, never each other: an AST walk over the package's own imports.

An adapter is a module or package of ``src/sensorpipe/sources/`` whose name
does not start with an underscore, other than the shared modules (``base``,
``partition``, ``study``, ``fetch``). An adapter (or the toolkit) importing another
adapter couples two formats: a change to one breaks the other, and a helper
both need belongs in the toolkit. Label processors ask an adapter for its data
through ``make_adapter``, so they import no adapter module either.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "sensorpipe"
SHARED = {"base", "partition", "study", "fetch", "__init__"}
PREFIX = "sensorpipe.sources."


def adapter_names(sources: Path) -> set[str]:
    """The adapters in a ``sources/`` folder: public modules and packages, less the shared modules."""
    names = {p.stem for p in sources.glob("*.py")}
    names |= {p.name for p in sources.iterdir() if (p / "__init__.py").is_file()}
    return {n for n in names if not n.startswith("_") and n not in SHARED}


def imported_modules(path: Path, package: str) -> list[tuple[int, str]]:
    """``(line, dotted module)`` of every import in a file, relative imports resolved against ``package``;
    ``from a import b`` gives ``a.b`` too, since ``b`` may be a module."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return out


def adapter_of(module: str, adapters: set[str]) -> str | None:
    """The adapter a dotted module belongs to (``sensorpipe.sources.garmin._xml`` -> ``garmin``), else None."""
    if not module.startswith(PREFIX):
        return None
    head = module[len(PREFIX):].split(".")[0]
    return head if head in adapters else None


def violations(src: Path) -> list[str]:
    """``file:line imports adapter`` for each import of an adapter from another adapter, the toolkit or the labels."""
    sources = src / "sources"
    adapters = adapter_names(sources)
    out = []
    for path in sorted([*sources.rglob("*.py"), *(src / "labels").rglob("*.py")]):
        rel = path.relative_to(src.parent)
        package = ".".join(rel.with_suffix("").parts[:-1]) if path.name != "__init__.py" else \
            ".".join(rel.parent.parts)
        own = adapter_of(".".join(rel.with_suffix("").parts), adapters) if path.is_relative_to(sources) else None
        if path.is_relative_to(sources) and own is None and path.parent == sources and path.stem in SHARED:
            continue  # base, partition, study: the layer adapters stand on (they import no adapter today either)
        for line, module in imported_modules(path, package):
            target = adapter_of(module, adapters)
            if target is not None and target != own:
                out.append(f"{rel}:{line} imports adapter {target}")
    return sorted(set(out))


def test_no_adapter_imports_another_adapter_and_labels_import_none():
    assert violations(SRC) == []


def test_the_adapters_found_are_the_registered_ones():
    from sensorpipe.sources.base import registered_adapters

    modules = {cls.__module__[len(PREFIX):].split(".")[0] for cls in registered_adapters().values()}
    assert adapter_names(SRC / "sources") == modules


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    src = tmp_path / "sensorpipe"
    for name, text in {"sources/__init__.py": "", "sources/base.py": "", "labels/__init__.py": "", **files}.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    return src


def test_a_sibling_import_is_refused_in_every_spelling(tmp_path):
    src = _tree(tmp_path, {
        "sources/dexcom.py": "from sensorpipe.sources._toolkit.cgm import x\nfrom sensorpipe.sources.base import y\n",
        "sources/libre.py": "from sensorpipe.sources.dexcom import helper\n",
        "sources/fitbit.py": "from sensorpipe.sources import dexcom\n",
        "sources/garmin/__init__.py": "from sensorpipe.sources.garmin.activity import A\n",
        "sources/garmin/activity.py": "from . import _xml\nfrom .. import libre\n",
        "sources/garmin/_xml.py": "import sensorpipe.sources.garmin.activity\n",
        "sources/_toolkit/__init__.py": "",
        "sources/_toolkit/cgm.py": "import sensorpipe.sources.fitbit\n",
        "labels/activity.py": "from sensorpipe.sources.garmin import activity\nfrom sensorpipe.sources.base import B\n",
    })
    assert violations(src) == [
        "sensorpipe/labels/activity.py:1 imports adapter garmin",
        "sensorpipe/sources/_toolkit/cgm.py:1 imports adapter fitbit",
        "sensorpipe/sources/fitbit.py:1 imports adapter dexcom",
        "sensorpipe/sources/garmin/activity.py:2 imports adapter libre",
        "sensorpipe/sources/libre.py:1 imports adapter dexcom",
    ]

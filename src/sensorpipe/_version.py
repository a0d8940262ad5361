"""The code version that goes into fingerprints: release plus a digest of the package source and plugins.

Hashing the source means a code change invalidates cached units and yields a
new dataset fingerprint even before a release bump. Installed plugins shape
the output as much as the package does, so their *files* are hashed too: a
plugin edited and reinstalled under the same version string still changes
the digest (a version string only changes when its author remembers to bump it).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from importlib import metadata
from pathlib import Path

RELEASE = "0.1.0"

#: files of a plugin's distribution that change on every install without changing its code
_INSTALL_NOISE = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


def plugin_groups() -> tuple[str, ...]:
    """Every installed entry-point group named ``sensorpipe.<kind>``, plus the groups of the registries created.

    Each :class:`sensorpipe.registry.Registry` loads ``sensorpipe.<kind>``, so taking every installed group
    of that prefix covers every kind, a kind added later included, without a list and without importing
    the registries (a group no registry reads only adds its own plugins' files to the digest).
    """
    from sensorpipe.plugins import GROUPS, installed_entry_points

    installed = {g for g in installed_entry_points().groups if g.startswith("sensorpipe.")}
    return tuple(sorted(installed | set(GROUPS)))


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Release + digest of the package source and of every installed plugin's name, package and files."""
    h = hashlib.sha256()
    root = Path(__file__).parent
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    h.update(plugins_digest().encode())
    return f"{RELEASE}+{h.hexdigest()[:10]}"


def plugins_digest() -> str:
    """sha256 over every plugin group's entry points (name, target) and the source files behind each."""
    from sensorpipe.plugins import _entry_points

    h = hashlib.sha256()
    for group in plugin_groups():
        for ep in _entry_points(group):
            h.update(f"{group}\0{ep.name}\0{ep.value}\0".encode())
            for path in plugin_files(ep):
                h.update(path.name.encode() + b"\0")
                h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def plugin_files(ep: metadata.EntryPoint) -> list[Path]:
    """The files an entry point's code comes from, in a stable order.

    Both where they can be found: the files its distribution's ``RECORD``
    lists (less byte-code and install bookkeeping), and the module's own file
    or package folder found on ``sys.path`` without importing it (an editable
    install's distribution lists a ``.pth`` file rather than the code).
    """
    found: dict[str, Path] = {}
    dist = getattr(ep, "dist", None)
    for f in (dist.files or []) if dist is not None else []:
        if f.suffix == ".pyc" or "__pycache__" in f.parts or f.name in _INSTALL_NOISE:
            continue
        p = Path(dist.locate_file(f))
        if p.is_file():
            found[str(p.resolve())] = p
    for p in _module_files(ep.value.split(":")[0].split(".")[0].strip()):
        found[str(p.resolve())] = p
    return [found[k] for k in sorted(found)]


def _module_files(top: str) -> list[Path]:
    """The top-level module's file, or every source file of its package folder(s)."""
    try:
        spec = importlib.util.find_spec(top)   # a top-level name: nothing is imported
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return sorted(p for d in spec.submodule_search_locations for p in Path(d).rglob("*")
                      if p.is_file() and p.suffix != ".pyc" and "__pycache__" not in p.parts)
    return [Path(spec.origin)] if spec.origin and Path(spec.origin).is_file() else []

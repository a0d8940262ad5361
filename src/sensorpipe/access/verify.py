"""Check a written dataset version against the manifest in its ``sensorpipe.json``.

Two depths (see :mod:`sensorpipe.storage.manifest` for what is recorded):

- ``"sizes"`` (what ``sensorpipe.open()`` does by default): every file exists
  with its recorded size; each shard's first and last 4 KiB hash as recorded
  (catches swapped shards of equal size and a shard copied over another);
  the small JSON files hash as recorded; the normalization parameters and the
  rest of ``sensorpipe.json`` match their checksums.
- ``"full"``: as above, with every shard hashed whole and its records counted
  from the file itself (ArrayRecord footer, TFRecord frames).

``"none"`` checks only the JSON sidecars and normalization checksums (cheap,
and what keeps ``denormalize`` honest). :func:`verify_output` (``sensorpipe
verify``) runs ``"full"`` and also reports files the manifest does not list.

A version written before manifests existed has none: ``open()`` reads it
unchecked (it cannot know better), and ``sensorpipe verify`` reports that it has
nothing to verify against.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sensorpipe.integrity import DatasetIntegrityError
from sensorpipe.storage.manifest import (SHARD_RE, SIDECAR, canonical_sha256, count_records, edge_sha256,
                                         edge_sha256_of, file_sha256, read_json, sidecar_sha256)

VerifyLevel = Literal["none", "sizes", "full"]
LEVELS = ("none", "sizes", "full")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file: ``kind`` is missing | size | hash | count | unexpected | edited | corrupt."""

    file: str
    kind: str
    detail: str

    def line(self) -> str:
        return f"{self.file}: {self.detail}"


class LocalFiles:
    """The files of a local version folder."""

    def __init__(self, version_dir: Path) -> None:
        self.dir = Path(version_dir)

    def names(self) -> set[str]:
        return {p.name for p in self.dir.iterdir() if p.is_file() and not p.name.startswith(".")}

    def size(self, name: str) -> int | None:
        p = self.dir / name
        return p.stat().st_size if p.is_file() else None

    def edges(self, name: str, size: int) -> str:
        return edge_sha256(self.dir / name, size)

    def local(self, name: str) -> Path:
        return self.dir / name


class RemoteFiles:
    """The files of a version on an fsspec filesystem (``access.dataset._RemoteStore``): sizes from its listing
    (or the local cache's copy, for a file the remote no longer lists), edges from the cached copy when there is
    one, else by two range reads; whole files through the local cache."""

    def __init__(self, store) -> None:
        self.store = store
        self.dir = store.local_dir

    def names(self) -> set[str]:
        return set(self.store._sizes)

    def _cached(self, name: str) -> Path | None:
        p = self.dir / name
        return p if p.is_file() else None

    def size(self, name: str) -> int | None:
        if name in self.store._sizes:
            return self.store._sizes[name]
        cached = self._cached(name)
        return cached.stat().st_size if cached is not None else None

    def edges(self, name: str, size: int) -> str:
        from sensorpipe.storage.manifest import EDGE_BYTES

        cached = self._cached(name)
        if cached is not None and cached.stat().st_size == size:
            return edge_sha256(cached, size)
        path = f"{self.store.root}/{name}"
        head = self.store.fs.cat_file(path, start=0, end=min(EDGE_BYTES, size))
        tail = self.store.fs.cat_file(path, start=max(0, size - EDGE_BYTES), end=size)
        return edge_sha256_of(head, tail)

    def local(self, name: str) -> Path:
        return self.store.fetch(name)


def load_sidecar(files) -> dict[str, Any]:
    """The parsed ``sensorpipe.json`` (a clear error when it is missing or not JSON)."""
    path = files.dir / SIDECAR
    if not path.is_file():
        raise DatasetIntegrityError(f"{path}: missing; every sensorpipe dataset version has one (channels, "
                                    f"normalization, manifest); re-run the config to rewrite the version")
    side = read_json(path)
    if not isinstance(side, dict):
        raise DatasetIntegrityError(f"{path}: not a JSON object; the file is edited or cut")
    return side


def check_version(files, side: dict[str, Any], level: VerifyLevel = "sizes") -> list[Problem]:
    """Every problem found at ``level`` (see the module docstring); empty when all is well or no manifest."""
    if level not in LEVELS:
        raise ValueError(f"verify={level!r}; choose one of {', '.join(LEVELS)}")
    manifest = side.get("manifest")
    if not isinstance(manifest, dict):
        return []
    problems: list[Problem] = []
    if sidecar_sha256(side) != manifest.get("sidecar_sha256"):
        problems.append(Problem(SIDECAR, "edited", "edited since the run wrote it (channels, fingerprint or config "
                                                   "differ from their checksum)"))
    if canonical_sha256(side.get("normalization")) != manifest.get("normalization_sha256"):
        problems.append(Problem(SIDECAR, "edited", "normalization parameters edited since the run wrote them "
                                                   "(their checksum differs): denormalize would return other numbers"))
    listed = manifest.get("files", {})
    for name, rec in sorted(listed.items()):
        problems += _check_file(files, name, rec, level, listed)
    if not any(p.file == "normalization.json" for p in problems) and "normalization.json" in manifest.get("files", {}):
        norm = read_json(files.local("normalization.json"))
        if canonical_sha256(norm) != manifest.get("normalization_sha256"):
            problems.append(Problem("normalization.json", "edited", "normalization parameters differ from their "
                                                                    "checksum in sensorpipe.json"))
    return problems


_NOTES = {"normalization.json": ": its normalization parameters would denormalize to other numbers"}


def _holder(listed: dict[str, Any], field: str, digest: str) -> str:
    """`` (it holds <other file>'s content)`` when ``digest`` is another listed file's, else ''."""
    other = next((n for n, r in listed.items() if r.get(field) == digest), None)
    return f": it holds the content of {other}" if other else ""


def _check_file(files, name: str, rec: dict[str, Any], level: VerifyLevel, listed: dict[str, Any]) -> list[Problem]:
    shard = "split" in rec
    if level == "none" and shard:
        return []
    size = files.size(name)
    if size is None:
        return [Problem(name, "missing", "missing" + (f" (shard {rec['shard']} of split {rec['split']!r}, "
                                                      f"{rec['records']} records)" if shard else ""))]
    if not shard and size != rec["bytes"]:
        return [Problem(name, "size", f"edited or cut since the run wrote it (size {size:,} bytes, the manifest "
                                      f"says {rec['bytes']:,}){_NOTES.get(name, '')}")]
    if size != rec["bytes"]:
        other = next((n for n, r in listed.items() if n != name and r.get("bytes") == size
                      and "edge_sha256" in r and files.edges(name, size) == r["edge_sha256"]), None) if shard else None
        held = f": it holds the content of {other}" if other else ""
        return [Problem(name, "size", f"size {size:,} bytes, the manifest says {rec['bytes']:,} (cut, grown or "
                                      f"replaced{held})")]
    if shard and level != "full":
        edges = files.edges(name, size)
        if edges != rec["edge_sha256"]:
            return [Problem(name, "hash", "content differs from the shard written here (its first/last 4 KiB hash): "
                                          "swapped with or overwritten by another file"
                                          + _holder(listed, "edge_sha256", edges))]
        return []
    found = file_sha256(files.local(name))
    if found != rec["sha256"]:
        if not shard:
            return [Problem(name, "hash", f"edited or corrupted since the run wrote it (sha256 {found[:12]}… differs "
                                          f"from the manifest's {rec['sha256'][:12]}…){_NOTES.get(name, '')}")]
        return [Problem(name, "hash", f"sha256 {found[:12]}… differs from the manifest's {rec['sha256'][:12]}… "
                                      f"(swapped, overwritten or corrupted{_holder(listed, 'sha256', found)})")]
    if shard:
        try:
            n = count_records(files.local(name), rec["format"])
        except DatasetIntegrityError as e:
            return [Problem(name, "corrupt", str(e).split(": ", 1)[-1])]
        if n != rec["records"]:
            return [Problem(name, "count", f"{n} records, the manifest says {rec['records']}")]
    return []


def ensure_intact(files, side: dict[str, Any], level: VerifyLevel, where: str) -> None:
    """Raise one :class:`DatasetIntegrityError` (the first problem, the count of the others) if any is found."""
    problems = check_version(files, side, level)
    if problems:
        p = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise DatasetIntegrityError(f"{files.dir / p.file}: {p.detail}{more}; run `sensorpipe verify {where}` "
                                    f"for every problem, and re-run the config to rewrite the version")


@dataclass(frozen=True)
class VerifyReport:
    """What ``sensorpipe verify`` found in one version folder."""

    version_dir: str
    files_checked: int
    bytes_checked: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = [p.line() for p in self.problems]
        mib = self.bytes_checked / 2**20
        if self.ok:
            lines.append(f"ok: {self.files_checked} files ({mib:.1f} MiB) of {self.version_dir} match the manifest "
                         f"(sizes, record counts, sha256)")
        else:
            lines.append(f"{len(self.problems)} problem(s) in {self.version_dir} ({self.files_checked} files "
                         f"checked); re-run the config to rewrite the version")
        return "\n".join(lines)


def verify_version_dir(version_dir: str | Path) -> VerifyReport:
    """Full check of one version folder, plus the files there that the manifest does not list."""
    files = LocalFiles(Path(version_dir))
    try:
        side = load_sidecar(files)
    except DatasetIntegrityError as e:
        detail = str(e).split(": ", 1)[-1].split("; run `sensorpipe verify`")[0]
        return VerifyReport(str(version_dir), 0, 0, (Problem(SIDECAR, "corrupt", detail),))
    manifest = side.get("manifest")
    if not isinstance(manifest, dict):
        return VerifyReport(str(version_dir), 0, 0, (Problem(SIDECAR, "missing", "no manifest: this version was "
                            "written by a sensorpipe that did not record one, so there is nothing to verify "
                            "against; re-run the config to add one"),))
    problems = check_version(files, side, "full")
    listed = manifest.get("files", {})
    for name in sorted(files.names() - set(listed) - {SIDECAR}):
        kind = "a shard" if SHARD_RE.match(name) else "a file"
        problems.append(Problem(name, "unexpected", f"unexpected: {kind} the manifest does not list"))
    nbytes = sum(int(r.get("bytes", 0)) for r in listed.values())
    return VerifyReport(str(version_dir), len(listed) + 1, nbytes, tuple(problems))


def verify_output(path: str | Path, version: str | None = None, name: str | None = None) -> VerifyReport:
    """``sensorpipe verify``: the version folder of ``path`` (an output folder, ``<out>/<name>`` or the version
    folder itself); ``version``/``name`` pick one when the folder holds several (default: the newest)."""
    return verify_version_dir(find_version_dir(path, version, name))


def find_version_dir(path: str | Path, version: str | None = None, name: str | None = None) -> Path:
    """``<out>/<name>/<version>`` for the given or only dataset name and the given or newest version."""
    from sensorpipe.access.dataset import resolve_version_dir

    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist; pass the output directory of `sensorpipe run`")
    if version is None and name is None:
        return resolve_version_dir(root)
    if (root / SIDECAR).exists() or (root / "dataset_info.json").exists():
        root = root.parent.parent       # given a version folder: look beside it
    names = [name] if name else sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                                        and any((v / "dataset_info.json").exists() for v in p.iterdir() if v.is_dir()))
    if name and not (root / name).is_dir():
        raise FileNotFoundError(f"{root} has no dataset named {name!r}")
    if len(names) != 1:
        raise FileNotFoundError(f"{root} holds {len(names)} datasets ({', '.join(names) or 'none'}); pass --name")
    base = root / names[0]
    if version is None:
        return resolve_version_dir(base)
    target = base / version
    if not (target / "dataset_info.json").exists():
        have = sorted(p.name for p in base.iterdir() if (p / "dataset_info.json").exists())
        raise FileNotFoundError(f"{base} has no version {version!r}; versions there: {', '.join(have) or 'none'}")
    return target

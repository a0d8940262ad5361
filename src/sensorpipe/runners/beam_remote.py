"""The beam runner with a remote ``output.dir``: the workers read the inputs and the work area at their URLs.

On a cluster (Dataflow, Flink, Spark) the workers share no disk with the
launcher. So when the output is a URL and the runner is ``beam``, nothing a
worker needs passes through the launcher's disk:

- the **inputs** (``sources[].path``, participants tables, id maps given as
  URLs) are read by the workers through fsspec, each into its own local cache
  under ``$SENSORPIPE_WORKER_DIR/inputs`` (default ``<tmp>/sensorpipe-worker``):
  planning (one worker) copies the sources whole with ``filecache``
  (:func:`sensorpipe.urls.fetch`: listing them and partitioning shared
  multi-participant files needs them); a pass-1 worker downloads only its
  unit's own files and label files. The config the launcher sends names those
  worker-local paths (:meth:`RemoteWork.localized`), the same string on every
  worker, so units, cache keys and lineage read as on one machine;
- the **work area** is ``<output.dir>/.work`` (the unit cache, record spills,
  sketches and partitions of shared files, under the same names as a local
  ``.work``). Each worker keeps a local mirror of the entries it uses under
  ``$SENSORPIPE_WORKER_DIR/work/<url key>`` (again the same path everywhere):
  an entry is downloaded before it is looked up (:data:`sensorpipe.runners.cache.remote_hook`)
  and uploaded once written, the file that marks it complete last (a unit's
  ``.json``, a spill's ``.len``, a partition's ``index.json``), so a killed
  worker never leaves an entry that looks finished;
- the **results** of each pipeline (pickled lines) are objects under
  ``<output.dir>/.work/beam/<id>/``, read back and deleted by the launcher;
  shards are written on the workers and put under ``.work/shards/``, from where
  the launcher moves them into its staging folder.

The launcher reads from the work area only what it writes itself: each unit's
quarantine spill (the quarantine files) and record lengths (the shard plan), a
few bytes per unit, deleted at the end of the run; it never opens an input.
It publishes as for any remote output (:mod:`sensorpipe.storage.remote`).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import pickle
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensorpipe.urls import fetch, fetched_path, filesystem, local_path, protocol, reaching, url_key

#: the environment variable naming each worker's local folder (input caches, work-area mirror)
WORKER_ENV = "SENSORPIPE_WORKER_DIR"


def worker_root() -> str:
    """``$SENSORPIPE_WORKER_DIR``, else ``<tmp>/sensorpipe-worker``: decided by the launcher, used by every
    worker as the same path (the units' paths name it)."""
    return os.path.abspath(os.environ.get(WORKER_ENV) or os.path.join(tempfile.gettempdir(), "sensorpipe-worker"))


@dataclass(frozen=True)
class RemoteWork:
    """Where a beam run with a remote output keeps its work area (``url``) and where workers mirror it and
    cache the inputs (``root``, ``inputs_root``: local paths, the same on every worker)."""

    url: str
    root: str
    inputs_root: str
    inputs: tuple[tuple[str, str], ...] = ()    # (worker-local path, URL) of every remote input

    @classmethod
    def of(cls, output_url: str) -> "RemoteWork":
        url = f"{output_url.rstrip('/')}/.work"
        base = worker_root()
        return cls(url, os.path.join(base, "work", url_key(url)), os.path.join(base, "inputs"))

    def localized(self, cfg) -> tuple["RemoteWork", Any]:
        """``(self with the inputs, cfg)``: each remote input URL among the sources' paths and participants
        tables and the studies' id maps replaced by the path the workers copy it to, nothing downloaded;
        ``file://`` URLs become plain paths."""
        inputs: dict[str, str] = {}

        def local(p: str | None) -> str | None:
            if not protocol(p):
                return p
            if protocol(p) == "file":
                return local_path(p)
            inputs[p] = str(fetched_path(p, self.inputs_root))
            return inputs[p]

        sources = tuple(dataclasses.replace(s, path=local(s.path), participants=local(s.participants))
                        for s in cfg.sources)
        studies = {k: dataclasses.replace(st, id_map=local(st.id_map)) for k, st in cfg.studies.items()}
        cfg = dataclasses.replace(cfg, sources=sources, studies=studies)
        return dataclasses.replace(self, inputs=tuple((v, k) for k, v in inputs.items())), cfg

    # --- inputs (workers) ------------------------------------------------------
    def input_url(self, path: str) -> str | None:
        """The URL a worker-local input path was copied from; None for a path of no remote input."""
        for local, url in self.inputs:
            if path == local:
                return url
            if path.startswith(local + os.sep):
                return f"{url.rstrip('/')}/{Path(path).relative_to(local).as_posix()}"
        return None

    def fetch_inputs(self) -> None:
        """Every remote input whole, into this worker's ``filecache`` (planning lists and partitions them)."""
        for local, url in self.inputs:
            fetch(url, self.inputs_root)

    def ensure_inputs(self, paths) -> None:
        """Download each remote input among ``paths`` that this worker does not hold yet."""
        for p in paths:
            if p and not os.path.exists(p):
                url = self.input_url(p)
                if url is not None:
                    _download(url, p)

    # --- work area (workers and launcher) -------------------------------------
    def work_url(self, path: str) -> str:
        rel = os.path.relpath(path, self.root)
        if rel.startswith(".."):
            raise ValueError(f"{path} is not under the work area's mirror {self.root}")
        return f"{self.url}/{Path(rel).as_posix()}"

    def pull(self, path: str) -> bool:
        """The work-area file ``path`` here (downloaded unless present); False when the work area lacks it."""
        return os.path.exists(path) or _download(self.work_url(path), path)

    def pull_stem(self, stem: str) -> None:
        """A cache entry's files, before :mod:`~sensorpipe.runners.cache` looks it up: a unit's summary (its
        arrays only when pass 2 needs them) or a record spill's lengths and clip counts (its ``.bin`` only where a
        shard is written from it)."""
        if Path(stem).parent.name != "records":
            self.pull(f"{stem}.json")
        elif self.pull(stem + ".len"):
            self.pull(stem + ".clipped.json")

    def push(self, paths: list[str]) -> None:
        """Upload work-area files, in the order given (the one that marks an entry complete last)."""
        for p in paths:
            if p and os.path.exists(p):
                url = self.work_url(p)
                fs, remote = filesystem(url)
                reaching(url, fs.put_file, p, remote)

    def upload_manifest(self, name, version, version_dir, run_id, summaries, stems) -> str:
        """:func:`~sensorpipe.runners.cache.write_manifest` into the work area (``.work/manifests/``)."""
        from sensorpipe.runners.cache import write_manifest
        from sensorpipe.urls import put_file

        scratch = scratch_dir()
        try:
            path = write_manifest(Path(scratch), name, version, version_dir, run_id, summaries, stems)
            url = f"{self.url}/{path.relative_to(scratch).as_posix()}"
            put_file(path, url)
            return url
        finally:
            remove_tree(scratch)

    def push_partitions(self) -> None:
        """Partitions of shared files made by planning on this worker that the work area lacks (a partition's
        ``index.json`` last: it marks it complete)."""
        base = Path(self.root) / "partitions"
        for index in sorted(base.glob("*/*/index.json")) if base.is_dir() else ():
            folder = index.parent
            fs, remote = filesystem(self.work_url(str(index)))
            if fs.exists(remote):
                continue
            files = sorted(str(f) for f in folder.rglob("*") if f.is_file() and f != index)
            self.push([*files, str(index)])


def _download(url: str, local: str) -> bool:
    """``url`` to the local file ``local`` (written whole, then renamed); False when ``url`` does not exist."""
    fs, remote = filesystem(url)
    os.makedirs(os.path.dirname(local), exist_ok=True)
    tmp = f"{local}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp"
    try:
        reaching(url, fs.get_file, remote, tmp)
    except FileNotFoundError:
        return False
    os.replace(tmp, local)
    return True


def shard_token(version_dir: str) -> str:
    """The folder under ``.work/shards/`` of one staging version's shards."""
    return hashlib.sha256(str(version_dir).encode()).hexdigest()[:16]


def scratch_dir() -> str:
    """A fresh local folder on a worker for a shard before its upload."""
    os.makedirs(worker_root(), exist_ok=True)
    return tempfile.mkdtemp(prefix="shard-", dir=worker_root())


def remove_tree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def read_remote_lines(_filesystems, pattern: str) -> list[tuple[int, Any, int]]:
    """The beam runner's ``_read_lines`` for objects at a URL pattern (fsspec); a bundle the runner retried
    wrote its lines twice: the same results, kept once by index."""
    fs, path = filesystem(pattern)
    out = []
    for match in sorted(fs.glob(path)):
        for line in fs.cat_file(match).decode("ascii").splitlines():
            index, _, data = line.partition("\t")
            out.append((int(index), pickle.loads(base64.b64decode(data)), len(line) + 1))
    return out


def fsspec_lines(prefix: str):
    """A DoFn writing each bundle's lines as one object ``<prefix>-<random>.txt`` (one PUT: all or nothing)."""
    import apache_beam as beam

    class WriteLines(beam.DoFn):
        def start_bundle(self):
            self.lines = []

        def process(self, line):
            self.lines.append(line)

        def finish_bundle(self):
            if self.lines:
                url = f"{prefix}-{uuid.uuid4().hex}.txt"
                fs, path = filesystem(url)
                reaching(url, fs.pipe_file, path, ("\n".join(self.lines) + "\n").encode("ascii"))
            self.lines = []

    return WriteLines()


def fetch_shard(version_dir, name: str, url: str) -> None:
    """A shard a worker put at ``url``, moved into the launcher's ``version_dir`` (downloaded, then deleted)."""
    fs, path = filesystem(url)
    local = Path(version_dir) / name
    reaching(url, fs.get_file, path, str(local))
    fs.rm_file(path)

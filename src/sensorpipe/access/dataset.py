"""``sensorpipe.open()``: random access to a written dataset as numpy dicts.

Reads the ArrayRecord shards through array_record's own data source and
decodes records with the dataset's own ``features.json``, so it returns
exactly what ``tfds.builder_from_directory(dir).as_data_source(split)``
returns, except that text fields (key, dataset, participant_id, sources,
captions) are ``str``, not TFDS's UTF-8 ``bytes``: what ``filter(dataset=...)``
takes and what a user compares them with. A split the run's config asked for
that no participant fell into is an empty :class:`Split`. Readers open lazily on first access (an ArrayRecord reader opened
before a fork crashes forked workers).

Views: ``split.select(channels=[...])`` (or ``ds.select(...)``) keeps only
those channels of ``input``/``mask``/``missing_ratio_per_channel``/
``longest_gap_min``, in the order asked; ``split.filter(dataset=...,
participant=..., max_missing=..., min_missing=...)`` keeps matching windows
(see :mod:`sensorpipe.access.filters` for the cost); ``split.stream(...)``
iterates shard by shard with a resumable checkpoint (:mod:`.stream`).

Remote datasets: any fsspec URL (``memory://``, ``gs://``, ``s3://`` ... with
the matching fsspec backend installed). ``file://`` URLs are plain local
paths. ArrayRecord's reader needs a local file, so for other filesystems the
small metadata files are copied at open time into a local cache directory
(``cache_dir``, else ``$SENSORPIPE_CACHE_DIR``, else
``~/.cache/sensorpipe/fsspec``) keyed by the version dir's URL and the size and
modification stamp of its ``dataset_info.json``; each shard is downloaded there
by fsspec's whole-file cache (``filecache``, under its own name) on first access (random access fetches the whole split, streaming one shard at a
time) and reused while its size matches the remote file's. TFDS cannot read
``s3://`` itself: :func:`local_version` gives it the whole version as a local folder.

Integrity: at open, the version's files are checked against the manifest in
its ``sensorpipe.json`` (``verify="sizes"``, the default: sizes, each shard's
first and last 4 KiB, the JSON sidecars and the normalization checksum;
``verify="full"`` hashes every shard whole and counts its records; see
:mod:`sensorpipe.access.verify`). A missing, cut, corrupt, swapped or edited
file raises :class:`sensorpipe.integrity.DatasetIntegrityError` naming it, as
does a shard the reader finds corrupt later. A version written before
manifests existed opens unchecked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from sensorpipe.integrity import DatasetIntegrityError, corrupt_shard
from sensorpipe.processing.normalize import NormParams
from sensorpipe.storage.manifest import read_json
from sensorpipe.urls import BelowRoot


_INFO = "dataset_info.json"


def _pick_version_dir(where: str, candidates: list[str]) -> str:
    """Among ``.../<name>/<version>/dataset_info.json`` paths, the newest version dir of the only dataset."""
    if not candidates:
        raise FileNotFoundError(f"{where}: no sensorpipe/TFDS dataset here (no dataset_info.json below it); "
                                f"pass the output directory of `sensorpipe run`")
    dirs = sorted({c.rstrip("/").rsplit("/", 1)[0] for c in candidates},
                  key=lambda d: tuple(int(x) if x.isdigit() else 0 for x in d.rsplit("/", 1)[-1].split(".")))
    names = {d.rsplit("/", 2)[-2] for d in dirs}
    if len(names) > 1:
        raise ValueError(f"{where} holds several datasets ({', '.join(sorted(names))}); pass one of their folders")
    return dirs[-1]


def _is_remote(path: Any) -> bool:
    return isinstance(path, str) and "://" in path and not path.startswith("file://")


def _local(path: str | Path) -> Path:
    if isinstance(path, str) and path.startswith("file://"):
        from fsspec.implementations.local import LocalFileSystem

        return Path(LocalFileSystem._strip_protocol(path))
    return Path(path)


def resolve_version_dir(path: str | Path) -> Path:
    """Accept the output dir, ``<out>/<name>`` or ``<out>/<name>/<version>``; return the version dir.

    Local paths and ``file://`` URLs (for other URLs, see :class:`SensorDataset`).
    """
    p = _local(path)
    if (p / _INFO).exists():
        return p
    candidates = sorted(p.glob(f"*/{_INFO}")) or sorted(p.glob(f"*/*/{_INFO}"))
    return Path(_pick_version_dir(str(p), [c.as_posix() for c in candidates]))


class _RemoteStore:
    """A version dir on an fsspec filesystem, mirrored file by file into a local cache dir."""

    def __init__(self, url: str, cache_dir: str | Path | None = None) -> None:
        import hashlib
        import os

        import fsspec

        self.fs, root = fsspec.core.url_to_fs(url)
        root = root.rstrip("/")
        if not self.fs.exists(f"{root}/{_INFO}"):
            cands = sorted(self.fs.glob(f"{root}/*/{_INFO}")) or sorted(self.fs.glob(f"{root}/*/*/{_INFO}"))
            root = _pick_version_dir(url, [str(c) for c in cands])
        self.root = root
        self.url = self.fs.unstrip_protocol(root)
        info = self.fs.info(f"{root}/{_INFO}")
        stamp = next((str(info[k]) for k in ("mtime", "LastModified", "ETag", "etag", "created", "updated")
                      if info.get(k) is not None), "")
        key = hashlib.sha256(f"{self.url}\0{info.get('size')}\0{stamp}".encode()).hexdigest()[:24]
        base = Path(cache_dir or os.environ.get("SENSORPIPE_CACHE_DIR") or Path.home() / ".cache/sensorpipe/fsspec")
        self.local_dir = base / key / Path(root).name
        self.local_dir.mkdir(parents=True, exist_ok=True)
        # each file under its own name in local_dir (fsspec's bookkeeping file one folder up): ArrayRecord and
        # TFDS open them there
        self.cache = fsspec.filesystem("filecache", fs=self.fs, cache_storage=str(self.local_dir.parent),
                                       cache_mapper=BelowRoot(root.rsplit("/", 1)[0] if "/" in root else ""),
                                       skip_instance_cache=True)
        self._sizes: dict[str, int | None] = {}  # one listing at open; shard sizes validate the cache later
        for entry in self.fs.ls(root, detail=True):
            name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
            if entry.get("type") == "file":
                self._sizes[name] = entry.get("size")
        for name in self._sizes:  # small metadata files now; shards on demand
            if ".array_record-" not in name and ".tfrecord-" not in name:
                self.fetch(name)

    def fetch(self, name: str) -> Path:
        """The local copy of ``name``: fsspec's ``filecache`` downloads it once and keeps it; a cached copy
        whose size is not the listed one (a cut download, a replaced file) is fetched again."""
        dst = self.local_dir / name
        src = f"{self.root}/{name}"
        size = self._sizes.get(name)
        if dst.exists() and size is not None and dst.stat().st_size != size:
            self.cache.pop_from_cache(src)
            dst.unlink(missing_ok=True)
        with self.cache.open(src, "rb"):
            pass
        return dst


def _subset_norm(norm: NormParams, cols: list[int]) -> NormParams:
    import dataclasses

    per_channel = ("channels",) + tuple(f.name for f in dataclasses.fields(norm)
                                        if f.name != "channels" and isinstance(getattr(norm, f.name), tuple)
                                        and len(getattr(norm, f.name)) == len(norm.channels))
    return dataclasses.replace(norm, **{k: tuple(getattr(norm, k)[j] for j in cols) for k in per_channel})


def _channel_columns(have: tuple[str, ...], channels) -> list[int]:
    if isinstance(channels, str):
        channels = [channels]
    channels = list(channels)
    unknown = [c for c in channels if c not in have]
    if unknown:
        raise ValueError(f"unknown channel(s) {', '.join(map(repr, unknown))}; "
                         f"this dataset has: {', '.join(have)}")
    dup = sorted({c for c in channels if channels.count(c) > 1})
    if dup or not channels:
        raise ValueError(f"select(channels=...) needs distinct channel names, at least one; got {channels}")
    return [have.index(c) for c in channels]


_PER_CHANNEL_FEATURES = ("missing_ratio_per_channel", "longest_gap_min")  # last axis = channel
_PER_MINUTE_CHANNEL_FEATURES = ("input", "mask")


class Split:
    """One split, or a view of it: ``len``, integer and slice indexing, iteration.

    ``select``/``filter`` return views (cheap; they share the reader and the
    metadata cache); ``stream`` iterates shard by shard with a checkpoint.
    """

    def __init__(self, version_dir: Path, name: str, split: str, shard_lengths: list[int], features,
                 channels: tuple[str, ...] | None = None, norm: NormParams | None = None, store=None) -> None:
        self.name = split
        n = len(shard_lengths)
        self._names = [f"{name}-{split}.array_record-{i:05d}-of-{n:05d}" for i in range(n)]
        self._version_dir = Path(version_dir)
        self._store = store
        self._shard_lengths = [int(x) for x in shard_lengths]
        self._total = int(sum(self._shard_lengths))
        self._features = features
        self._source = None
        self._source_pid = -1
        self._all_channels = tuple(channels) if channels is not None else None
        self.channels = self._all_channels
        self._norm = norm
        self._cols: list[int] | None = None  # None = every channel
        self._indices: np.ndarray | None = None  # None = every window
        self._cache: dict = {}  # shared by views: metadata table, filter results

    # -- files -------------------------------------------------------------------------------
    def _shard_path(self, i: int) -> str:
        if self._store is not None:
            return str(self._store.fetch(self._names[i]))
        return str(self._version_dir / self._names[i])

    @property
    def _paths(self) -> list[str]:
        return [self._shard_path(i) for i in range(len(self._names))]

    def _src(self):
        """The random-access reader, opened lazily in the process that reads.

        A reader opened before a fork must not be used by the child (ArrayRecord
        crashes forked workers), so a split that finds itself in another
        process opens its own.
        """
        if self._source is None or self._source_pid != os.getpid():
            from array_record.python.array_record_data_source import ArrayRecordDataSource

            paths = self._paths
            try:
                self._source = ArrayRecordDataSource(paths)
            except RuntimeError as e:   # Riegeli "Corrupted ..." while reading the shards' footers
                raise corrupt_shard(_named_shard(paths, str(e)), e) from None
            self._source_pid = os.getpid()
        return self._source

    def _read(self, base: int) -> bytes:
        """The record at split index ``base``; a shard the reader finds corrupt is named in a clear error."""
        try:
            return self._src()[base]
        except RuntimeError as e:
            bounds = np.cumsum(self._shard_lengths)
            shard = int(np.searchsorted(bounds, base, side="right"))
            raise corrupt_shard(self._version_dir / self._names[shard], e) from None

    # -- indexing ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._total if self._indices is None else len(self._indices)

    def _base_index(self, i: int) -> int:
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for split {self.name!r} of {n} windows")
        return i if self._indices is None else int(self._indices[i])

    def raw(self, i: int) -> bytes:
        """The serialized record at view index ``i`` (``input``/``mask`` not channel-selected)."""
        return self._read(self._base_index(i))

    def _decode(self, record: bytes) -> dict[str, Any]:
        decoder = self._cache.get("decoder")
        if decoder is None:  # planned once per split (shared by its views); same output as TFDS's decode
            from sensorpipe.access.decode import FastDecoder

            decoder = self._cache["decoder"] = FastDecoder(self._features)
        ex = decoder(record)
        text = self._cache.get("text_keys")
        if text is None:  # the text fields, found once on the first record (top-level, as the layout puts them)
            text = self._cache["text_keys"] = tuple(k for k, v in ex.items() if isinstance(v, bytes))
        for k in text:   # UTF-8 bytes on disk (what TFDS returns), str here: what filter(dataset=...) takes
            ex[k] = ex[k].decode("utf-8")
        if self._cols is not None:
            for k in _PER_MINUTE_CHANNEL_FEATURES + _PER_CHANNEL_FEATURES:
                if k in ex:
                    ex[k] = np.ascontiguousarray(ex[k][..., self._cols])
        return ex

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._decode(self._read(self._base_index(i)))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        extra = "" if self._cols is None else f", channels={list(self.channels)}"
        extra += "" if self._indices is None else f", filtered from {self._total}"
        if not self._names:
            extra += ", empty: the run put no participant in it (see the run's warnings)"
        return f"Split({self.name!r}, {len(self)} windows{extra})"

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_source"] = None
        return state

    # -- views -------------------------------------------------------------------------------
    def _view(self) -> "Split":
        import copy

        v = copy.copy(self)  # shares _source, _cache, _features
        return v

    def select(self, channels) -> "Split":
        """A view keeping only ``channels`` (names from this dataset's channel list), in that order."""
        if self.channels is None:
            raise ValueError("this split was built without its dataset's channel list; open it with sensorpipe.open")
        cols = _channel_columns(self.channels, channels)
        v = self._view()
        v._cols = cols if self._cols is None else [self._cols[j] for j in cols]
        v.channels = tuple(self.channels[j] for j in cols)
        return v

    def _meta(self):
        """The per-window metadata table (one streaming pass over the shards, then cached)."""
        if "meta" not in self._cache:
            from array_record.python.array_record_module import ArrayRecordReader

            from sensorpipe.access.filters import scan

            def records():
                for s in range(len(self._names)):
                    path = self._shard_path(s)
                    try:
                        r = ArrayRecordReader(path, "readahead_buffer_size:4M,max_parallelism:1")
                        try:
                            for lo in range(0, self._shard_lengths[s], 64):
                                yield from r.read(lo, min(lo + 64, self._shard_lengths[s]))
                        finally:
                            r.close()
                    except RuntimeError as e:
                        raise corrupt_shard(path, e) from None

            self._cache["meta"] = scan(records())
        return self._cache["meta"]

    def filter(self, dataset=None, participant=None, max_missing: float | None = None,
               min_missing: float | None = None) -> "Split":
        """A view of the windows from ``dataset`` (name or names), ``participant`` (id or ids) whose
        ``missingness_ratio`` is within ``[min_missing, max_missing]``; criteria left None are not applied."""
        from sensorpipe.access.filters import filter_key, matching

        key = filter_key(dataset, participant, max_missing, min_missing)
        if key not in self._cache:
            self._cache[key] = matching(self._meta(), key)
        idx = self._cache[key]
        v = self._view()
        v._indices = idx if self._indices is None else np.intersect1d(self._indices, idx)
        return v

    @property
    def indices(self) -> np.ndarray:
        """Split-level index of each window of this view."""
        return np.arange(self._total, dtype=np.int64) if self._indices is None else self._indices.copy()

    def _allowed_mask(self) -> np.ndarray | None:
        if self._indices is None:
            return None
        m = np.zeros(self._total, bool)
        m[self._indices] = True
        return m

    def stream(self, shuffle_shards: bool = False, seed: int = 0, state: dict | None = None, chunk: int = 32):
        """Iterate shard by shard, one reader open at a time; ``.state()`` gives a resumable checkpoint."""
        from sensorpipe.access.stream import ShardStream

        return ShardStream(self, shuffle_shards=shuffle_shards, seed=seed, state=state, chunk=chunk)

    def denormalize(self, x: Any, mask: Any = None) -> np.ndarray:
        """Like :meth:`SensorDataset.denormalize`, for this view's channels."""
        if self._norm is None:
            raise ValueError("this split was built without normalization parameters; open it with sensorpipe.open")
        return denormalize(x, self._norm if self._cols is None else _subset_norm(self._norm, self._cols), mask)


class SensorDataset:
    """A written dataset version: its splits, channels and normalization parameters.

    ``path`` is a local directory, a ``file://`` URL or any fsspec URL (see the
    module docstring for how remote shards are cached locally).
    """

    def __init__(self, path: str | Path, cache_dir: str | Path | None = None, verify: str = "sizes") -> None:
        import tensorflow_datasets as tfds

        from sensorpipe.access.verify import LocalFiles, RemoteFiles, ensure_intact, load_sidecar

        store = None
        if _is_remote(path):
            store = _RemoteStore(str(path), cache_dir)
            self.version_dir = store.local_dir
            self.url = store.url
            files = RemoteFiles(store)
        else:
            self.version_dir = resolve_version_dir(path)
            self.url = self.version_dir.resolve().as_uri()
            files = LocalFiles(self.version_dir)
        extra = load_sidecar(files)
        ensure_intact(files, extra, verify, str(path))   # before anything else is parsed
        info = read_json(self.version_dir / _INFO)
        self.name = info["name"]
        self.version = info["version"]
        try:
            self.features = tfds.features.FeatureConnector.from_config(str(self.version_dir))
        except (ValueError, KeyError, OSError) as e:    # JSONDecodeError is a ValueError
            raise DatasetIntegrityError(f"{self.version_dir / 'features.json'}: unreadable ({e}); the file is cut "
                                        f"or edited; re-run the config to rewrite the version") from None
        self.channels: tuple[str, ...] = tuple(extra["channels"])
        self.fingerprint: str = extra["fingerprint"]
        self.norm = NormParams.from_json(extra["normalization"])
        #: the run's configuration as recorded (no key file path); its sources name the studies
        self.config: dict = extra.get("config", {})
        self.splits = {s["name"]: Split(self.version_dir, self.name, s["name"], [int(x) for x in s["shardLengths"]],
                                        self.features, channels=self.channels, norm=self.norm, store=store)
                       for s in info["splits"]}
        for name in _configured_splits(self.config):   # a configured split no participant fell into
            if name not in self.splits:
                self.splits[name] = Split(self.version_dir, self.name, name, [], self.features,
                                          channels=self.channels, norm=self.norm, store=store)

    @property
    def studies(self) -> tuple[str, ...]:
        """The studies of the run's sources (a source's own name where it declares none), in config order."""
        return tuple(dict.fromkeys(s.get("study") or s["name"] for s in self.config.get("sources", ())))

    def __getitem__(self, split: str) -> Split:
        try:
            return self.splits[split]
        except KeyError:
            raise KeyError(f"no split {split!r}; this dataset has: {', '.join(self.splits)}") from None

    def select(self, channels) -> "SensorDataset":
        """A view of the whole dataset keeping only ``channels``, in that order (its splits, ``channels``,
        ``norm`` and ``denormalize`` follow)."""
        import copy

        cols = _channel_columns(self.channels, channels)
        v = copy.copy(self)
        v.channels = tuple(self.channels[j] for j in cols)
        v.norm = _subset_norm(self.norm, cols)
        v.splits = {k: s.select(v.channels) for k, s in self.splits.items()}
        return v

    def denormalize(self, x: Any, mask: Any = None) -> np.ndarray:
        """Normalized ``input [..., C]`` (one window or a batch) back to real units; see :func:`denormalize`."""
        return denormalize(x, self.norm, mask)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits.items())
        return f"SensorDataset({self.name} {self.version}: {sizes}; channels={list(self.channels)})"


def _configured_splits(config: dict) -> tuple[str, ...]:
    """The splits the run's config gave a share (``splits: {train: 0.8, ...}``), train, validation, test first;
    () for a version that recorded no config."""
    splits = config.get("splits")
    if not isinstance(splits, dict):
        return ()
    named = [k for k, v in splits.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    order = ("train", "validation", "test")
    return tuple(sorted(named, key=lambda k: (order.index(k) if k in order else len(order), k)))


def open_dataset(path: str | Path, cache_dir: str | Path | None = None, verify: str = "sizes") -> SensorDataset:
    return SensorDataset(path, cache_dir=cache_dir, verify=verify)


def local_version(path: str | Path, cache_dir: str | Path | None = None) -> Path:
    """A local folder holding the whole version at ``path``, for readers that need local files.

    TFDS reads files through TensorFlow's file systems, which have no ``s3://``
    (TensorFlow dropped it; ``gs://`` only where TF's GCS support is built in),
    and ArrayRecord's reader needs a local file anyway, so
    ``tfds.builder_from_directory(str(local_version("s3://bucket/out")))`` is
    the supported way to read a remote version with TFDS. Every file comes
    through fsspec's ``filecache`` into the cache :func:`open_dataset` uses
    (nothing is downloaded twice), and is checked against the version's
    manifest (sizes and edges). A local path or ``file://`` URL is returned as
    its version folder, nothing copied.
    """
    if not _is_remote(path):
        return resolve_version_dir(path)
    from sensorpipe.access.verify import RemoteFiles, ensure_intact, load_sidecar

    store = _RemoteStore(str(path), cache_dir)
    for name in sorted(store._sizes):
        store.fetch(name)
    files = RemoteFiles(store)
    ensure_intact(files, load_sidecar(files), "sizes", str(path))
    return store.local_dir


def load_norm_params(path: str | Path) -> NormParams:
    """The normalization parameters of a written dataset (its ``normalization.json``), checked against the
    checksum in its manifest (an edited file raises :class:`DatasetIntegrityError`)."""
    if _is_remote(path):
        return SensorDataset(str(path)).norm
    from sensorpipe.access.verify import LocalFiles, ensure_intact, load_sidecar

    files = LocalFiles(resolve_version_dir(path))
    ensure_intact(files, load_sidecar(files), "none", str(path))
    return NormParams.from_json(read_json(files.dir / "normalization.json"))


def _named_shard(paths: list[str], message: str) -> str:
    """The shard a reader error is about: the one whose path the message quotes, else the first the
    reader refuses on its own (the data source's error does not say which it was)."""
    from sensorpipe.storage.manifest import count_records

    for p in paths:
        if p in message:
            return p
    for p in paths:
        try:
            count_records(p, "array_record")
        except DatasetIntegrityError:
            return p
    return ", ".join(paths)


def denormalize(x: Any, params: NormParams | str | Path, mask: Any = None) -> np.ndarray:
    """Normalized values ``[..., C]`` back to real units, float32.

    ``x`` is one window or a batch (numpy, or anything ``np.asarray`` takes,
    e.g. a CPU torch tensor); ``params`` the dataset's :class:`NormParams` or
    its directory. Every method is inverted exactly (float64 arithmetic,
    rounded once) for values inside the clip range; a clipped value comes back
    as the clip bound. With ``mask`` (True = missing), imputed cells become NaN,
    so only observed minutes carry numbers.
    """
    norm = params if isinstance(params, NormParams) else load_norm_params(params)
    z = np.asarray(x)
    if z.shape[-1:] != (len(norm.channels),):
        raise ValueError(f"denormalize expects [..., {len(norm.channels)}] (channels {', '.join(norm.channels)}), "
                         f"got shape {z.shape}")
    out = norm.invert(z)
    if mask is not None:
        out[np.broadcast_to(np.asarray(mask, bool), out.shape)] = np.nan
    return out

"""``sensorpipe.open()``: random access to a written dataset as numpy dicts.

Reads the ArrayRecord shards through array_record's own data source and
decodes records with the dataset's own ``features.json``, so it returns
exactly what ``tfds.builder_from_directory(dir).as_data_source(split)``
returns. Readers open lazily on first access (an ArrayRecord reader opened
before a fork crashes forked workers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from sensorpipe.processing.normalize import NormParams


def resolve_version_dir(path: str | Path) -> Path:
    """Accept the output dir, ``<out>/<name>`` or ``<out>/<name>/<version>``; return the version dir."""
    p = Path(path)
    if (p / "dataset_info.json").exists():
        return p
    candidates = sorted(p.glob("*/dataset_info.json")) or sorted(p.glob("*/*/dataset_info.json"))
    if not candidates:
        raise FileNotFoundError(f"{p}: no sensorpipe/TFDS dataset here (no dataset_info.json below it); "
                                f"pass the output directory of `sensorpipe run`")
    dirs = sorted({c.parent for c in candidates}, key=lambda d: tuple(int(x) if x.isdigit() else 0 for x in d.name.split(".")))
    names = {d.parent.name for d in dirs}
    if len(names) > 1:
        raise ValueError(f"{p} holds several datasets ({', '.join(sorted(names))}); pass one of their folders")
    return dirs[-1]


class Split:
    """One split: ``len``, integer and slice indexing, iteration."""

    def __init__(self, version_dir: Path, name: str, split: str, shard_lengths: list[int], features) -> None:
        self.name = split
        n = len(shard_lengths)
        self._paths = [str(version_dir / f"{name}-{split}.array_record-{i:05d}-of-{n:05d}") for i in range(n)]
        self._len = int(sum(shard_lengths))
        self._features = features
        self._source = None

    def _src(self):
        if self._source is None:
            from array_record.python.array_record_data_source import ArrayRecordDataSource

            self._source = ArrayRecordDataSource(self._paths)
        return self._source

    def __len__(self) -> int:
        return self._len

    def raw(self, i: int) -> bytes:
        return self._src()[i]

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._len))]
        i = int(i)
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(f"index {i} out of range for split {self.name!r} of {self._len} windows")
        return self._features.deserialize_example_np(self._src()[i], decoders=None)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(self._len):
            yield self[i]

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_source"] = None
        return state


class SensorDataset:
    """A written dataset version: its splits, channels and normalization parameters."""

    def __init__(self, path: str | Path) -> None:
        import tensorflow_datasets as tfds

        self.version_dir = resolve_version_dir(path)
        info = json.loads((self.version_dir / "dataset_info.json").read_text())
        self.name = info["name"]
        self.version = info["version"]
        self.features = tfds.features.FeatureConnector.from_config(str(self.version_dir))
        extra = json.loads((self.version_dir / "sensorpipe.json").read_text())
        self.channels: tuple[str, ...] = tuple(extra["channels"])
        self.fingerprint: str = extra["fingerprint"]
        self.norm = NormParams.from_json(extra["normalization"])
        self.splits = {s["name"]: Split(self.version_dir, self.name, s["name"], [int(x) for x in s["shardLengths"]],
                                        self.features) for s in info["splits"]}

    def __getitem__(self, split: str) -> Split:
        try:
            return self.splits[split]
        except KeyError:
            raise KeyError(f"no split {split!r}; this dataset has: {', '.join(self.splits)}") from None

    def denormalize(self, x: Any, mask: Any = None) -> np.ndarray:
        """Normalized ``input [..., C]`` (one window or a batch) back to real units; see :func:`denormalize`."""
        return denormalize(x, self.norm, mask)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits.items())
        return f"SensorDataset({self.name} {self.version}: {sizes}; channels={list(self.channels)})"


def open_dataset(path: str | Path) -> SensorDataset:
    return SensorDataset(path)


def load_norm_params(path: str | Path) -> NormParams:
    """The normalization parameters of a written dataset (its ``normalization.json``)."""
    return NormParams.from_json(json.loads((resolve_version_dir(path) / "normalization.json").read_text()))


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

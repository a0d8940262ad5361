"""sensorpipe: heterogeneous wearable-sensor datasets -> one versioned, sharded training set.

Public API: :func:`open` (read a written dataset), :func:`run` (run a pipeline
config), :func:`load_config`, :func:`read_quarantine` (a quarantine file as text). Sources live in :mod:`sensorpipe.sources`.
"""

from __future__ import annotations

from sensorpipe._version import RELEASE as __version__  # noqa: F401  (public)

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from sensorpipe.access.dataset import SensorDataset


def open(path: str, cache_dir: str | None = None, verify: str = "sizes") -> "SensorDataset":  # noqa: A001
    """Open a written dataset (local path, ``file://`` or any fsspec URL) for random access (numpy dicts).

    Shards of a remote dataset are cached locally in ``cache_dir`` (default
    ``$SENSORPIPE_CACHE_DIR`` or ``~/.cache/sensorpipe/fsspec``). ``verify``
    checks the files against the version's manifest first: ``"sizes"`` (sizes,
    each shard's first and last 4 KiB, the JSON sidecars), ``"full"`` (every
    byte hashed, records counted) or ``"none"``; a damaged file raises
    :class:`sensorpipe.integrity.DatasetIntegrityError` naming it.
    """
    from sensorpipe.access.dataset import open_dataset

    return open_dataset(path, cache_dir=cache_dir, verify=verify)


def run(config, **overrides):
    """Run a pipeline from a YAML path, a mapping or a PipelineConfig; returns a RunResult."""
    from sensorpipe.runners.driver import run_pipeline

    return run_pipeline(config, **overrides)


def load_config(path):
    from sensorpipe.config import load_config as _load

    return _load(path)


def read_quarantine(path, key_file=None):
    """A quarantine Parquet file (``<output>/quarantine/<source>.parquet`` or ``convert``'s
    ``OUT.quarantine.parquet``) as a table with the original time and value as text. An encrypted one
    (``privacy.quarantine_key_file``) needs ``key_file``, the run's quarantine key file."""
    from sensorpipe.schema.quarantine import read_quarantine as _read

    if key_file is None:
        return _read(path)
    from sensorpipe.privacy.sealed import read_key_file

    return _read(path, read_key_file(key_file, "key_file"))

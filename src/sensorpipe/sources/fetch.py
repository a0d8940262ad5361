"""Remote inputs: a run's ``sources[].path``, participants tables and id maps given as fsspec URLs.

Adapters, label processors and the id-map reader read local files (pyarrow,
ArrayRecord, zip and XML readers want a path), so before a run every remote
input is copied by fsspec's ``filecache`` into the local cache
(:func:`sensorpipe.urls.fetch`) and the config names the copy. ``file://``
URLs become plain paths. A config without URLs is returned as it is, at no
cost. The dataset's fingerprint leaves paths out, so a run from the bucket and
a run from a local copy of the same files make the same dataset.
"""

from __future__ import annotations

import dataclasses

from sensorpipe.config import PipelineConfig
from sensorpipe.sources.base import SourceError
from sensorpipe.urls import fetch, local_path, protocol


def local_inputs(cfg: PipelineConfig) -> PipelineConfig:
    """``cfg`` with each URL among the sources' paths and participants tables and the studies' id maps
    replaced by a local path (a cached copy for a remote one)."""
    named = [s.path for s in cfg.sources] + [s.participants for s in cfg.sources] + \
        [st.id_map for st in cfg.studies.values()]
    if not any(protocol(p) for p in named):
        return cfg
    sources = tuple(dataclasses.replace(s, path=_local(s.path, f"sources[{s.name}].path"),
                                        participants=_local(s.participants, f"sources[{s.name}].participants"))
                    for s in cfg.sources)
    studies = {k: dataclasses.replace(st, id_map=_local(st.id_map, f"studies.{k}.id_map"))
               for k, st in cfg.studies.items()}
    return dataclasses.replace(cfg, sources=sources, studies=studies)


def _local(p: str | None, key: str) -> str | None:
    if not protocol(p):
        return p
    if protocol(p) == "file":
        return local_path(p)
    try:
        return str(fetch(p))
    except FileNotFoundError:
        raise SourceError(f"{key}: {p} does not exist; fix {key} in the config (bucket and key), or the "
                          f"fsspec connection settings") from None

"""What a Beam worker does around each item when the work area is a URL (:mod:`sensorpipe.runners.beam_remote`).

:class:`OnWorker` wraps the function a pipeline maps (pass 1, pass 2, a shard,
planning): before the call it brings the item's inputs and work-area entries
to this worker's local mirror, after it uploads what the call wrote. The
functions themselves run unchanged, on local paths, so every runner writes the
same bytes.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

from sensorpipe.runners import cache
from sensorpipe.runners.beam_remote import RemoteWork, remove_tree, scratch_dir, shard_token
from sensorpipe.runners.failures import encode_or_skip, prepare_or_skip
from sensorpipe.runners.stages import EncodedUnit, UnitSummary
from sensorpipe.storage.writer import write_shard


def plan_on_worker(cfg, work: RemoteWork) -> list:
    """Planning on a worker: the inputs copied whole into its cache, the units listed, shared files
    partitioned into its mirror of the work area and uploaded there."""
    from sensorpipe.sources.base import make_adapter
    from sensorpipe.sources.study import plan_persons

    work.fetch_inputs()
    units = plan_persons(cfg, [make_adapter(s, cfg.base_dir, work.root) for s in cfg.sources])
    work.push_partitions()
    return units


class OnWorker:
    """``fn`` with the work area at ``work``: a picklable callable the beam runner maps instead of ``fn``."""

    def __init__(self, fn: Callable[..., Any], work: RemoteWork) -> None:
        self.fn, self.work = fn, work

    def __call__(self, *args: Any) -> Any:
        cache.remote_hook.pull = self.work.pull_stem      # cache look-ups find the work area's entries
        try:
            if self.fn is prepare_or_skip:
                return self._prepare(*args)
            if self.fn is encode_or_skip:
                return self._encode(*args)
            if self.fn is write_shard:
                return self._shard(*args)
            return self.fn(*args)
        finally:
            cache.remote_hook.pull = None

    def _prepare(self, ctx, unit) -> Any:
        from sensorpipe.labels.base import processors_for
        from sensorpipe.sources.partition import OFFSET, PIECES
        from sensorpipe.sources.study import PersonUnit

        for u in PersonUnit.of(unit).parts:
            parts = u.partitions or ("",) * len(u.files)
            self.work.ensure_inputs([f for f, p in zip(u.files, parts) if not p])
            for stream in (p for p in parts if p):
                for piece in stream.split(PIECES):
                    self.work.pull(piece.partition(OFFSET)[0])
            self.work.ensure_inputs([f for proc in processors_for(u) for f in proc.side_files(u)])
        result = self.fn(ctx, unit)
        if not isinstance(result, UnitSummary):
            return result
        stem = result.cache[:-len(".arrays")]
        sketch = result.fit_stats.get("sketch_file")
        if not result.from_cache:
            self.work.push([p.quarantine for p in result.parts] + [sketch or "", result.cache, f"{stem}.json"])
        elif sketch:
            self.work.pull(sketch)
        return _inline_sketch(result)

    def _encode(self, ctx, summary: UnitSummary, norm) -> Any:
        stem = cache.record_stem(ctx.cache_dir, summary.study, summary.fingerprint, norm.to_json())
        self.work.pull_stem(stem)
        if not os.path.exists(stem + ".len"):    # not in the work area: computed here, from the unit's grid
            self.work.pull(summary.cache)
        result = self.fn(ctx, summary, norm)
        if isinstance(result, EncodedUnit) and not result.from_cache:
            self.work.push([stem + ".clipped.json", stem + ".bin", stem + ".len"])
        return result

    def _shard(self, version_dir, name, fmt, compression, plan, shard) -> tuple[str, str]:
        """The shard written here, then put under ``.work/shards/``; returns ``(file name, its URL)``."""
        for spill in plan.spills:
            self.work.pull(spill.stem + ".len")
            self.work.pull(spill.stem + ".bin")
        scratch = scratch_dir()
        try:
            self.fn(Path(scratch), name, fmt, compression, plan, shard)
            (written,) = Path(scratch).iterdir()
            token = Path(self.work.root) / "shards" / shard_token(str(version_dir)) / written.name
            url = self.work.work_url(str(token))
            from sensorpipe.urls import filesystem, reaching

            fs, remote = filesystem(url)
            reaching(url, fs.put_file, str(written), remote)
            return written.name, url
        finally:
            remove_tree(scratch)


def _inline_sketch(summary: UnitSummary) -> UnitSummary:
    """The summary with its sketch in its fit statistics instead of a file's path: the CombineFn merging them
    runs on a worker that may not hold the file. The sketch is integer counts: the merge is the same."""
    path = summary.fit_stats.get("sketch_file")
    if not path:
        return summary
    from sensorpipe.processing.sketch import HistogramSketch

    fit = {k: v for k, v in summary.fit_stats.items() if k != "sketch_file"}
    fit["sketch"] = HistogramSketch.load(path).to_json()
    return dataclasses.replace(summary, fit_stats=fit)

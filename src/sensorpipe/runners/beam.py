"""The Apache Beam runner (``runner.name: beam``): the local runner's stages, run as Beam pipelines.

The driver (:mod:`sensorpipe.runners.driver`) is the launcher: it plans the
units, decides the version label, writes the metadata once after the
pipelines succeed and publishes through the staging folder, exactly as for
the local runner. What runs per unit runs on Beam's workers:

- pass 1: ``Create(units) | ParDo(prepare)``, with a branch
  ``| CombineGlobally(FitStatsCombineFn)`` that merges the train statistics
  in unit order (:mod:`sensorpipe.runners.beam_normalize`);
- pass 2: ``Create(summaries) | ParDo(encode)`` with the normalization
  parameters as a side input;
- the shards: ``Create(shards of the deterministic plan) | ParDo(write_shard)``,
  each shard written by one worker from the record spills, so every file is
  byte for byte the local runner's.

An argument every item of a map shares (the run context: config and
pseudonymization key, both read by the launcher; the normalization
parameters) travels once as a side input, never as a path a worker must
open. Results come back through text files of pickled ``(index, result)``
lines under ``.work/beam/`` and are put back in input order. With a local
output the per-unit cache and record spills are under ``.work`` too, so every
worker must see the output folder (one machine, or a shared file system); with
a remote output (``s3://``, ``gs://``) the workers read the inputs and the work
area at their URLs instead (:mod:`sensorpipe.runners.beam_remote`). Counters per
quarantine reason, windows kept and dropped and units are Beam metrics,
summed into :attr:`BeamRunner.metrics` (the run summary prints them).
"""

from __future__ import annotations

import base64
import os
import pickle
import re
import uuid
from typing import Any, Callable

from sensorpipe.config import ConfigError
from sensorpipe.runners.beam_options import pipeline_options
from sensorpipe.runners.beam_remote import RemoteWork, fetch_shard, fsspec_lines, read_remote_lines
from sensorpipe.runners.executors import LocalRunner, RunnerError
from sensorpipe.runners.failures import UnitFailure, encode_or_skip, one_line, prepare_or_skip
from sensorpipe.runners.stages import EncodedUnit, UnitSummary
from sensorpipe.storage.writer import Shard, SplitPlan, write_shard

#: the Beam metrics namespace of sensorpipe's counters
NAMESPACE = "sensorpipe"


def unit_counts(result: Any) -> dict[str, int]:
    """The counters one unit's result adds (Beam metrics): units, windows kept and dropped, rows by reason."""
    if isinstance(result, UnitFailure):
        return {f"units_failed:{result.stage}": 1}
    if isinstance(result, EncodedUnit):
        return {"units_encoded": 1}
    if not isinstance(result, UnitSummary):
        return {}
    counts = {"units_prepared": 1, "windows_kept": result.windows_kept}
    for reason, n in result.stats.under("windows_dropped").items():
        counts[f"windows_dropped:{reason}"] = n
    for part in result.parts:
        for reason, n in part.reason_counts.items():
            counts[f"quarantined:{reason}"] = counts.get(f"quarantined:{reason}", 0) + n
    return counts


def _call_dofn(fn: Callable[..., Any], shared: tuple[int, ...], arity: int):
    """A DoFn calling ``fn`` with each item's own arguments and the shared ones (a side input) in place."""
    import apache_beam as beam
    from apache_beam.metrics import Metrics

    class CallFn(beam.DoFn):
        def process(self, row, shared_values):
            index, own = row
            args: list[Any] = [None] * arity
            for j, v in zip(shared, shared_values):
                args[j] = v
            for j, v in zip((j for j in range(arity) if j not in shared), own):
                args[j] = v
            try:
                result = fn(*args)
            except Exception as e:  # noqa: BLE001 - re-raised by the launcher, as the local runner raises it
                Metrics.counter(NAMESPACE, "unit_errors").inc()
                yield index, Raised(e)
                return
            for name, n in unit_counts(result).items():
                Metrics.counter(NAMESPACE, name).inc(n)
            yield index, result

    return CallFn()


class Raised:
    """A unit's error, carried back to the launcher and raised there (the first in unit order), so the user sees
    the error the local runner shows (the file, the row, the fix) instead of a worker's traceback; a
    deterministic error is not retried by the Beam runner either. An exception that does not pickle comes back
    as a ``RuntimeError`` with its type and message."""

    def __init__(self, error: Exception) -> None:
        try:
            pickle.loads(pickle.dumps(error))
        except Exception:  # noqa: BLE001 - any exception type may refuse pickling
            error = RuntimeError(f"{type(error).__name__}: {error}")
        self.error = error


def _line(indexed: tuple[int, Any]) -> str:
    return f"{indexed[0]}\t{base64.b64encode(pickle.dumps(indexed[1], protocol=5)).decode('ascii')}"


def _train_stats(indexed):
    from sensorpipe.runners.beam_normalize import train_stats

    return train_stats(indexed)


class BeamRunner(LocalRunner):
    """Runs each pass as a Beam pipeline on the runner ``flags`` name (DirectRunner by default)."""

    name = "beam"

    def __init__(self, flags: list[str], work_dir: str) -> None:
        self.flags = list(flags)
        self.work_dir = work_dir
        self.metrics: dict[str, int] = {}
        self.pipelines = 0
        #: per pipeline (its description): bytes of the items shuffled by Create's reshuffle, of the side input,
        #: of the CombineGlobally input (pass 1) and of the results read back (docs/scale.md)
        self.volumes: dict[str, dict[str, int]] = {}
        self._pending: list[tuple] = []          # write_shard calls not yet run (one pipeline writes them all)
        self._done: dict[int, Any] = {}
        self._submitted = 0
        self._spill_counts: dict[int, tuple[Any, list[int]]] = {}   # id(plan) -> (plan, records per spill)
        self._fit: tuple[list[str], Any] | None = None   # (train unit keys, merged FitStats) from pass 1
        #: a remote output's work area (beam_remote); None: workers share the launcher's disk
        self.remote: RemoteWork | None = None
        self._pulled: list[str] = []             # work-area files this launcher copied (deleted at close)
        opts = pipeline_options(self.flags)      # a missing extra or a bad option fails before any work
        from apache_beam.options.pipeline_options import StandardOptions

        self.beam_runner = str(opts.view_as(StandardOptions).runner)
        from apache_beam.runners.runner import create_runner

        try:
            create_runner(self.beam_runner)
        except ValueError as e:
            raise ConfigError(f"runner.beam_options / --beam-option runner={self.beam_runner}: {e}") from None
        if self.beam_runner == "DirectRunner":
            from apache_beam.options.pipeline_options import DirectOptions

            direct = opts.view_as(DirectOptions)
            self.beam_runner += f", {direct.direct_running_mode}, {direct.direct_num_workers} worker(s)"

    def describe(self) -> str:
        return f"beam ({self.beam_runner})"

    def use_remote_work(self, work: RemoteWork) -> None:
        """Workers read the inputs and the work area at ``work``'s URLs; results go there too."""
        self.remote, self.work_dir = work, work.url

    def plan_units(self, cfg) -> list:
        """The run's units, planned on a worker (remote work area): the launcher never opens an input."""
        from sensorpipe.runners.beam_worker import plan_on_worker

        return self._run(plan_on_worker, [(cfg, self.remote)], "plan units")[0][0]

    def write_manifest(self, work_dir, name, version, version_dir, run_id, summaries, stems):
        """:func:`~sensorpipe.runners.cache.write_manifest`, into the remote work area when there is one."""
        from sensorpipe.runners.cache import write_manifest

        if self.remote is None:
            return write_manifest(work_dir, name, version, version_dir, run_id, summaries, stems)
        return self.remote.upload_manifest(name, version, version_dir, run_id, summaries, stems)

    def close(self) -> None:
        """Removes the work-area files this launcher copied (quarantine spills, record lengths)."""
        for path in self._pulled:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self._pulled = []
        super().close()

    def _pull(self, paths) -> None:
        for p in paths:
            if p and not os.path.exists(p) and self.remote.pull(p):
                self._pulled.append(p)

    def map(self, fn, items, desc):
        """``fn(*item)`` for every item, as one pipeline; results in input order. Pass 1 also combines the
        train statistics in the same pipeline."""
        if not items:
            return []
        if fn is not prepare_or_skip:
            results = self._run(fn, items, desc)[0]
            if self.remote is not None and fn is encode_or_skip:   # the shard plan reads the record lengths
                self._pull(r.stem + ".len" for r in results if isinstance(r, EncodedUnit))
            return results
        ctx = items[0][0]
        results, fit = self._run(fn, items, desc, fit=(ctx.cfg.channels, ctx.cfg.normalization))
        keys = [r.key for r in results if isinstance(r, UnitSummary) and r.split == "train"]
        self._fit = (keys, fit)
        if self.remote is not None:    # the quarantine files are written from the units' spills, here
            self._pull(p.quarantine for r in results if isinstance(r, UnitSummary) for p in r.parts)
        return results

    def fit_normalization(self, cfg, summaries):
        """The train normalization parameters from pass 1's CombineFn (a combine-only pipeline when the units
        changed since); bit-identical to :func:`~sensorpipe.runners.driver.fit_normalization`."""
        from sensorpipe.processing.normalize import NormParams

        keys = [s.key for s in summaries if s.split == "train"]
        if self._fit is None or self._fit[0] != keys:
            self._fit = (keys, self._run(_same, [(s,) for s in summaries], "fit normalization",
                                         fit=(cfg.channels, cfg.normalization))[1])
        return NormParams.fit(cfg.channels, self._fit[1], cfg.normalization)

    def submit(self, fn, args):
        """``write_shard`` calls are collected and run together, one pipeline, at the first ``result()``;
        anything else (TFDS's metadata, the report) runs here in the launcher, now."""
        if fn is not write_shard:
            return super().submit(fn, args)
        *head, plan, shard = args
        if id(plan) not in self._spill_counts:
            self._spill_counts[id(plan)] = (plan, [int(sp.lengths().size) for sp in plan.spills])
        self._pending.append((*head, *shard_only(plan, shard, self._spill_counts[id(plan)][1])))
        self._submitted += 1
        return _Deferred(self, self._submitted - 1)

    def _flush(self) -> None:
        first = self._submitted - len(self._pending)
        pending, self._pending = self._pending, []
        try:
            results = self._run(write_shard, pending, "write shards")[0]
        except Exception as e:  # noqa: BLE001 - every shard of the pipeline reports it
            results = [Raised(e)] * len(pending)
        if self.remote is not None:    # written on the workers under .work/shards/: into the staging folder
            results = [r if isinstance(r, Raised) else fetch_shard(item[0], *r) for item, r in zip(pending, results)]
        for i, r in enumerate(results, start=first):
            self._done[i] = r

    def _run(self, fn, items: list[tuple], desc: str, fit=None) -> tuple[list[Any], Any]:
        import apache_beam as beam
        from apache_beam.io.filesystems import FileSystems

        arity = len(items[0])
        if self.remote is not None:
            from sensorpipe.runners.beam_worker import OnWorker

            fn = OnWorker(fn, self.remote)
        shared = tuple(j for j in range(arity) if all(a[j] is items[0][j] for a in items))
        rows = [(i, tuple(v for j, v in enumerate(a) if j not in shared)) for i, a in enumerate(items)]
        out = f"{self.work_dir}/beam/{uuid.uuid4().hex[:12]}"
        step = re.sub(r"[^A-Za-z0-9]+", " ", desc).strip()
        p = beam.Pipeline(options=pipeline_options(self.flags))
        side_values = tuple(items[0][j] for j in shared)
        side = p | "shared arguments" >> beam.Create([side_values])
        results = (p | "items" >> beam.Create(rows)
                   | step >> beam.ParDo(_call_dofn(fn, shared, arity), beam.pvalue.AsSingleton(side)))
        results | "results" >> beam.Map(_line) | "write results" >> self._write_lines(f"{out}/results")
        if fit is not None:
            from sensorpipe.runners.beam_normalize import FitStatsCombineFn

            (results | "train statistics" >> beam.FlatMap(_train_stats)
             | "combine statistics" >> beam.CombineGlobally(FitStatsCombineFn(*fit))
             | "keyed" >> beam.Map(lambda stats: (-1, stats))
             | "fit line" >> beam.Map(_line) | "write fit" >> self._write_lines(f"{out}/fit"))
        try:
            outcome = p.run()
            outcome.wait_until_finish()
        except Exception as e:  # noqa: BLE001 - a unit's own error comes back as a result (Raised), not here
            self._delete(FileSystems, out)
            raise RunnerError(f"the Beam pipeline for {desc!r} failed on {self.beam_runner}: {one_line(e)[:2000]}. "
                              f"A worker crashed or ran out of memory, or an option is wrong; rerun with "
                              f"runner.name: local to see a unit's own error") from e
        self.pipelines += 1
        self._add_metrics(outcome)
        read = _read_lines if self.remote is None else read_remote_lines
        lines = read(FileSystems, f"{out}/results-*")
        back = {i: r for i, r, _ in lines}
        self.volumes[desc] = {"items_bytes": len(pickle.dumps(rows, protocol=5)),
                              "side_input_bytes": len(pickle.dumps(side_values, protocol=5)),
                              "results_bytes": sum(n for _, _, n in lines)}
        if fit is not None:
            self.volumes[desc]["combine_input_bytes"] = sum(
                len(pickle.dumps(x, protocol=5)) for i, r, _ in lines for x in _train_stats((i, r)))
        if sorted(back) != list(range(len(items))):
            raise RuntimeError(f"beam runner: {desc} returned {len(back)} of {len(items)} results under {out}")
        merged = read(FileSystems, f"{out}/fit-*")[0][1] if fit is not None else None
        self._delete(FileSystems, out)
        results = [back[i] for i in range(len(items))]
        for r in results:
            if isinstance(r, Raised):
                raise r.error
        return results, merged

    def _write_lines(self, prefix: str):
        """Beam's text sink for a work area on the shared disk; objects written through fsspec for a remote
        one (Beam's own S3 and GCS file systems need their own options and extras)."""
        import apache_beam as beam

        if self.remote is None:
            return beam.io.WriteToText(prefix)
        return beam.ParDo(fsspec_lines(prefix))

    def _delete(self, filesystems, out: str) -> None:
        if self.remote is None:
            if filesystems.exists(out):
                filesystems.delete([out])
            return
        from sensorpipe.urls import filesystem

        fs, path = filesystem(out)
        if fs.exists(path):
            fs.rm(path, recursive=True)

    def _add_metrics(self, outcome) -> None:
        from apache_beam.metrics.metric import MetricsFilter

        for c in outcome.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
            n = c.committed if c.committed is not None else c.attempted
            self.metrics[c.key.metric.name] = self.metrics.get(c.key.metric.name, 0) + int(n or 0)


def shard_only(plan: SplitPlan, shard: Shard, counts: list[int]) -> tuple[SplitPlan, Shard]:
    """``(plan, shard)`` cut down to the spills the shard reads, its record range rebased on the first of them:
    a shard's work item then carries its own spills, not the split's (thousands of units, thousands of shards),
    and :func:`write_shard` writes the same records."""
    kept, first, base = [], 0, None
    for spill, n in zip(plan.spills, counts):
        if first + n > shard.start and first < shard.stop:
            base = first if base is None else base
            kept.append(spill)
        first += n
    base = shard.start if base is None else base
    return (SplitPlan(plan.name, kept, [], plan.num_bytes),
            Shard(shard.split, shard.index, shard.count, shard.start - base, shard.stop - base))


def _same(x: Any) -> Any:
    """The identity: the combine-only pipeline's ParDo, over pass 1's summaries."""
    return x


def _read_lines(filesystems, pattern: str) -> list[tuple[int, Any, int]]:
    """``(index, result, bytes of its line)`` for every line of the files ``pattern`` matches."""
    out = []
    for match in filesystems.match([pattern])[0].metadata_list:
        with filesystems.open(match.path) as f:
            for line in f.read().decode("ascii").splitlines():
                index, _, data = line.partition("\t")
                out.append((int(index), pickle.loads(base64.b64decode(data)), len(line) + 1))
    return out


class _Deferred:
    """A ``write_shard`` call collected by :meth:`BeamRunner.submit`; ``result()`` runs the pending ones."""

    def __init__(self, runner: BeamRunner, index: int) -> None:
        self.runner, self.index = runner, index

    def result(self) -> Any:
        if self.index not in self.runner._done:
            self.runner._flush()
        value = self.runner._done[self.index]
        if isinstance(value, Raised):
            raise value.error
        return value

"""The pipeline driver: plan units, run both passes on a runner, write, record.

Output directory layout::

    <output.dir>/
      <name>/<version>/        the TFDS dataset (shards, dataset_info.json, features.json,
                               sensorpipe.json, normalization.json), published by a rename
      .staging/<run_id>/       a running run's version, quarantine and report (storage.publish)
      .sensorpipe.lock         one writer per output folder (runners.lock)
      quarantine/<source>.parquet
      metadata.db              (unless metadata.url points elsewhere)
      report.html
      .work/                   per-unit cache (resume, re-runs only redo what changed)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from sensorpipe._version import code_version
from sensorpipe.captions.generator import level_imports
from sensorpipe.channels import registry_fingerprint
from sensorpipe.config import OutputConfig, PipelineConfig, stable_hash
from sensorpipe.core.labels import LABEL_SCHEMA_VERSION
from sensorpipe.privacy.paths import SourcePaths
from sensorpipe.privacy.pseudonym import load_key
from sensorpipe.privacy.sealed import load_quarantine_key
from sensorpipe.processing.normalize import FitStats, NormParams
from sensorpipe.runners._memory import freed_memory_retained
from sensorpipe.runners.beam_remote import RemoteWork
from sensorpipe.runners.cache import cache_counts, write_manifest
from sensorpipe.runners.executors import make_runner
from sensorpipe.runners.failures import UnitFailure, encode_or_skip, prepare_or_skip, split_encoded, split_prepared
from sensorpipe.runners.lifecycle import (
    Label,
    NoWindowsError,
    VersionConflict,
    checkpoint,
    decide_label,
    no_windows_message,
    reconcile_runs,
)
from sensorpipe.runners.lock import OutputLock, this_host
from sensorpipe.runners.plan import load_plan
from sensorpipe.runners.preflight import DiskFullError, check_output_dir, is_disk_full
from sensorpipe.runners.progress import progress_every
from sensorpipe.runners.report_process import start_report_process
from sensorpipe.runners.run_warnings import run_warnings
from sensorpipe.runners.stages import RunContext, SourcePart, UnitSummary
from sensorpipe.runners.stats import UnitStats
from sensorpipe.schema.quarantine import QuarantineWriter, read_spill
from sensorpipe.sources.base import make_adapter
from sensorpipe.sources.fetch import local_inputs
from sensorpipe.runners.planning import plan_units
from sensorpipe.storage.manifest import build_manifest, shard_digests
from sensorpipe.storage.permissions import AccessPolicy, restrict_root, restrict_tree
from sensorpipe.storage.publish import Staging, recover
from sensorpipe.storage.remote import RemoteOutput
from sensorpipe.storage.writer import (RecordSpill, SplitPlan, plan_dataset, primary_format, write_metadata,
                                       write_shard)

SPLITS = ("train", "validation", "test")


@dataclass
class RunResult:
    """What a finished run reports back (also printed by the CLI)."""

    run_id: str
    output_dir: str
    version_dir: str
    fingerprint: str
    split_sizes: dict[str, int]
    rows_in: int
    rows_accepted: int
    rows_quarantined: int
    raw_samples_in: int
    windows_kept: int
    windows_dropped: dict[str, int]
    quarantine_by_reason: dict[str, int]
    metadata_url: str
    report: str
    seconds: dict[str, float] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)   # summed over units (worker CPU-ish time)
    runner: str = ""                # which runner ran it, and how its workers started
    clipped_cells: dict[str, dict[str, int]] = field(default_factory=dict)  # study -> channel -> cells clipped
    units: list[UnitSummary] = field(default_factory=list, repr=False)
    units_cached: dict[str, int] = field(default_factory=dict)       # pass1 / pass2 -> units read from the cache
    units_skipped: list[UnitFailure] = field(default_factory=list)   # run.on_unit_error: skip
    unchanged: bool = False          # the label already held this fingerprint: nothing was written
    replaced: str | None = None      # fingerprint of the version this run replaced (--overwrite)
    warnings: list[str] = field(default_factory=list)   # what the user should know (runners/run_warnings.py)
    runner_metrics: dict[str, int] = field(default_factory=dict)   # the beam runner's counters (runners/beam.py)
    runner_volumes: dict[str, dict[str, int]] = field(default_factory=dict)   # ... and bytes per pipeline
    alerts: list[str] = field(default_factory=list)     # breached quality.alerts rules (runners/monitoring.py)

    @property
    def observations_in(self) -> int:
        return self.rows_in + self.raw_samples_in


def run_pipeline(config: Any, runner: str | None = None, workers: int | None = None,
                 strict: bool | None = None, overwrite: bool = False, wait_lock_s: float = 0.0,
                 beam_options: list[str] | None = None, _work: RemoteWork | None = None) -> RunResult:
    """Run the whole pipeline for ``config`` (YAML path, mapping or PipelineConfig).

    One run at a time per output folder (its lock; ``wait_lock_s`` waits for a running one). The version is
    written to a staging folder and published by a rename once complete and recorded; ``overwrite`` lets it
    replace a label that holds another fingerprint. ``beam_options`` (``--beam-option`` flags) follow
    ``runner.beam_options``. Every run, failed ones included, has a row in the metadata
    database (see :mod:`sensorpipe.runners.lifecycle`). ``_work`` is internal: a remote output's work area on
    the beam runner (:mod:`sensorpipe.runners.beam_remote`), set by the call that handles the remote output.
    """
    cfg = load_plan(config).config   # every name resolved and every cross-section check done, or a ConfigError
    remote = RemoteOutput.of(cfg)    # output.dir on object storage: run in a local folder, then upload
    if remote is not None:           # on beam the workers read the inputs and .work at URLs (runners.beam_remote)
        work = RemoteWork.of(remote.url) if (runner or cfg.runner.name) == "beam" else None
        return remote.publish(run_pipeline(remote.local_config(cfg), runner, workers, strict, overwrite,
                                           wait_lock_s, beam_options, work), overwrite)
    if _work is not None:            # remote inputs: named where the workers copy them, not downloaded here
        _work, cfg = _work.localized(cfg)
    else:
        cfg = local_inputs(cfg)      # remote sources, participants tables and id maps: local cached copies
    if strict is not None:
        cfg = dataclasses.replace(cfg, validation=dataclasses.replace(cfg.validation, strict=strict))
    if runner or workers is not None:
        cfg = dataclasses.replace(cfg, runner=dataclasses.replace(
            cfg.runner, name=runner or cfg.runner.name, workers=cfg.runner.workers if workers is None else workers))
        cfg.runner.validate("runner")   # --workers 0 or 10**9 is a one-line error like the config's
    if beam_options:
        from sensorpipe.runners.beam_options import beam_flags

        cfg = dataclasses.replace(cfg, runner=dataclasses.replace(
            cfg.runner, beam_options=(*beam_flags(cfg.runner.beam_options), *beam_options)))
    t0 = time.perf_counter()
    started = dt.datetime.now(dt.timezone.utc)
    out = Path(cfg.output_dir)
    check_output_dir(out)
    access = AccessPolicy.from_output(cfg.output)
    restrict_root(out, access)     # closed to other users before anything is written inside (storage.permissions)
    run_id = uuid.uuid4().hex[:12]
    with OutputLock(out, run_id, started.isoformat(), wait_s=wait_lock_s):
        code_version()   # hashed before any fork: the side process and forked workers inherit it
        # the report's side process forks here, before this process imports SQLAlchemy for the store and before
        # the runner starts a thread: it imports matplotlib and the report's modules while this one opens the
        # database, plans and runs the passes (runners/report_process.py)
        with start_report_process(cfg.runner.name, cfg.runner.start_method) or nullcontext() as side:
            from sensorpipe.metadata.records import RunStart
            from sensorpipe.metadata.store import MetadataStore
            from sensorpipe.runners.monitoring import close_run

            store = MetadataStore(cfg.metadata_url)
            try:
                reconcile_runs(store, str(out), mine=run_id, hold_lock=True)   # runs killed before this one
                recover(out, keep=run_id)                                      # ... and their staging folders
                store.begin_run(RunStart(run_id, started.isoformat(), cfg.runner.name, cfg.runner.workers,
                                         code_version(), _config_json(cfg), str(out), cfg.output.name,
                                         cfg.output.version, os.getpid(), this_host()))
                run = _Run(cfg, store, run_id, out, overwrite, _work, side)
                try:
                    with progress_every(cfg.run.progress_interval_s):
                        result = run.execute(t0, started)
                except BaseException as e:
                    run.fail(e)
                    run.audit("interrupted" if isinstance(e, KeyboardInterrupt) else "failed")
                    close_run(cfg, store, run_id)     # metrics.prom says it failed
                    if is_disk_full(e) and not isinstance(e, DiskFullError):
                        raise DiskFullError(e.errno, f"disk full writing {e.filename or out} during stage "
                                                     f"{run.stage} of run {run_id}: free space or set output.dir "
                                                     f"elsewhere, and run again; {_kept(run)}") from e
                    raise
                run.audit("unchanged" if result.unchanged else "succeeded", result.fingerprint)
                close_run(cfg, store, run_id, result)   # timings, peak memory, metrics.prom
                return result
            finally:
                store.close()
                restrict_tree(out, access)     # every file 0640, folder 0750 (+ group), the DB and .work included


def _kept(run: "_Run") -> str:
    if run.published:
        return f"the new version {run.label.target} was published before the disk filled up"
    return (f"the published version {run.label.target} is unchanged" if run.label and run.label.target.exists()
            else "nothing was published")


def _config_json(cfg: PipelineConfig) -> str:
    return json.dumps(cfg.shareable_dict(), sort_keys=True, default=str)


class _Run:
    """One run's work between taking the lock and releasing it: stages, staging, publish, its row."""

    def __init__(self, cfg: PipelineConfig, store, run_id: str, out: Path, overwrite: bool,
                 work: RemoteWork | None = None, side=None) -> None:
        self.cfg, self.store, self.run_id, self.out, self.overwrite = cfg, store, run_id, out, overwrite
        self.work = work     # a remote output's work area on the beam runner; None: <out>/.work
        self.side = side     # the report's side process (runners/report_process.py); None: the pool draws
        self.stage = "plan"
        self.label: Label | None = None
        self.staging: Staging | None = None
        self.published = False
        self.key_id: str | None = None     # the key's digest once loaded (privacy.pseudonym.key_digest)

    def enter(self, stage: str) -> None:
        """Record the stage reached (committed: a killed run's row says where it died)."""
        self.stage = stage
        self.store.update_run(self.run_id, stage=stage)
        checkpoint(stage)

    def fail(self, e: BaseException) -> None:
        """Record the failure (one line) and remove this run's staging; the published version is untouched."""
        if self.staging is not None:
            self.staging.discard()      # puts back an old version moved aside if the new one is not in place
        if self.published:      # the version is in place (what failed came after): it is the published one
            try:
                self.store.publish_version(self.run_id)
            except Exception:   # left 'publishing': the next run or `versions` finds it on disk, records it
                logging.getLogger(__name__).exception("could not record run %s as succeeded", self.run_id)
            return
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        try:
            self.store.finish_run(self.run_id, status, error=_shared_error(self.cfg, e), stage=self.stage)
        except Exception:   # the database may be what failed; the run's row stays open and is closed later
            logging.getLogger(__name__).exception("could not record the failure of run %s", self.run_id)

    def audit(self, status: str, fingerprint: str | None = None) -> None:
        """The run's audit row: its status, dataset fingerprint, the key's digest and the version it wrote.
        A database that cannot take it (the cause of a failure, perhaps) is logged, not raised over the run's
        own outcome."""
        versions = [f"{self.cfg.output.name}/{self.label.version}"] if self.label is not None else []
        try:
            self.store.audit("run", self.run_id, {"status": status, "fingerprint": fingerprint,
                                                  "key_digest": self.key_id,
                                                  "stage": "done" if status in ("succeeded", "unchanged") else self.stage},
                             versions)
        except Exception:
            logging.getLogger(__name__).exception("could not write the audit row of run %s", self.run_id)

    def execute(self, t0: float, started: dt.datetime) -> RunResult:
        cfg, out = self.cfg, self.out
        key = load_key(cfg)
        # the quarantine key is checked before any work; None: plain quarantine files and spills
        ctx = RunContext(cfg, key, self.work.root if self.work else str(out / ".work"),
                         quarantine_key=load_quarantine_key(cfg, key))
        self.key_id = ctx.key_id
        # freed arrays stay in this process's heap during the run (see runners/_memory.py)
        with freed_memory_retained(), make_runner(cfg.runner.name, cfg.runner.workers, cfg.runner.start_method,
                                                  cfg.runner.tuning, cfg.runner.beam_options, ctx.cache_dir,
                                                  ahead=level_imports(cfg.captions)) as pool:
            drawer = self.side or pool    # no side process: the pool draws (local: in process), as it did before
            if self.work is not None:
                pool.use_remote_work(self.work)
            checkpoint("plan")
            # shared multi-participant files are partitioned under .work once here (sources.partition)
            adapters = [make_adapter(s, cfg.base_dir, ctx.cache_dir) for s in cfg.sources]
            units = plan_units(cfg, adapters, pool)   # one unit per person of a study, all their sources
            seconds = {"plan": time.perf_counter() - t0}
            self.enter("pass1")
            t = time.perf_counter()
            summaries, skipped = split_prepared(
                pool.map(prepare_or_skip, [(ctx, u) for u in units], "pass 1: prepare"))
            seconds["pass1"] = time.perf_counter() - t
            check_quarantine_rates(cfg, summaries, self.work.url if self.work else f"{cfg.output_dir}/.work")
            try:
                fingerprint, split_sizes, label = self.settle(ctx, summaries)
            except VersionConflict:
                if cfg.run.on_unit_error != "skip":
                    raise
                label = None   # pass 2 may still leave out the unit that made the label's dataset: decide after it
            if label is not None:
                if label.unchanged:
                    return self._unchanged(summaries, fingerprint, split_sizes, seconds, t0, pool.describe(),
                                           skipped)
                cfg = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, version=label.version))
            # the beam runner combined the train statistics in pass 1's pipeline (a CombineFn, same order)
            norm = getattr(pool, "fit_normalization", fit_normalization)(cfg, summaries)
            self.enter("pass2")
            t = time.perf_counter()
            pool.preload(level_imports(cfg.captions))   # forked workers share one scipy.signal import (warmed up
            #                                             during pass 1 under fork: then this only waits for it)
            summaries, encoded, failed = split_encoded(
                summaries, pool.map(encode_or_skip, [(ctx, s, norm) for s in summaries], "pass 2: encode"))
            skipped += failed
            seconds["pass2"] = time.perf_counter() - t
            if failed or label is None:   # pass 2 left a unit out: another dataset, its own fingerprint and label
                fingerprint, split_sizes, label = self.settle(ctx, summaries)
                if label.unchanged:
                    return self._unchanged(summaries, fingerprint, split_sizes, seconds, t0, pool.describe(),
                                           skipped)
                cfg = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, version=label.version))
            stems = [e.stem for e in encoded]
            stage_seconds = UnitStats.merged([s.stats for s in summaries] + [e.stats for e in encoded]).seconds
            # the tail: shards (one job each, on every worker at once), then TFDS's metadata, and the HTML
            # report go to the workers (no TFDS import here) while this process records the metadata, committed
            # once the shards are complete. The report is drawn beside the shards (its window sample is read from
            # the spills they are cut from) but for its timing table, which stops at the write. Everything goes to
            # this run's staging folder, published by renames at the end.
            self.enter("write")
            t = time.perf_counter()
            self.staging = staging = Staging(out, self.run_id).create(label.target)
            version_dir = staging.version
            plans = plan_dataset(_order_spills(summaries, stems), cfg.output)
            from sensorpipe.reporting import (SpilledWindows, draw_record_sections, draw_window_sections, drift_against,
                                              peak_rss_mb, run_report)

            # the report's window sample, read from the record spills the shards are cut from, drawn first, while
            # the shards are written (a remote work area's spills are not here: then from the shards, at the end)
            t_report = time.perf_counter()
            sampled = (drawer.submit(draw_window_sections, (SpilledWindows.of(plans, cfg, norm),))
                       if self.work is None else None)
            seconds["report"] = time.perf_counter() - t_report    # all of it in process; ~0 when another draws
            writing = submit_shards(pool, version_dir, plans, cfg.output, primary_format(cfg.output))
            paths = SourcePaths.of(cfg, ctx.key)   # source files as keyed tokens in what is shared
            q_counts = write_quarantine(staging.quarantine, cfg, summaries, paths, ctx.quarantine_key)
            result = RunResult(
                run_id=self.run_id, output_dir=str(out), version_dir=str(label.target), fingerprint=fingerprint,
                split_sizes=split_sizes,
                rows_in=sum(u.rows_in for u in summaries), rows_accepted=sum(u.rows_accepted for u in summaries),
                rows_quarantined=sum(u.rows_quarantined for u in summaries),
                raw_samples_in=sum(u.raw_samples_in for u in summaries),
                windows_kept=sum(u.windows_kept for u in summaries),
                windows_dropped=_sum_dicts(u.stats.under("windows_dropped") for u in summaries), quarantine_by_reason=q_counts,
                metadata_url=cfg.metadata_url, report=str(out / "report.html"), seconds=seconds,
                stage_seconds=stage_seconds, units=summaries, runner=pool.describe(),
                clipped_cells=_clipped_by_study(summaries, encoded), replaced=label.replaces,
                units_cached=cache_counts(summaries, encoded), units_skipped=skipped,
                warnings=run_warnings(cfg, adapters, summaries), runner_metrics=getattr(pool, "metrics", {}),
                runner_volumes=getattr(pool, "volumes", {}))
            from sensorpipe.quality.record import build_run_record
            from sensorpipe.runners.monitoring import check_run

            record = build_run_record(cfg, result, adapters, norm, started, ctx.stage_hashes(), paths)
            record = check_run(cfg, self.store, record, result, seconds, t0)   # drift, alerts, timings so far
            record = dataclasses.replace(record, status="publishing", windows_kept=result.windows_kept)
            drift = drift_against(self.store, record)   # read here: the process that draws opens no database
            t_report = time.perf_counter()
            drawing = drawer.submit(draw_record_sections, (record, drift))   # beside the shards
            seconds["report"] += time.perf_counter() - t_report
            seconds["metadata"] = 0.0
            for shard in writing:
                shard.result()
            # the shards are hashed for the manifest (threads: hashlib releases the GIL) while TFDS's metadata is
            # written (on a worker; under local, here), not after it
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sensorpipe-hash") as hashing:
                hashed = hashing.submit(shard_digests, version_dir)
                pool.submit(write_version, (version_dir, plans, cfg)).result()
                digests = hashed.result()
            if primary_format(cfg.output) != "array_record":   # ArrayRecord beside TFRecord: after the metadata
                for shard in submit_shards(pool, version_dir, plans, cfg.output, "array_record"):
                    shard.result()
            checkpoint("shards")
            _write_sidecars(version_dir, cfg, norm, fingerprint, digests)
            # until every shard is written, less this process's drawing in the meantime
            seconds["write"] = time.perf_counter() - t - seconds["report"]
            self.enter("publish")
            t = time.perf_counter()
            self.store.record_run(record)           # 'publishing': committed once the staged version is complete
            seconds["metadata"] += time.perf_counter() - t
            # the rest of the report (the timings, which stop at the write) is drawn and the page written (in the
            # report process, or on a worker) once the sections drawn beside the shards are in
            t_report = time.perf_counter()
            pre = {**(sampled.result() if sampled is not None else {}), **drawing.result()}
            reporting = drawer.submit(run_report, (staging.report, record, result, version_dir, cfg.metadata_url,
                                                   dict(seconds), pre, peak_rss_mb()))
            seconds["report"] += time.perf_counter() - t_report
            reporting.result()
            checkpoint("record")
            staging.swap_in(label.target, checkpoint)   # the rename (a swap with the old version, if any)
            self.published = True
            checkpoint("published")
            self.store.publish_version(self.run_id)     # 'succeeded'
            staging.move_side_files()                   # quarantine files and report of this run
            staging.discard()                           # the replaced version, if any
            # the cache entries this version uses (runners/cache.py; the beam runner's, in a remote work area)
            getattr(pool, "write_manifest", write_manifest)(ctx.cache_dir, cfg.output.name, label.version,
                                                            label.target, self.run_id, summaries, stems)
        seconds["total"] = time.perf_counter() - t0
        return result

    def settle(self, ctx: RunContext, summaries: list[UnitSummary]) -> tuple[str, dict[str, int], Label]:
        """The dataset these units make: its fingerprint, split sizes and label, recorded on the run's row.

        Decided after pass 1, before anything is written (0 windows stops the run here), and again when pass 2
        left a unit out under ``run.on_unit_error: skip``.
        """
        if not any(s.windows_kept for s in summaries):
            raise NoWindowsError(no_windows_message(self.cfg, summaries))
        fingerprint = dataset_fingerprint(self.cfg, summaries, ctx.key_id)
        split_sizes = {s: sum(u.windows_kept for u in summaries if u.split == s) for s in SPLITS}
        self.store.update_run(self.run_id, fingerprint=fingerprint, windows_kept=sum(split_sizes.values()),
                              split_sizes=split_sizes)
        self.label = decide_label(self.cfg, self.store, fingerprint, self.overwrite)
        self.store.update_run(self.run_id, dataset_version=self.label.version)
        return fingerprint, split_sizes, self.label

    def _unchanged(self, summaries, fingerprint, split_sizes, seconds, t0, runner, skipped) -> RunResult:
        """The label already holds this fingerprint, intact: record the run as unchanged, write nothing."""
        self.store.finish_run(self.run_id, "unchanged", stage="done")
        seconds["total"] = time.perf_counter() - t0
        return RunResult(
            run_id=self.run_id, output_dir=str(self.out), version_dir=str(self.label.target), fingerprint=fingerprint,
            split_sizes=split_sizes, rows_in=sum(u.rows_in for u in summaries),
            rows_accepted=sum(u.rows_accepted for u in summaries),
            rows_quarantined=sum(u.rows_quarantined for u in summaries),
            raw_samples_in=sum(u.raw_samples_in for u in summaries), windows_kept=sum(split_sizes.values()),
            windows_dropped=_sum_dicts(u.stats.under("windows_dropped") for u in summaries),
            quarantine_by_reason=_sum_dicts(p.reason_counts for u in summaries for p in u.parts),
            metadata_url=self.cfg.metadata_url, report=str(self.out / "report.html"), seconds=seconds,
            runner=runner, units=summaries, unchanged=True, units_cached=cache_counts(summaries, []),
            units_skipped=skipped)


def submit_shards(pool, version_dir: Path, plans: list[SplitPlan], out: OutputConfig, fmt: str) -> list:
    """Start writing every shard of ``plans`` in format ``fmt``, one job per shard; returns their futures."""
    version_dir.mkdir(parents=True, exist_ok=True)
    return [pool.submit(write_shard, (version_dir, out.name, fmt, out.compression, p, shard))
            for p in plans for shard in p.shards]


def write_version(version_dir: Path, plans: list[SplitPlan], cfg: PipelineConfig) -> None:
    """TFDS's metadata of a run's primary-format shards, all written; runs in a worker under ``multiprocess``
    (TFDS is imported there, not in the driver)."""
    from sensorpipe.storage.features import build_features

    features = build_features(cfg.channels, cfg.window.size_min, cfg.captions.levels)
    write_metadata(version_dir, plans, features, cfg.output, description=_description(cfg))


class StrictModeError(ValueError):
    """A source's quarantine share passed ``validation.max_quarantine_rate`` in strict mode."""


def check_quarantine_rates(cfg: PipelineConfig, summaries: list[UnitSummary], work: str) -> None:
    """In strict mode, stop before writing anything when a source quarantines too many rows; ``work``: the
    work area the units' quarantine spills are in (a URL on beam with a remote output)."""
    if not cfg.validation.strict:
        return
    for src in cfg.sources:
        us = source_parts(summaries, src.name)
        rows_in = sum(u.rows_in for u in us)
        bad = sum(u.rows_quarantined for u in us)
        if rows_in and bad / rows_in > cfg.validation.max_quarantine_rate:
            reasons = _sum_dicts(u.reason_counts for u in us)
            top = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
            raise StrictModeError(
                f"strict mode: source {src.name!r} quarantined {bad:,} of {rows_in:,} rows ({bad / rows_in:.1%} > "
                f"validation.max_quarantine_rate {cfg.validation.max_quarantine_rate:.1%}); top reasons: {top}. "
                f"The quarantined rows are in {work}/units/*.{src.name}.quarantine.arrow "
                f"(sensorpipe.read_quarantine reads one, with key_file= if privacy.quarantine_key_file is set); "
                f"fix the source or raise the threshold")


def fit_normalization(cfg: PipelineConfig, summaries: list[UnitSummary]) -> NormParams:
    """Merge train-split statistics in unit order (so every runner gets the same numbers).

    Moments merge exactly (float64, fixed order) and the quantile sketches are
    integer counts, so the parameters do not depend on the runner or workers.
    """
    stats = FitStats.merged(cfg.channels, cfg.normalization, [s.fit_stats for s in summaries if s.split == "train"])
    return NormParams.fit(cfg.channels, stats, cfg.normalization)


def dataset_fingerprint(cfg: PipelineConfig, summaries: list[UnitSummary], key_id: str = "") -> str:
    """``key_id``: the pseudonymization key's digest (RunContext.key_id): another key, other pseudonyms."""
    inputs = sorted((f, h) for s in summaries for f, h in s.input_fingerprints.items())
    return stable_hash({"config": cfg.fingerprint(), "inputs": [h for _, h in inputs], "code": code_version(),
                        "channels": registry_fingerprint(), "labels": LABEL_SCHEMA_VERSION,
                        **({"key": key_id} if key_id else {})})


def _order_spills(summaries: list[UnitSummary], stems: list[str]) -> dict[str, list[RecordSpill]]:
    """Records of each split ordered by (participant pseudonym, study); windows by start."""
    out: dict[str, list[RecordSpill]] = {}
    pairs = sorted(zip(summaries, stems), key=lambda p: (p[0].participant, p[0].study))
    for s in SPLITS:
        spills = [RecordSpill(stem) for u, stem in pairs if u.split == s and u.windows_kept]
        if spills:
            out[s] = spills
    return out


def _description(cfg: PipelineConfig) -> str:
    studies: dict[str, list[str]] = {}
    for src in cfg.sources:
        studies.setdefault(src.study, []).append(src.name)
    listed = "; ".join(f"{study} ({', '.join(names)})" for study, names in studies.items())
    return (f"sensorpipe dataset of {len(cfg.channels)} minute channels ({', '.join(cfg.channels)}) in windows of "
            f"{cfg.window.size_min} min (stride {cfg.window.stride_min}, alignment {cfg.window.alignment}) from "
            f"studies (sources): {listed}. `dataset` is the study; one person of a study has one pseudonymized "
            f"`participant_id` and one split, and each window fuses all their sources; `sources` lists the sources "
            f"that contributed an observed minute to the window (comma-separated, config order). `input` is "
            f"normalized with train-split parameters (sensorpipe.json); `mask` True = missing (imputed).")


def _write_sidecars(version_dir: Path, cfg: PipelineConfig, norm: NormParams, fingerprint: str,
                    shards: dict[str, dict[str, Any]] | None = None) -> None:
    """normalization.json, then sensorpipe.json with the manifest of every other file (``shards``: the shard
    files already hashed, :func:`sensorpipe.storage.manifest.shard_digests`)."""
    side = {"channels": list(cfg.channels), "fingerprint": fingerprint, "code_version": code_version(),
            "normalization": norm.to_json(), "label_schema_version": LABEL_SCHEMA_VERSION,
            "window": dataclasses.asdict(cfg.window), "config": cfg.shareable_dict()}
    (version_dir / "normalization.json").write_text(json.dumps(norm.to_json(), indent=1))
    # last: the manifest (sizes, counts, hashes of every other file) goes into sensorpipe.json (storage/manifest.py)
    side = json.loads(json.dumps(side, default=str))
    side["manifest"] = build_manifest(version_dir, side["normalization"], side, shards)
    (version_dir / "sensorpipe.json").write_text(json.dumps(side, indent=1, sort_keys=True, default=str))


def write_quarantine(q_dir: Path, cfg: PipelineConfig, summaries: list[UnitSummary],
                     paths: SourcePaths, key: bytes | None = None) -> dict[str, int]:
    """One quarantine Parquet per source (always written, empty when nothing failed); returns rows by reason.

    Each unit's spill under ``.work/`` is appended to its source's writer in unit order: the file is the
    same whatever the runner, and memory holds one unit's rows (and the writer's small buffer), whatever
    the share of rows quarantined. The spills stay, so a resumed run reuses them. The spills (private, under
    ``.work/``) name source files by path; the shared file names them by their ``paths`` token. With ``key``
    (privacy.quarantine_key_file) the spills and the files are encrypted (privacy/sealed.py).
    """
    q_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for src in cfg.sources:
        mine = source_parts(summaries, src.name)
        with QuarantineWriter(q_dir / f"{src.name}.parquet", key) as writer:
            for p in mine:
                if p.quarantine:
                    writer.write(_tokenized(read_spill(p.quarantine, key), paths, p.quarantine_counts))
        for p in mine:
            for k, v in p.reason_counts.items():
                counts[k] = counts.get(k, 0) + v
    return counts


def _shared_error(cfg: PipelineConfig, e: BaseException) -> str:
    """A failed run's error as the DB keeps it: a source file it names is replaced by its token (privacy/paths.py)."""
    text = f"{type(e).__name__}: {e}"
    try:
        key = load_key(cfg)
    except Exception:   # noqa: BLE001 - the key may be what failed; a run without one has written no pseudonym
        return text
    return SourcePaths.of(cfg, key).text(text)


def _tokenized(stored: pa.Table, paths: SourcePaths, counts: list[list]) -> pa.Table:
    """Quarantined rows with each source file's path replaced by its token (privacy/paths.py); ``counts``: the
    unit's ``[file, reason, rows]`` (schema.validate.quarantine_counts), which say the files and their rows."""
    rows_by_file: dict[str, int] = {}
    for f, _, n in counts:
        rows_by_file[f] = rows_by_file.get(f, 0) + int(n)
    i = stored.schema.get_field_index("source_file")
    return stored.set_column(i, "source_file", paths.column(stored.column(i), rows_by_file))


def source_parts(summaries: list[UnitSummary], source: str) -> list[SourcePart]:
    """Every person's part from one source, in unit order."""
    return [p for s in summaries for p in s.parts if p.source == source]


def _clipped_by_study(summaries: list[UnitSummary], encoded) -> dict[str, dict[str, int]]:
    """Pass 2's clipped observed cells, summed per study and channel."""
    out: dict[str, dict[str, int]] = {}
    for s, e in zip(summaries, encoded):
        out[s.study] = _sum_dicts([out.get(s.study, {}), e.stats.under("clipped")])
    return out


def _sum_dicts(ds) -> dict:
    out: dict = {}
    for d in ds:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out

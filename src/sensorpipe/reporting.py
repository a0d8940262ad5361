"""Gather what the HTML report shows and write it: at the end of a run, or later for any recorded version.

The page itself is :mod:`sensorpipe.quality.report`; this module collects its
inputs, which live in two layers above it: the metadata database (a version's
record: statistics, histograms, quality metrics, quarantine and per-file row
counts) and the written windows, read through :mod:`sensorpipe.access` for
the figures that need them (missingness per participant and day, correlation,
labels, example windows). The windows read are bounded: the first
``SAMPLE_WINDOWS`` of each split in shard order (whole participants, by
pseudonym), so the report costs the same on a dataset of any size. A run reads
the same windows before its shards exist, from the record spills the shards
are cut from (:class:`SpilledWindows`), so that its report is drawn while the
shards are written.
"""

from __future__ import annotations

import json
import resource
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from sensorpipe.metadata import records as rec
from sensorpipe.metadata.queries import open_store, resolve_version, version_run
from sensorpipe.metadata.store import MetadataStore
from sensorpipe.quality.drift import DriftResult
from sensorpipe.processing.normalize import NormParams
from sensorpipe.quality.report import ReportExtras, record_sections, window_sections, write_report
from sensorpipe.quality.report_sample import SampleWindow, summarize
from sensorpipe.quality.report_sections import Resources
from sensorpipe.storage.writer import RecordSpill

#: windows read per split for the sampled figures
SAMPLE_WINDOWS = {"train": 240, "validation": 80, "test": 80}


def _sample_window(split: str, ex: dict, values: np.ndarray) -> SampleWindow:
    """One decoded record as the report samples it; ``values``: its input in real units, NaN where missing."""
    return SampleWindow(split, ex["dataset"], ex["participant_id"], ex["key"], int(ex["start_utc"]),
                        int(ex["tz_offset_min"]), values, np.asarray(ex["mask"], bool))


def sample_windows(version_dir: str | Path) -> tuple[list[SampleWindow], tuple[str, ...], str]:
    """(the first windows of each split, real units, NaN where missing; the channels; the version's fingerprint)."""
    from sensorpipe.access.dataset import open_dataset

    ds = open_dataset(version_dir)
    out = []
    for split, limit in SAMPLE_WINDOWS.items():
        if split not in ds.splits:
            continue
        part = ds.splits[split]
        for i in range(min(limit, len(part))):
            ex = part[i]
            out.append(_sample_window(split, ex, ds.denormalize(ex["input"], ex["mask"])))
    channels, fingerprint = ds.channels, ds.fingerprint
    del ds    # its readers close here (an ArrayRecord reader left open would crash later forks)
    return out, channels, fingerprint


@dataclass(frozen=True)
class SpilledWindows:
    """A run's windows before its shards exist: each split's record spills in shard order (what
    :func:`~sensorpipe.storage.writer.plan_dataset` cuts the shards from, byte for byte), with what decodes
    them. :meth:`sample` reads the windows :func:`sample_windows` reads from the written shards, without TFDS
    (its features.json is not written yet), so the report's window sections are drawn beside the shards."""

    splits: tuple[tuple[str, tuple[RecordSpill, ...]], ...]
    channels: tuple[str, ...]
    window_min: int
    caption_levels: tuple[str, ...]
    norm: NormParams

    @classmethod
    def of(cls, plans, cfg, norm: NormParams) -> "SpilledWindows":
        """From the run's split plans (:class:`~sensorpipe.storage.writer.SplitPlan`), config and parameters."""
        return cls(tuple((p.name, tuple(p.spills)) for p in plans), tuple(cfg.channels), cfg.window.size_min,
                   tuple(cfg.captions.levels), norm)

    def sample(self) -> list[SampleWindow]:
        from sensorpipe.access.dataset import denormalize
        from sensorpipe.access.decode import FastDecoder
        from sensorpipe.storage.layout import record_layout

        decode = FastDecoder(layout=record_layout(self.channels, self.window_min, self.caption_levels))
        spills = dict(self.splits)
        out = []
        for split, limit in SAMPLE_WINDOWS.items():
            left = limit
            for spill in spills.get(split, ()):
                if left <= 0:
                    break
                for record in spill.records(0, left):
                    ex = decode(record)
                    for k in ("dataset", "participant_id", "key"):   # text is UTF-8 bytes on disk, as the reader's
                        ex[k] = ex[k].decode("utf-8")
                    out.append(_sample_window(split, ex, denormalize(ex["input"], self.norm, ex["mask"])))
                    left -= 1
        return out


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory of this process and of its ended child processes, MiB (ru_maxrss: KiB on Linux,
    bytes on macOS)."""
    scale = 1 / 1024 / 1024 if sys.platform == "darwin" else 1 / 1024
    out = {"this process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale}
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    if children:
        out["largest ended child process"] = children
    return out


def _record_from_db(store: MetadataStore, version: dict) -> rec.RunRecord:
    """A version's :class:`RunRecord` as the database keeps it (its representative run; no lineage)."""
    fp = version["fingerprint"]
    run = version_run(store, version)

    def rows(kind, items):
        names = {f.name for f in fields(kind)}
        return [kind(**{k: v for k, v in r.items() if k in names}) for r in items]

    return rec.RunRecord(
        run_id=run["run_id"], started_at=run["started_at"], finished_at=run["finished_at"] or "",
        runner=run["runner"], workers=run["workers"], status=run["status"], dataset_name=version["dataset_name"],
        dataset_version=version["semantic_version"], fingerprint=fp, code_version=run["code_version"],
        config_json=run["config_json"], output_dir=run["output_dir"], split_sizes=run["split_sizes"],
        channel_stats=rows(rec.ChannelStatRecord, store.channel_stats(fp)),
        normalization=rows(rec.NormalizationRecord,
                           [{"channel": ch, **r} for ch, r in store.normalization(fp).items()]),
        quality=rows(rec.QualityRecord, store.quality(fp)), quarantine=rows(rec.QuarantineRecord, store.quarantine(fp)),
        quantiles=[rec.QuantileRecord(sp, ch, json.dumps([None if v != v else v for v in vals]))
                   for (sp, ch), vals in store.quantiles(fp).items()],
        alerts=rows(rec.AlertRecord, store.alerts(fp)),
        file_rows=rows(rec.FileRowsRecord, store.file_rows(fp)), units_cached=run.get("units_cached"),
        windows_kept=run.get("windows_kept"), peak_rss_mib=run.get("peak_rss_mib"))


def _previous(store: MetadataStore, name: str, fingerprint: str) -> dict | None:
    """The newest succeeded version of the same dataset name recorded before this one (list_versions is newest
    first; a version not yet recorded, as during its own run, comes before all of them)."""
    versions = [v for v in store.list_versions() if v["dataset_name"] == name]
    at = next((i for i, v in enumerate(versions) if v["fingerprint"] == fingerprint), -1)
    return next((v for v in versions[at + 1:] if v["fingerprint"] != fingerprint and v["last_status"] == "succeeded"),
                None)


def window_sample(version_dir: Path, fingerprint: str):
    """The window sample of ``version_dir`` when it holds this fingerprint, else (None, reason)."""
    if not (version_dir / "dataset_info.json").is_file():
        return None, f"{version_dir} is gone: figures from the windows are left out"
    windows, channels, fp = sample_windows(version_dir)
    if fp != fingerprint:
        return None, f"{version_dir} now holds another fingerprint ({fp[:12]}): figures from the windows are left out"
    return summarize(windows, channels), ""


def drift_against(store: MetadataStore, record: rec.RunRecord, against: dict | None = None
                  ) -> tuple[DriftResult | None, str]:
    """(drift of ``record`` from ``against``, by default the version before it; or None and why not)."""
    from sensorpipe.quality.drift import VersionSnapshot, drift

    other = against if against is not None else _previous(store, record.dataset_name, record.fingerprint)
    if other is None:
        return None, f"no other succeeded version of {record.dataset_name} is recorded to compare with"
    old = VersionSnapshot.of_store(store, other["fingerprint"])
    if not old.quantiles:
        return None, (f"version {other['semantic_version']} was recorded before runs stored quantiles: "
                      f"no distribution to compare with")
    return drift(old, VersionSnapshot.of_record(record)), ""


def build_extras(store: MetadataStore, record: rec.RunRecord, version_dir: Path, against: dict | None = None,
                 resources: Resources | None = None, pre: dict[str, str] | None = None,
                 sample: tuple | None = None) -> ReportExtras:
    """The sample, resources and drift of ``record``'s version; ``against`` defaults to the previous version;
    ``pre``: sections :func:`draw_record_sections` already drew (the drift among them), and
    :func:`draw_window_sections` (then the sample is not read); ``sample``: what :func:`window_sample` returned,
    where the caller already read it."""
    if sample is None:
        sample = (None, "") if "heatmaps" in (pre or {}) else window_sample(version_dir, record.fingerprint)
    sample, why = sample
    extras = ReportExtras(sample=sample, resources=resources or _stored_resources(store, record), banner=why,
                          pre=pre or {})
    if not pre:
        extras.drift, extras.why_no_drift = drift_against(store, record, against)
    return extras


def draw_window_sections(spilled: SpilledWindows) -> dict[str, str]:
    """A run's first report job, submitted before its shards are written: what the window sample gives, read
    from the run's record spills (where they are local; else :func:`run_report` reads the written shards)."""
    return window_sections(summarize(spilled.sample(), spilled.channels))


def draw_record_sections(record: rec.RunRecord, metadata_url: str) -> dict[str, str]:
    """A run's second report job, submitted with its shards: the sections the record alone gives (most of the
    drawing), so that only the timings are left once the shards are complete."""
    store = MetadataStore(metadata_url)
    try:
        d, why = drift_against(store, record)
    finally:
        store.close()
    return record_sections(record, d, why)


def _stored_resources(store: MetadataStore, record: rec.RunRecord) -> Resources:
    """Stage timings and peak RSS as the version's run recorded them (none before schema version 5)."""
    seconds = store.stage_timings(record.fingerprint)
    peak = {"the run (peak RSS of its processes)": record.peak_rss_mib} if record.peak_rss_mib else {}
    source = "as recorded by the run" if seconds or peak else "this run recorded no stage timings or peak memory"
    return Resources(seconds, {}, peak, source)


def run_report(path: Path, record: rec.RunRecord, result, version_dir: Path, metadata_url: str,
               seconds: dict[str, float], pre: dict[str, str], peak_mb: dict[str, float] | None = None) -> Path:
    """The report a run writes into its staging folder once its shards are complete (a job of the report
    process or the pool: runners/report_process.py): the timings, and the window sample's sections where
    ``pre`` lacks them (read from the written shards), with ``pre`` (:func:`draw_record_sections`,
    :func:`draw_window_sections`) for the rest.
    ``peak_mb``: the driver's :func:`peak_rss_mb`, measured by the driver when it submitted this job (the
    process drawing the report is not the one that ran the passes); without it, this process's."""
    res = Resources({k: v for k, v in seconds.items() if k != "metadata"},
                    dict(getattr(result, "stage_seconds", {}) or {}), peak_mb or peak_rss_mb(),
                    "this run, measured when the shards were complete (publish not included); peak RSS of the "
                    + ("run's driver process and of its ended children" if peak_mb else
                       "process that wrote the report and of its ended children"))
    store = MetadataStore(metadata_url)
    try:
        extras = build_extras(store, record, version_dir, resources=res, pre=pre)
    finally:
        store.close()
    return write_report(path, record, result, extras)


def regenerate(out_dir: str, version: str | None = None, against: str | None = None, output: str | None = None,
               db_url: str | None = None, name: str | None = None) -> Path:
    """``sensorpipe report``: rebuild the report of a recorded version (default: the newest), compared with
    ``against`` (default: the version before it), into ``output`` (default ``<out>/report.html``)."""
    store = open_store(out_dir, db_url)
    try:
        v = resolve_version(store, version, name)
        record = _record_from_db(store, v)
        other = resolve_version(store, against, v["dataset_name"]) if against is not None else None
        if other is not None and other["fingerprint"] == v["fingerprint"]:
            raise KeyError(f"--against {against} is the version being reported; name another version")
        version_dir = Path(record.output_dir) / v["dataset_name"] / v["semantic_version"]
        extras = build_extras(store, record, version_dir, other)
        extras.banner = " ".join(x for x in (f"regenerated from {store.url}", extras.banner) if x)
    finally:
        store.close()
    return write_report(Path(output) if output else Path(out_dir) / "report.html", record, None, extras)

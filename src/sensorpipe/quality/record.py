"""Quality metrics of a run, assembled into the :class:`RunRecord` the metadata store keeps.

Metrics: missing ratio per channel (kept windows and whole grid),
out-of-range rate per source (quarantined + clipped over rows in), windows
kept and dropped by reason, rows quarantined by reason, and the row
reconciliation (rows in = accepted + quarantined) per source, and per
channel how its missing cells were imputed (``imputed_cells:<method>``,
``imputed_cells:fallback_long_gap``, ``imputed_cells:fallback_no_observation``,
``imputed_cells:left_missing``). Grid cells changed by cleaning are counted
per study (scope ``study:<name>``, ``cleaned:<channel>:<reason>``; a person's sources share one grid)
and per channel (``channel:<ch>`` / ``cleaned:<reason>``). Per source: readings
outranked by another source of the person (``fusion_overridden:<channel>``)
and the windows it fed; per study: persons, windows, windows fed by several
sources and the observed share of each channel in its windows (fused coverage).
When normalization clips, the observed cells it clipped are counted per
channel (``channel:<ch>`` / ``clipped_normalized``, zeros included), per study
(``study:<name>`` / ``clipped_normalized:<ch>``) and in all (``dataset`` /
``clipped_normalized``); a channel normalized with the registry prior because
the train split never observed it has ``channel:<ch>`` / ``normalized_with_prior`` = 1. Label coverage and
class balance are ``dataset`` / ``label_windows:<label>:<class>`` and ``label_coverage:<label>``
(quality/label_balance.py); per split and channel, 101 quantiles of the observed values go to
``channel_quantiles`` (drift between versions, quality/drift.py).
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np

from sensorpipe._version import code_version
from sensorpipe.config import PipelineConfig
from sensorpipe.metadata.records import (ChannelStatRecord, DeviceRecord, FileRowsRecord, LineageRecord,
                                         NormalizationRecord, QualityRecord, QuantileRecord, QuarantineRecord,
                                         RunRecord, SchemaRecord, UnitErrorRecord, UnitRecord)
from sensorpipe.metadata.records import QUANTILE_LEVELS
from sensorpipe.privacy.paths import SourcePaths
from sensorpipe.privacy.pseudonym import device_token
from sensorpipe.processing.normalize import FitStats, NormParams, RunningStats
from sensorpipe.processing.sketch import HistogramSketch
from sensorpipe.quality.label_balance import label_metrics


def split_stats(cfg: PipelineConfig, result) -> list[ChannelStatRecord]:
    out = []
    W = cfg.window.size_min
    for split in ("train", "validation", "test"):
        units = [u for u in result.units if u.split == split]
        stats = RunningStats.zeros(len(cfg.channels))
        for u in units:
            stats = stats.merge(RunningStats.from_json(u.fit_stats["raw"]))
        cells = sum(u.windows_kept for u in units) * W
        std = stats.std
        for j, ch in enumerate(cfg.channels):
            n = int(stats.count[j])
            out.append(ChannelStatRecord(split, ch, n, float(stats.mean[j]) if n else float("nan"),
                                         float(std[j]) if n else float("nan"),
                                         float(stats.min[j]) if n else float("nan"),
                                         float(stats.max[j]) if n else float("nan"),
                                         1.0 - n / cells if cells else 1.0))
    return out


#: cleaning reasons that count as outliers in ``outlier_rate`` (values out of range, sentinels, spikes); flat
#: lines and non-wear are artefacts of the device, not of the values
OUTLIER_RULES = ("range", "sentinel", "spike")


def split_quantiles(cfg: PipelineConfig, result) -> list[QuantileRecord]:
    """Per split and over all splits (``all``): each channel's observed values at ``QUANTILE_LEVELS``, from the
    units' merged histogram sketches (within half a sketch bin of the exact quantile; the extremes exact).
    Stored so that drift between versions (quality/drift.py) needs the database only."""
    merged: dict[str, HistogramSketch] = {}
    for u in result.units:
        fit = u.fit_stats
        sketch = HistogramSketch.load(fit["sketch_file"]) if "sketch_file" in fit else FitStats.from_json(fit).sketch
        for key in (u.split, "all"):
            if key not in merged:   # a copy: the sums below add in place
                merged[key] = HistogramSketch(sketch.lo, sketch.hi, sketch.counts.copy(), sketch.min.copy(),
                                              sketch.max.copy())
                continue
            m = merged[key]        # one config, so one shape and range for every unit of the run
            m.counts += sketch.counts
            np.minimum(m.min, sketch.min, out=m.min)
            np.maximum(m.max, sketch.max, out=m.max)
    out = []
    for split in ("train", "validation", "test", "all"):
        if split not in merged:
            continue
        q = merged[split].quantile(QUANTILE_LEVELS)
        for j, ch in enumerate(cfg.channels):
            vals = [None if v != v else round(float(v), 6) for v in q[j]]
            out.append(QuantileRecord(split, ch, json.dumps(vals)))
    return out


def quality_metrics(cfg: PipelineConfig, result) -> list[QualityRecord]:
    q = [QualityRecord("dataset", "rows_in", result.rows_in),
         QualityRecord("dataset", "rows_accepted", result.rows_accepted),
         QualityRecord("dataset", "rows_quarantined", result.rows_quarantined),
         QualityRecord("dataset", "raw_samples_in", result.raw_samples_in),
         QualityRecord("dataset", "windows_kept", result.windows_kept)]
    q += [QualityRecord("dataset", f"windows_dropped:{k}", v) for k, v in sorted(result.windows_dropped.items())]
    q += [QualityRecord("dataset", f"rows_quarantined:{k}", v) for k, v in sorted(result.quarantine_by_reason.items())]
    q.append(QualityRecord("dataset", "minutes_not_windowed",
                           sum(u.stats.counts.get("minutes_not_windowed", 0) for u in result.units)))
    for src in cfg.sources:
        us = [p for u in result.units for p in u.parts if p.source == src.name]
        rows_in = sum(u.rows_in for u in us)
        oor = sum(u.reason_counts.get("out_of_range", 0) + sum(u.clipped.values()) for u in us)
        q.append(QualityRecord(src.name, "out_of_range_rate", oor / rows_in if rows_in else 0.0))
        q.append(QualityRecord(src.name, "rows_in", rows_in))
        q.append(QualityRecord(src.name, "rows_accepted", sum(u.rows_accepted for u in us)))
        q.append(QualityRecord(src.name, "rows_quarantined", sum(u.rows_quarantined for u in us)))
        q.append(QualityRecord(src.name, "raw_samples_in", sum(u.raw_samples_in for u in us)))
        q.append(QualityRecord(src.name, "non_monotonic_rows", sum(u.non_monotonic for u in us)))
        files = {f: c for u in us for f, c in u.rows_in_by_file.items()}
        q.append(QualityRecord(src.name, "files_not_reconciling", sum(1 for a, b, c in files.values() if a != b + c)))
        q.append(QualityRecord(src.name, "windows_kept", sum(u.windows for u in us)))   # windows it fed
        for k in sorted({k for u in us for k in u.raw_counts}):
            q.append(QualityRecord(src.name, f"raw:{k}", sum(u.raw_counts.get(k, 0) for u in us)))
        for ch in sorted({ch for u in us for ch in u.overridden}):
            q.append(QualityRecord(src.name, f"fusion_overridden:{ch}", sum(u.overridden.get(ch, 0) for u in us)))
    q += study_metrics(cfg, result)
    q += label_metrics(result.units)
    grid = sum(u.stats.counts.get("grid_minutes", 0) for u in result.units)
    cleaned = [u.stats.under("cleaned") for u in result.units]   # "<channel>:<reason>" -> cells, per unit
    for ch in cfg.channels:
        seen = sum(u.stats.counts.get(f"observed_minutes:{ch}", 0) for u in result.units)
        q.append(QualityRecord(f"channel:{ch}", "grid_missing_ratio", 1.0 - seen / grid if grid else 1.0))
        for reason in sorted({k.split(":", 1)[1] for c in cleaned for k in c if k.split(":", 1)[0] == ch}):
            q.append(QualityRecord(f"channel:{ch}", f"cleaned:{reason}",
                                   sum(c.get(f"{ch}:{reason}", 0) for c in cleaned)))
        outliers = sum(n for c in cleaned for k, n in c.items()
                       if k.split(":", 1)[0] == ch and k.split(":", 1)[1].startswith(OUTLIER_RULES))
        q.append(QualityRecord(f"channel:{ch}", "outlier_rate", outliers / seen if seen else 0.0))
        imputed = [u.stats.under(f"imputed:{ch}") for u in result.units]
        for how in sorted({k for i in imputed for k in i}):
            q.append(QualityRecord(f"channel:{ch}", f"imputed_cells:{how}", sum(i.get(how, 0) for i in imputed)))
    return q


def study_metrics(cfg: PipelineConfig, result) -> list[QualityRecord]:
    """Per study: persons, windows, grid cells changed by cleaning (the fused grid is cleaned once, so
    cleaning is counted per study) and the fused coverage: per channel, the share of the kept windows'
    minutes observed (``window_observed:<channel>``), and windows with 2+ sources."""
    q = []
    W = cfg.window.size_min
    for study in dict.fromkeys(s.study for s in cfg.sources):
        us = [u for u in result.units if u.study == study]
        kept = sum(u.windows_kept for u in us)
        scope = f"study:{study}"
        q += [QualityRecord(scope, "persons", len(us)), QualityRecord(scope, "windows_kept", kept),
              QualityRecord(scope, "windows_multi_source",
                            sum(u.stats.counts.get("windows_multi_source", 0) for u in us))]
        cleaned = [u.stats.under("cleaned") for u in us]
        for k in sorted({k for c in cleaned for k in c}):  # k = "<channel>:<reason>"
            q.append(QualityRecord(scope, f"cleaned:{k}", sum(c.get(k, 0) for c in cleaned)))
        if kept:
            raw = RunningStats.zeros(len(cfg.channels))
            for u in us:
                raw = raw.merge(RunningStats.from_json(u.fit_stats["raw"]))
            for j, ch in enumerate(cfg.channels):
                q.append(QualityRecord(scope, f"window_observed:{ch}", int(raw.count[j]) / (kept * W)))
    return q


def normalization_metrics(norm: NormParams, result) -> list[QualityRecord]:
    """Clipped observed cells (only where clipping is on) and channels fitted from the registry prior."""
    q = []
    clipping = [ch for j, ch in enumerate(norm.channels)
                if norm.clip_low[j] is not None or norm.clip_high[j] is not None]
    by_study = getattr(result, "clipped_cells", {}) or {}
    if clipping:
        q.append(QualityRecord("dataset", "clipped_normalized",
                               sum(n for counts in by_study.values() for n in counts.values())))
        for study in sorted(by_study):
            q += [QualityRecord(f"study:{study}", f"clipped_normalized:{ch}", n)
                  for ch, n in sorted(by_study[study].items())]
        for ch in clipping:
            q.append(QualityRecord(f"channel:{ch}", "clipped_normalized",
                                   sum(counts.get(ch, 0) for counts in by_study.values())))
    for j, ch in enumerate(norm.channels):
        if norm.source and norm.source[j] == "prior":
            q.append(QualityRecord(f"channel:{ch}", "normalized_with_prior", 1))
    return q


def normalization_records(norm: NormParams) -> list[NormalizationRecord]:
    """One row per channel: method, fitted center/scale/clip range, fallback and train statistics;
    ``fitted_on_split`` is where center/scale came from (``NormParams.source``: train, prior or fixed)."""
    nan = float("nan")
    sigma = nan if norm.clip_sigma is None else norm.clip_sigma
    out = []
    for j, ch in enumerate(norm.channels):
        lo, hi = norm.clip_low[j], norm.clip_high[j]
        out.append(NormalizationRecord(
            ch, norm.methods[j], norm.mean[j], norm.std[j], sigma, norm.source[j] if norm.source else "train",
            norm.count[j], norm.center[j],
            norm.scale[j], nan if lo is None else lo, nan if hi is None else hi, norm.fallback[j], norm.median[j],
            norm.iqr[j], norm.min[j], norm.max[j], norm.quantile_error[j]))
    return out


def file_rows(result, paths: SourcePaths) -> list[FileRowsRecord]:
    """Per source and file (as its token), rows in, accepted and quarantined, summed over the persons a
    multi-participant file holds."""
    acc: dict[tuple[str, str], list[int]] = {}
    for p in (p for u in result.units for p in u.parts):
        for f, counts in p.rows_in_by_file.items():
            row = acc.setdefault((p.source, paths.token(str(f))), [0, 0, 0])
            for i, n in enumerate(counts):
                row[i] += int(n)
    return [FileRowsRecord(s, f, *c) for (s, f), c in sorted(acc.items())]


def device_records(result, paths: SourcePaths) -> list[DeviceRecord]:
    """Each unit's recording devices per source file (pass 1 read them from the native tables' schema
    metadata, core/devices.py): the file as its token, the serial as its keyed digest."""
    return [DeviceRecord(u.study, u.participant, p.source, paths.token(str(d["file"])), d["model"],
                         device_token(paths.key, d["serial"]), float(d["epoch_s"]))
            for u in result.units for p in u.parts for d in p.devices]


def build_run_record(cfg: PipelineConfig, result, adapters, norm: NormParams, started: dt.datetime,
                     stages: dict[str, str], paths: SourcePaths) -> RunRecord:
    """The run's record; every source file is named by its ``paths`` token (privacy/paths.py: a path would
    name the person behind a pseudonym), in lineage, quarantine counts, input fingerprints and unit errors."""
    lineage = []
    stages_json = json.dumps(stages, sort_keys=True)    # the same for every window of the run
    for u in result.units:
        for w in u.lineage:
            files = {paths.token(f): rows for f, rows in w["files"].items()}
            lineage.append(LineageRecord(w["key"], u.split, u.study, u.participant, json.dumps(sorted(files)),
                                         json.dumps(files, sort_keys=True), stages_json))
    quarantine = []
    for p in (p for u in result.units for p in u.parts):
        if p.quarantine:
            for f, r, n in p.quarantine_counts:   # counted in pass 1 (schema.validate.quarantine_counts)
                quarantine.append(QuarantineRecord(p.source, paths.token(str(f)) if f else "", str(r),
                                                   int(n)))
    schemas = []
    for a in adapters:
        s = a.schema()
        schemas.append(SchemaRecord(a.source.name, a.name, s.version, s.fingerprint(), s.to_json()))
    return RunRecord(
        run_id=result.run_id, started_at=started.isoformat(),
        finished_at=dt.datetime.now(dt.timezone.utc).isoformat(), runner=cfg.runner.name,
        workers=cfg.runner.workers, status="succeeded", dataset_name=cfg.output.name,
        dataset_version=cfg.output.version, fingerprint=result.fingerprint, code_version=code_version(),
        config_json=json.dumps(cfg.shareable_dict(), sort_keys=True, default=str), output_dir=result.output_dir,
        input_fingerprints={paths.token(f): h for u in result.units for f, h in u.input_fingerprints.items()},
        split_sizes=result.split_sizes, schemas=schemas, channel_stats=split_stats(cfg, result),
        normalization=normalization_records(norm),
        quality=quality_metrics(cfg, result) + normalization_metrics(norm, result), quarantine=quarantine,
        units=[UnitRecord(u.study, u.participant, u.split, u.rows_in, u.rows_accepted, u.rows_quarantined,
                          u.raw_samples_in, u.windows_kept, sum(u.stats.under("windows_dropped").values())) for u in result.units],
        lineage=lineage, quantiles=split_quantiles(cfg, result), file_rows=file_rows(result, paths),
        devices=device_records(result, paths),
        units_cached=getattr(result, "units_cached", {}).get("pass1"),
        unit_errors=[UnitErrorRecord(f.study, f.participant, f.source,
                                     paths.token(f.source_file) if f.source_file else "", f.stage, paths.text(f.error))
                     for f in getattr(result, "units_skipped", ())])


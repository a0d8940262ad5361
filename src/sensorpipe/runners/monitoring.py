"""A run's monitoring, around the driver's work: drift against the version it follows, the alert rules,
stage timings and peak memory in the metadata database, and ``metrics.prom`` at its end.

:func:`check_run` runs on the finished record before the publish (a breached rule under ``--strict`` stops
it there, so the previous version stays); :func:`close_run` after the run, whatever its outcome, adds the
timings measured after the record was written and exports the metrics (quality/metrics.py). Both are cheap:
a few small queries and one file.
"""

from __future__ import annotations

import dataclasses
import logging
import resource
import sys
import time
from typing import Any

from sensorpipe.config import PipelineConfig
from sensorpipe.metadata.records import QualityRecord, RunRecord, StageTimingRecord
from sensorpipe.quality.alerts import AlertError, evaluate
from sensorpipe.quality.drift import VersionSnapshot, drift, previous_version

log = logging.getLogger(__name__)


def _rss_mib(who: int) -> float:
    rss = resource.getrusage(who).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def peak_rss_mib(units: list[Any] = ()) -> float:
    """The highest resident memory of this process, its finished worker processes and the units' workers."""
    peaks = [_rss_mib(resource.RUSAGE_SELF), _rss_mib(resource.RUSAGE_CHILDREN)]
    peaks += [u.stats.peaks.get("rss_mib", 0.0) for u in units]
    return max(peaks)


def check_run(cfg: PipelineConfig, store, record: RunRecord, result, seconds: dict[str, float],
              t0: float) -> RunRecord:
    """The record with its drift metrics (``channel:<ch>`` / ``drift_psi``, ``drift_wasserstein``), stage
    timings so far (``plan``, ``pass1``, ``pass2``; ``unit:<stage>`` summed over units) and breached alert
    rules, which are logged and set on ``result.alerts``. Under ``validation.strict`` a breach is recorded on
    the run and raised as :class:`AlertError` (nothing is published)."""
    import prometheus_client  # noqa: F401 - for close_run, loaded here while the workers write the shards

    prev = previous_version(store, cfg.output.name, record.fingerprint, record.output_dir)
    moved = drift(prev, VersionSnapshot.of_record(record)) if prev is not None else None
    quality = list(record.quality)
    for c in moved.channels if moved is not None else ():
        if c.psi == c.psi:
            quality += [QualityRecord(f"channel:{c.channel}", "drift_psi", c.psi),
                        QualityRecord(f"channel:{c.channel}", "drift_wasserstein", c.wasserstein)]
    timings = [StageTimingRecord(k, v) for k, v in seconds.items()]
    timings += [StageTimingRecord(f"unit:{k}", v) for k, v in sorted(result.stage_seconds.items())]
    record = dataclasses.replace(record, quality=quality, stage_timings=timings)
    alerts = evaluate(cfg.quality.alerts, record, [s.name for s in cfg.sources], moved,
                      time.perf_counter() - t0)
    result.alerts = [a.message for a in alerts]
    for a in alerts:
        log.warning("%s", a.message)
    if alerts and cfg.validation.strict:
        store.record_alerts(record.run_id, alerts)
        raise AlertError(f"strict mode: {len(alerts)} quality.alerts rule{'s' if len(alerts) > 1 else ''} "
                         f"breached, so nothing was published (the previous version stays): "
                         + "; ".join(a.message for a in alerts)
                         + ". Fix the data or raise the thresholds in quality.alerts")
    return dataclasses.replace(record, alerts=alerts)


def close_run(cfg: PipelineConfig, store, run_id: str, result=None) -> None:
    """After the run: timings measured after its record (write, report, metadata, total; for an unchanged
    run plan, pass1 and total), its peak memory, then ``metrics.prom`` and the optional push. A failure here
    is logged, never raised over the run's own outcome."""
    from sensorpipe.quality.metrics import export_run_metrics

    try:
        if result is not None:
            recorded = {"plan", "pass1", "pass2"} if not result.unchanged else set()
            later = {k: v for k, v in result.seconds.items() if k not in recorded}
            store.add_stage_timings(run_id, later, peak_rss_mib(result.units))
        export_run_metrics(store, run_id, cfg.output_dir, cfg.quality.pushgateway_url, cfg.quality.pushgateway_job)
    except Exception:   # noqa: BLE001 - monitoring must not turn a finished run into a failed one
        log.exception("could not export the metrics of run %s", run_id)

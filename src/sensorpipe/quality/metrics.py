"""A run's metrics in the Prometheus text format: ``<output>/metrics.prom`` and, optionally, a Pushgateway.

Built from the metadata database after the run has ended (succeeded, unchanged, failed or stopped by an
alert), so the file says exactly what the database says and a failed run exports its status too. The file is
for node_exporter's textfile collector (written to a temporary name and renamed, so a scrape never reads half
a file); ``quality.pushgateway_url`` also pushes the same metrics (job ``quality.pushgateway_job``, grouped by
dataset), for batch jobs on machines no Prometheus scrapes. Every metric carries the ``dataset`` label.
``deploy/monitoring/`` has alert rules and a Grafana dashboard over these names (:data:`METRICS`).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from sensorpipe.metadata import tables as t
from sensorpipe.metadata.store import MetadataStore

#: every metric this module exports: name -> (labels besides ``dataset``, help)
METRICS: dict[str, tuple[tuple[str, ...], str]] = {
    "sensorpipe_run_info": (("run_id", "version", "fingerprint", "runner"), "The run these metrics describe (1)."),
    "sensorpipe_run_status": (("status",), "1 for the run's final status, 0 for the others."),
    "sensorpipe_run_success": ((), "1 when the run succeeded or found its version unchanged, else 0."),
    "sensorpipe_run_alert": ((), "1 when the run breached a quality.alerts rule, else 0."),
    "sensorpipe_run_start_timestamp_seconds": ((), "When the run started (Unix time)."),
    "sensorpipe_run_end_timestamp_seconds": ((), "When the run ended (Unix time)."),
    "sensorpipe_last_success_timestamp_seconds": ((), "When a run of this output folder last succeeded."),
    "sensorpipe_stage_duration_seconds": (("stage",), "Wall seconds of each stage of the run."),
    "sensorpipe_peak_rss_bytes": ((), "Highest resident memory of the driver and its workers."),
    "sensorpipe_source_rows": (("source", "outcome"), "Rows read per source: in, accepted, quarantined."),
    "sensorpipe_rows_quarantined": (("source", "reason"), "Rows quarantined per source and reason."),
    "sensorpipe_windows": (("split",), "Windows kept per split."),
    "sensorpipe_windows_dropped": (("reason",), "Windows dropped per reason."),
    "sensorpipe_channel_missing_ratio": (("channel", "split"), "Missing share of the kept windows' minutes."),
    "sensorpipe_channel_outlier_rate": (("channel",), "Cells the range, sentinel and spike rules changed, per "
                                                      "observed grid minute."),
    "sensorpipe_drift_psi": (("channel",), "PSI of the channel against the version this one follows."),
    "sensorpipe_drift_wasserstein": (("channel",), "Wasserstein-1 distance (real units) against that version."),
    "sensorpipe_label_coverage": (("label",), "Share of windows with the label."),
    "sensorpipe_alert": (("rule", "scope"), "Value of each breached quality.alerts rule."),
    "sensorpipe_alert_threshold": (("rule", "scope"), "Threshold of each breached quality.alerts rule."),
}

SUCCESS = ("succeeded", "unchanged")


def _unix(iso: str | None) -> float | None:
    return dt.datetime.fromisoformat(iso).timestamp() if iso else None


def _rows(conn, table, run_id: str, *cols: str) -> list[tuple]:
    c = table.c
    return conn.execute(select(*(c[n] for n in cols)).where(c.run_id == run_id).order_by(c.id)).all()


def _last_success(conn, output_dir: str) -> float | None:
    rc = t.runs.c
    at = conn.execute(select(func.max(rc.finished_at)).where(rc.output_dir == output_dir,
                                                              rc.status.in_(SUCCESS))).scalar()
    return _unix(at)


def _run(store: MetadataStore, run_id: str) -> dict[str, Any]:
    run = store.get_run(run_id)
    if run is None:
        raise KeyError(f"run {run_id!r} is not recorded in {store.url}")
    return run


def run_samples(store: MetadataStore, run_id: str, run: dict[str, Any] | None = None
                ) -> dict[str, list[tuple[dict[str, str], float]]]:
    """metric name -> [(labels without ``dataset``, value)] for the run (``store.get_run``'s row), from the
    database."""
    run = run or _run(store, run_id)
    out: dict[str, list[tuple[dict[str, str], float]]] = {name: [] for name in METRICS}

    def put(name: str, value: Any, **labels: Any) -> None:
        if value is not None:
            out[name].append(({k: str(v) for k, v in labels.items()}, float(value)))

    status = run["status"]
    put("sensorpipe_run_info", 1, run_id=run_id, version=run.get("dataset_version") or "",
        fingerprint=run.get("fingerprint") or "", runner=run["runner"])
    for s in t.RUN_STATUSES:
        put("sensorpipe_run_status", int(s == status), status=s)
    put("sensorpipe_run_success", int(status in SUCCESS))
    put("sensorpipe_run_alert", int(bool(run.get("alerts"))))
    put("sensorpipe_run_start_timestamp_seconds", _unix(run["started_at"]))
    put("sensorpipe_run_end_timestamp_seconds", _unix(run["finished_at"]))
    with store.engine.connect() as conn:
        put("sensorpipe_last_success_timestamp_seconds", _last_success(conn, run["output_dir"]))
        for stage, seconds in _rows(conn, t.stage_timings, run_id, "stage", "seconds"):
            put("sensorpipe_stage_duration_seconds", seconds, stage=stage)
        quarantine = _rows(conn, t.quarantine_counts, run_id, "source", "reason", "count")
        quality = _rows(conn, t.quality_metrics, run_id, "scope", "name", "value")
        stats = _rows(conn, t.channel_stats, run_id, "channel", "split", "missing_ratio")
        alerts = _rows(conn, t.run_alerts, run_id, "rule", "scope", "value", "threshold")
    if run.get("peak_rss_mib") is not None:
        put("sensorpipe_peak_rss_bytes", run["peak_rss_mib"] * (1 << 20))
    for split, n in run["split_sizes"].items():
        put("sensorpipe_windows", n, split=split)
    quarantined: dict[tuple[str, str], int] = {}
    for source, reason, n in quarantine:
        quarantined[(source, reason)] = quarantined.get((source, reason), 0) + n
    for (source, reason), n in sorted(quarantined.items()):
        put("sensorpipe_rows_quarantined", n, source=source, reason=reason)
    sources = {s["source"] for s in run["schemas"]}
    for scope, name, v in quality:
        v = math.nan if v is None else v          # SQLite keeps NaN as NULL
        if scope in sources and name in ("rows_in", "rows_accepted", "rows_quarantined"):
            put("sensorpipe_source_rows", v, source=scope, outcome=name.split("_", 1)[1])
        elif scope == "dataset" and name.startswith("windows_dropped:"):
            put("sensorpipe_windows_dropped", v, reason=name.split(":", 1)[1])
        elif scope == "dataset" and name.startswith("label_coverage:"):
            put("sensorpipe_label_coverage", v, label=name.split(":", 1)[1])
        elif scope.startswith("channel:") and name in ("outlier_rate", "drift_psi", "drift_wasserstein"):
            metric = "sensorpipe_channel_outlier_rate" if name == "outlier_rate" else f"sensorpipe_{name}"
            put(metric, v, channel=scope.split(":", 1)[1])
    for channel, split, missing in stats:
        put("sensorpipe_channel_missing_ratio", math.nan if missing is None else missing, channel=channel,
            split=split)
    for rule, scope, value, threshold in alerts:
        put("sensorpipe_alert", math.nan if value is None else value, rule=rule, scope=scope)
        put("sensorpipe_alert_threshold", threshold, rule=rule, scope=scope)
    return out


def registry_of(store: MetadataStore, run_id: str, run: dict[str, Any] | None = None):
    """A ``prometheus_client`` registry holding the run's metrics as gauges."""
    from prometheus_client import CollectorRegistry, Gauge

    run = run or _run(store, run_id)
    dataset = run.get("dataset_name") or ""
    registry = CollectorRegistry()
    for name, samples in run_samples(store, run_id, run).items():
        labels, text = METRICS[name]
        gauge = Gauge(name, text, ("dataset",) + labels, registry=registry)
        for lab, value in samples:
            gauge.labels(dataset=dataset, **lab).set(value)
    return registry


def export_run_metrics(store: MetadataStore, run_id: str, out_dir: str | Path, pushgateway_url: str = "",
                       job: str = "sensorpipe") -> Path:
    """Write ``<out_dir>/metrics.prom`` (atomically) and push to ``pushgateway_url`` when set; returns the path."""
    from prometheus_client import push_to_gateway, write_to_textfile

    run = _run(store, run_id)
    registry = registry_of(store, run_id, run)
    path = Path(out_dir) / "metrics.prom"
    write_to_textfile(str(path), registry)
    if pushgateway_url:
        push_to_gateway(pushgateway_url, job=job, registry=registry,
                        grouping_key={"dataset": run.get("dataset_name") or ""}, timeout=10)
    return path

"""Alert rules (``quality.alerts`` in the config) checked against a finished run before its publish.

Each rule compares one value of the run's record with its threshold; a breached rule becomes an
:class:`~sensorpipe.metadata.records.AlertRecord` (rule, scope, value, threshold, message) that the run
records (``runs.alerts``, table ``run_alerts``: ``sensorpipe versions`` flags the version), prints, exports as
``sensorpipe_alert`` and, under ``--strict``, turns into :class:`AlertError`, which stops the publish.

Rules (all off until a threshold is set):

* ``quarantine_share``, per source: rows quarantined / rows in > ``max_quarantine_share``;
* ``missing_ratio``, per channel: missing share of the kept windows' minutes, all splits, > ``max_missing_ratio``;
* ``drift_psi``, per channel: PSI against the version this run follows (quality/drift.py) > ``max_drift_psi``;
* ``windows_dropped``: windows dropped / (kept + dropped) > ``max_windows_dropped_share``;
* ``label_coverage``, per label: share of windows with the label < ``min_label_coverage``;
* ``run_duration``: seconds from the run's start to this check > ``max_run_duration_s``.
"""

from __future__ import annotations

from dataclasses import asdict

from sensorpipe.config import AlertsConfig
from sensorpipe.metadata.records import AlertRecord, RunRecord
from sensorpipe.quality.drift import DriftResult, pooled_stats


class AlertError(ValueError):
    """A ``quality.alerts`` rule was breached under ``--strict``: the run stops before its publish."""


def _breach(rule: str, scope: str, value: float, threshold: float, key: str, below: bool = False,
            what: str = "") -> AlertRecord:
    op = "<" if below else ">"
    text = (f"alert {rule} {scope}: {what + ' ' if what else ''}{value:.4g} {op} {threshold:.4g} "
            f"(quality.alerts.{key})")
    return AlertRecord(rule, scope, float(value), float(threshold), text)


def _per_key(thresholds: dict[str, float], key: str) -> float | None:
    return thresholds.get(key, thresholds.get("*"))


def evaluate(rules: AlertsConfig, record: RunRecord, sources: list[str], drift: DriftResult | None,
             duration_s: float) -> list[AlertRecord]:
    """The rules ``record`` breaches, in the order listed in the module docstring."""
    q = {(m.scope, m.name): m.value for m in record.quality}
    out = []
    if rules.max_quarantine_share is not None:
        for src in sources:
            rows_in = q.get((src, "rows_in"), 0)
            share = q.get((src, "rows_quarantined"), 0) / rows_in if rows_in else 0.0
            if share > rules.max_quarantine_share:
                out.append(_breach("quarantine_share", f"source:{src}", share, rules.max_quarantine_share,
                                   "max_quarantine_share", what="quarantined share of rows"))
    if rules.max_missing_ratio:
        for r in pooled_stats([asdict(s) for s in record.channel_stats], "all", record.split_sizes):
            limit = _per_key(rules.max_missing_ratio, r["channel"])
            if limit is not None and r["missing_ratio"] == r["missing_ratio"] and r["missing_ratio"] > limit:
                out.append(_breach("missing_ratio", f"channel:{r['channel']}", r["missing_ratio"], limit,
                                   f"max_missing_ratio.{r['channel']}", what="missing share of kept windows"))
    if rules.max_drift_psi is not None and drift is not None:
        for c in drift.drifted(rules.max_drift_psi):
            out.append(_breach("drift_psi", f"channel:{c.channel}", c.psi, rules.max_drift_psi, "max_drift_psi",
                               what=f"PSI against {drift.dataset} {drift.old_version} (mean {c.mean_old:.4g} -> "
                                    f"{c.mean_new:.4g}, Wasserstein {c.wasserstein:.4g})"))
    if rules.max_windows_dropped_share is not None:
        dropped = sum(v for (scope, name), v in q.items() if scope == "dataset" and name.startswith("windows_dropped:"))
        total = dropped + q.get(("dataset", "windows_kept"), 0)
        share = dropped / total if total else 0.0
        if share > rules.max_windows_dropped_share:
            out.append(_breach("windows_dropped", "dataset", share, rules.max_windows_dropped_share,
                               "max_windows_dropped_share", what="dropped share of windows"))
    if rules.min_label_coverage:
        for (scope, name), v in q.items():
            if scope == "dataset" and name.startswith("label_coverage:"):
                label = name.split(":", 1)[1]
                limit = _per_key(rules.min_label_coverage, label)
                if limit is not None and v < limit:
                    out.append(_breach("label_coverage", f"label:{label}", v, limit, f"min_label_coverage.{label}",
                                       below=True, what="share of windows labelled"))
    if rules.max_run_duration_s is not None and duration_s > rules.max_run_duration_s:
        out.append(_breach("run_duration", "run", duration_s, rules.max_run_duration_s, "max_run_duration_s",
                           what="seconds"))
    return out

"""deploy/monitoring/: the Prometheus alert rules and the Grafana dashboard use only the metric names sensorpipe
exports (quality/metrics.py METRICS), with their labels; promtool checks and unit-tests the rules and lints a
real metrics.prom where it is installed (Debian's ``prometheus`` package), and a schema check runs everywhere."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sensorpipe.quality.metrics import METRICS

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "monitoring"
RULES, RULES_TEST, DASHBOARD = (DEPLOY / "sensorpipe-alerts.yml", DEPLOY / "sensorpipe-alerts.test.yml",
                                DEPLOY / "grafana-dashboard.json")
NAME = re.compile(r"\bsensorpipe_[a-z0-9_]+")
SELECTOR = re.compile(r"(sensorpipe_[a-z0-9_]+)\{([^}]*)\}")
BY = re.compile(r"\bby \(([^)]*)\)")
PROMTOOL = shutil.which("promtool")


def _check_expr(expr: str, where: str) -> set[str]:
    """The sensorpipe metrics ``expr`` uses; each must be exported, and each label it selects or groups by
    must be one of that metric's labels (``dataset`` on all)."""
    names = set(NAME.findall(expr))
    assert names, f"{where}: {expr!r} uses no sensorpipe metric"
    unknown = names - set(METRICS)
    assert not unknown, f"{where}: {expr!r} uses metrics sensorpipe does not export: {sorted(unknown)}"
    for name, selector in SELECTOR.findall(expr):
        allowed = {"dataset", *METRICS[name][0]}
        used = {m.split("=")[0].split("!")[0].strip() for m in re.split(r",\s*", selector) if m.strip()}
        assert used <= allowed, f"{where}: {name} has no label {sorted(used - allowed)}; it has {sorted(allowed)}"
    for group in BY.findall(expr):
        labels = {x.strip() for x in group.split(",")}
        for name in names:
            assert labels <= {"dataset", *METRICS[name][0]}, f"{where}: {name} cannot be grouped by {labels}"
    return names


def test_alert_rules_follow_the_rule_file_schema_and_use_exported_metrics():
    doc = yaml.safe_load(RULES.read_text())
    assert set(doc) == {"groups"}
    used = set()
    alerts = []
    for group in doc["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            assert rule["labels"]["severity"] in ("critical", "warning", "info")
            assert rule["annotations"]["summary"]
            used |= _check_expr(rule["expr"], f"rule {rule['alert']}")
            alerts.append(rule["alert"])
    assert len(alerts) == len(set(alerts)) >= 8
    assert {"sensorpipe_run_status", "sensorpipe_drift_psi", "sensorpipe_run_alert",
            "sensorpipe_last_success_timestamp_seconds", "sensorpipe_source_rows"} <= used


def test_grafana_dashboard_panels_query_exported_metrics():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    _check_expr(variables["dataset"]["definition"], "variable dataset")
    used, ids = set(), []
    for p in dash["panels"]:
        ids.append(p["id"])
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        assert p["targets"], p["title"]
        for target in p["targets"]:
            assert "$dataset" in target["expr"], f"panel {p['title']!r} ignores the dataset variable"
            used |= _check_expr(target["expr"], f"panel {p['title']!r}")
    assert len(ids) == len(set(ids))
    # what the issue asks to monitor is on the dashboard
    assert {"sensorpipe_stage_duration_seconds", "sensorpipe_source_rows", "sensorpipe_rows_quarantined",
            "sensorpipe_windows", "sensorpipe_windows_dropped", "sensorpipe_channel_missing_ratio",
            "sensorpipe_channel_outlier_rate", "sensorpipe_drift_psi", "sensorpipe_peak_rss_bytes",
            "sensorpipe_run_success", "sensorpipe_last_success_timestamp_seconds"} <= used


def test_the_checks_catch_an_unknown_metric_or_label():
    with pytest.raises(AssertionError, match="does not export"):
        _check_expr("sensorpipe_drift_score > 1", "x")
    with pytest.raises(AssertionError, match="has no label"):
        _check_expr('sensorpipe_drift_psi{source="a"} > 1', "x")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)")
def test_promtool_checks_and_unit_tests_the_rules():
    for args in (["check", "rules", RULES.name], ["test", "rules", RULES_TEST.name]):
        done = subprocess.run([PROMTOOL, *args], cwd=DEPLOY, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)")
def test_promtool_lints_a_runs_metrics_file(tmp_path):
    from tests.quality.drift_cohort import config, write_cohort
    from sensorpipe.runners.driver import run_pipeline

    write_cohort(tmp_path / "data")
    run_pipeline(config(tmp_path / "data", tmp_path / "out", "1.0.0"), runner="local")
    text = (tmp_path / "out" / "metrics.prom").read_text()
    done = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(NAME.findall(text)) == set(METRICS)     # every metric declared (HELP, TYPE), even without samples

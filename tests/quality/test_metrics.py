"""Monitoring of runs: metrics.prom against the database, the Pushgateway, alert rules (a planted drift),
--strict keeping the previous version, progress lines off a terminal."""

from __future__ import annotations

import http.server
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sensorpipe.metadata.queries import open_store
from sensorpipe.runners.driver import run_pipeline
from tests.quality.drift_cohort import config, write_cohort

ALERTS = {"max_drift_psi": 0.25, "max_missing_ratio": {"*": 0.9}, "min_label_coverage": {"sex": 0.5}}


class _Gateway(http.server.BaseHTTPRequestHandler):
    """A Pushgateway stand-in: keeps each request's method, path and body."""

    received: list[tuple[str, str, bytes]] = []

    def do_PUT(self) -> None:   # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Gateway.received.append(("PUT", self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """1.0.0; 2.0.0 with heart rate 15 bpm higher (alerts on, pushed); 3.0.0 shifted again under --strict."""
    root = tmp_path_factory.mktemp("monitor")
    data, out = root / "data", root / "out"
    server = http.server.HTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    quality = {"alerts": ALERTS, "pushgateway_url": f"http://127.0.0.1:{server.server_port}"}
    write_cohort(data)
    first = run_pipeline(config(data, out, "1.0.0", quality={"alerts": ALERTS}), runner="local")
    write_cohort(data, hr_shift_bpm=15.0)
    second = run_pipeline(config(data, out, "2.0.0", quality=quality), runner="local")
    server.shutdown()
    metrics_2 = (out / "metrics.prom").read_text()
    write_cohort(data, hr_shift_bpm=40.0)
    with pytest.raises(ValueError) as stopped:
        run_pipeline(config(data, out, "3.0.0", quality={"alerts": ALERTS}), runner="local", strict=True)
    return root, first, second, metrics_2, stopped.value


def test_metrics_prom_matches_the_database(runs):
    root, first, second, metrics_2, _ = runs
    m = samples_of(metrics_2)
    store = open_store(root / "out")
    run = store.get_run(second.run_id)
    fp = second.fingerprint
    assert m[("sensorpipe_run_info", (("fingerprint", fp), ("run_id", second.run_id), ("runner", "local"),
                                      ("version", "2.0.0")))] == 1
    assert m[("sensorpipe_run_status", (("status", "succeeded"),))] == 1
    assert m[("sensorpipe_run_status", (("status", "failed"),))] == 0
    assert m[("sensorpipe_run_success", ())] == 1 and m[("sensorpipe_run_alert", ())] == 1
    import datetime as dt

    assert m[("sensorpipe_last_success_timestamp_seconds", ())] == pytest.approx(
        dt.datetime.fromisoformat(run["finished_at"]).timestamp())
    timings = store.stage_timings(fp)
    assert {"plan", "pass1", "pass2", "write", "total"} <= set(timings)
    for stage, seconds in timings.items():
        assert m[("sensorpipe_stage_duration_seconds", (("stage", stage),))] == pytest.approx(seconds)
    assert 0 < timings["pass1"] < timings["total"]
    assert m[("sensorpipe_peak_rss_bytes", ())] == pytest.approx(run["peak_rss_mib"] * 2 ** 20)
    assert 50 < run["peak_rss_mib"] < 64_000
    q = {(r["scope"], r["name"]): r["value"] for r in store.quality(fp)}
    for outcome in ("in", "accepted", "quarantined"):
        assert m[("sensorpipe_source_rows", (("outcome", outcome), ("source", "tiny")))] == q[("tiny", f"rows_{outcome}")]
    assert m[("sensorpipe_source_rows", (("outcome", "in"), ("source", "tiny")))] == second.rows_in > 0
    for split, n in second.split_sizes.items():
        assert m[("sensorpipe_windows", (("split", split),))] == n
    for r in store.channel_stats(fp):
        v = m[("sensorpipe_channel_missing_ratio", (("channel", r["channel"]), ("split", r["split"])))]
        assert v == pytest.approx(r["missing_ratio"], nan_ok=True)
    for ch in ("heart_rate", "steps"):
        assert m[("sensorpipe_channel_outlier_rate", (("channel", ch),))] == q[(f"channel:{ch}", "outlier_rate")]
        assert m[("sensorpipe_drift_psi", (("channel", ch),))] == q[(f"channel:{ch}", "drift_psi")]
    assert m[("sensorpipe_drift_psi", (("channel", "heart_rate"),))] > 1.0
    assert m[("sensorpipe_drift_psi", (("channel", "steps"),))] < 0.05
    assert m[("sensorpipe_drift_wasserstein", (("channel", "heart_rate"),))] == pytest.approx(15.0, abs=0.6)


def test_planted_drift_fires_the_alert_and_names_the_channel(runs):
    root, first, second, metrics_2, _ = runs
    # the cohort has no participants table: no window has a sex label; 1.0.0 follows no version (no drift)
    coverage = "alert label_coverage label:sex: share of windows labelled 0 < 0.5 (quality.alerts.min_label_coverage.sex)"
    assert first.alerts == [coverage]
    assert len(second.alerts) == 2 and second.alerts[1] == coverage
    drift = second.alerts[0]
    assert drift.startswith("alert drift_psi channel:heart_rate: PSI against tiny 1.0.0")
    assert "> 0.25 (quality.alerts.max_drift_psi)" in drift
    store = open_store(root / "out")
    (row,) = [a for a in store.alerts(second.fingerprint) if a["rule"] == "drift_psi"]
    assert row["scope"] == "channel:heart_rate" and row["threshold"] == 0.25 and row["value"] > 1.0
    from sensorpipe.commands import list_versions, summarize

    listing = list_versions(str(root / "out")).splitlines()
    assert next(x for x in listing if " 2.0.0 " in x).endswith("ALERT (2 rules)")
    assert next(x for x in listing if " 1.0.0 " in x).endswith("ALERT (1 rule)")
    assert f"ALERT     {drift}" in summarize(second)
    m = samples_of(metrics_2)
    assert m[("sensorpipe_alert", (("rule", "drift_psi"), ("scope", "channel:heart_rate")))] == row["value"]
    assert m[("sensorpipe_alert_threshold", (("rule", "drift_psi"), ("scope", "channel:heart_rate")))] == 0.25


def samples_of(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels without ``dataset``) -> value, parsed by prometheus_client's parser."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            assert s.labels["dataset"] == "tiny"
            out[(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "dataset")))] = s.value
    return out


def test_strict_alert_stops_the_publish_and_the_previous_version_stays(runs):
    root, first, second, _, stopped = runs
    assert "strict mode" in str(stopped) and "drift_psi channel:heart_rate" in str(stopped)
    assert "the previous version stays" in str(stopped)
    out = root / "out"
    assert not (out / "tiny" / "3.0.0").exists() and (out / "tiny" / "2.0.0").is_dir()
    store = open_store(out)
    last = store.list_runs()[0]
    assert (last["status"], last["alerts"], last["dataset_version"]) == ("failed", 2, "3.0.0")
    m = samples_of((out / "metrics.prom").read_text())
    assert m[("sensorpipe_run_status", (("status", "failed"),))] == 1
    assert m[("sensorpipe_run_success", ())] == 0 and m[("sensorpipe_run_alert", ())] == 1
    # the last success is still the 2.0.0 run's
    run2 = store.get_run(second.run_id)
    import datetime as dt

    assert m[("sensorpipe_last_success_timestamp_seconds", ())] == pytest.approx(
        dt.datetime.fromisoformat(run2["finished_at"]).timestamp())
    from sensorpipe.quality.drift import version_drift

    assert version_drift(store, "1.0.0").new_version == "2.0.0"    # the newest published one


def test_the_pushgateway_gets_the_same_metrics(runs):
    root, first, second, metrics_2, _ = runs
    ((method, path, body),) = _Gateway.received
    assert (method, path) == ("PUT", "/metrics/job/sensorpipe/dataset/tiny")
    pushed = samples_of(body.decode())
    assert pushed == samples_of(metrics_2)


def test_progress_lines_off_a_terminal(tmp_path, capsys):
    from sensorpipe.runners.progress import ProgressLog

    ticks = iter([0.0, 4.0, 11.0, 12.0, 25.0])
    lines = []

    class Stream:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    class Unit:
        rows_in, raw_samples_in = 1000, 100

    log = ProgressLog(5, "pass 1: prepare", 10.0, Stream(), clock=lambda: next(ticks))
    for _ in range(4):
        log.update(Unit())
    text = "".join(lines).splitlines()
    # at 11 s (3 units, 3,300 rows): 300 rows/s, 2 units left at 3.67 s each; 25 s is past the interval again
    assert text == ["pass 1: prepare: 2/5 units (40%), 200 rows/s, ETA 0:00:16",
                    "pass 1: prepare: 4/5 units (80%), 176 rows/s, ETA 0:00:06"]
    data = tmp_path / "data"
    write_cohort(data)
    run_pipeline(config(data, tmp_path / "out", "1.0.0", run={"progress_interval_s": 1e-9}), runner="local")
    err = capsys.readouterr().err
    assert "pass 1: prepare: 1/4 units (25%)" in err and "rows/s" in err
    assert "pass 2: encode: 3/4 units (75%)" in err and "units/s" in err


def test_cli_strict_alert_is_a_one_line_error_and_nothing_is_published(tmp_path, capsys):
    import yaml

    from sensorpipe.cli import main

    write_cohort(tmp_path / "data")
    cfg = config(tmp_path / "data", tmp_path / "out", "1.0.0", quality={"alerts": {"min_label_coverage": {"*": 0.5}}})
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path), "--strict"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sensorpipe run: error: strict mode: ")
    assert "alert label_coverage label:sex: share of windows labelled 0 < 0.5" in err[-1]
    assert not (tmp_path / "out" / "tiny" / "1.0.0").exists()
    assert "sensorpipe_run_status{dataset=\"tiny\",status=\"failed\"} 1.0" in (tmp_path / "out" / "metrics.prom").read_text()

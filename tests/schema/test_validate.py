"""Validation: every native row is accepted or quarantined with its reason; counts reconcile."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from sensorpipe.config import SourceConfig
from sensorpipe.schema.validate import validate_unit
from sensorpipe.sources.base import make_adapter

HEADER = "participant,timestamp_utc,signal,value\n"
GOOD = [
    "p1,2024-03-04T10:00:00Z,hr,61",
    "p1,2024-03-04T10:00:30Z,hr,63",
    "p1,2024-03-04T10:00:00Z,steps,12",
    "p1,2024-03-04T10:01:00Z,glucose,650",     # clip rule (CGM HIGH): kept at 600, counted as clipped
]
BAD = {
    "unparseable_time": "p1,yesterday at noon,hr,70",
    "out_of_range": "p1,2024-03-04T10:02:00Z,hr,400",
    "wrong_type": "p1,2024-03-04T10:03:00Z,hr,seventy",
    "unknown_field": "p1,2024-03-04T10:04:00Z,blood_pressure,120",
    "implausible_time": "p1,1970-01-02T00:00:00Z,hr,60",
    "missing_value": "p1,2024-03-04T10:05:00Z,hr,",
}
CONFLICT = ["p1,2024-03-04T10:06:00Z,hr,80", "p1,2024-03-04T10:06:00Z,hr,90"]
EXACT = ["p1,2024-03-04T10:07:00Z,hr,75", "p1,2024-03-04T10:07:00Z,hr,75"]


def _source(tmp_path, lines: list[str]) -> SourceConfig:
    (tmp_path / "d").mkdir(exist_ok=True)
    (tmp_path / "d" / "p1.csv").write_text(HEADER + "\n".join(lines) + "\n")
    return SourceConfig(name="injected", adapter="long_table", path=str(tmp_path / "d"), options={
        "tz": "Europe/Berlin",
        "files": [{"glob": "*.csv", "participant_column": "participant", "field_column": "signal",
                   "time_column": "timestamp_utc", "time_format": "iso", "value_column": "value"}],
        "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"}, "steps": {"channel": "steps", "unit": "steps/min"},
                   "spo2": {"channel": "spo2", "unit": "%"}, "glucose": {"channel": "glucose", "unit": "mg/dL"}}})


def test_rows_reconcile_with_injected_bad_rows(tmp_path):
    lines = GOOD + list(BAD.values()) + CONFLICT + EXACT
    adapter = make_adapter(_source(tmp_path, lines), str(tmp_path))
    (unit,) = adapter.list_units()
    res = validate_unit(adapter.read_unit(unit), adapter.schema())
    assert res.rows_in == len(lines)
    assert res.rows_in == len(res.observations) + res.rows_quarantined
    expected = {k: 1 for k in BAD} | {"conflicting_duplicate": 2, "exact_duplicate": 1}
    assert res.reason_counts == expected
    assert res.clipped == {"glucose": 1}
    assert len(res.observations) == len(GOOD) + 1  # first of the exact duplicates stays
    q = res.quarantine.to_pandas()
    assert len(q) == res.rows_quarantined
    by_reason = q.set_index("reason")
    # original text, file and 1-based line number are kept
    assert by_reason.loc["wrong_type", "value"] == "seventy"
    assert by_reason.loc["unparseable_time", "time"] == "yesterday at noon"
    assert by_reason.loc["unknown_field", "field"] == "blood_pressure"
    line_of = {line: i + 2 for i, line in enumerate(lines)}
    assert by_reason.loc["out_of_range", "source_row"] == line_of[BAD["out_of_range"]]
    assert set(q.loc[q.reason == "conflicting_duplicate", "value"]) == {"80", "90"}
    assert (q.source_file == str(tmp_path / "d" / "p1.csv")).all()


def test_no_participant_rows_are_quarantined_not_lost(tmp_path):
    lines = GOOD + [",2024-03-04T10:09:00Z,hr,70", ",2024-03-04T10:10:00Z,hr,71"]
    adapter = make_adapter(_source(tmp_path, lines), str(tmp_path))
    units = adapter.list_units()
    results = [validate_unit(adapter.read_unit(u), adapter.schema()) for u in units]
    assert sum(r.rows_in for r in results) == len(lines)
    assert sum(r.reason_counts.get("no_participant", 0) for r in results) == 2


def test_pipeline_quarantine_file_and_reconciliation(tmp_path):
    from sensorpipe.runners.driver import run_pipeline

    lines = GOOD + list(BAD.values()) + CONFLICT + EXACT
    src = _source(tmp_path, lines)
    cfg = {"sources": [src.__dict__], "channels": ["heart_rate", "steps", "spo2", "glucose"],
           "window": {"size_min": 60, "stride_min": 60, "alignment": "none", "max_missing_ratio": 1.0},
           "output": {"dir": str(tmp_path / "out"), "name": "injected"}, "privacy": {"pseudonymize": False},
           "splits": {"train": 1.0, "validation": 0.0, "test": 0.0}}
    r = run_pipeline(cfg)
    assert r.rows_in == r.rows_accepted + r.rows_quarantined == len(lines)
    q = pq.read_table(tmp_path / "out" / "quarantine" / "injected.parquet").to_pandas()
    assert len(q) == r.rows_quarantined == 9
    assert set(q.reason) == set(BAD) | {"conflicting_duplicate", "exact_duplicate"}


@pytest.mark.parametrize("content, needle", [
    ("", "cannot read"),
    ("a;b;c\n1;2;3\n", "cannot read"),
    ("\x00\x01\x02garbage\xff\xfe", "cannot read"),
])
def test_unreadable_file_names_the_file(tmp_path, content, needle):
    from sensorpipe.sources.base import SourceError

    src = _source(tmp_path, GOOD)
    (tmp_path / "d" / "p1.csv").write_bytes(content.encode("latin1"))
    with pytest.raises(SourceError) as e:
        make_adapter(src, str(tmp_path)).list_units()
    assert "p1.csv" in str(e.value) and needle in str(e.value)


def test_strict_mode_stops_a_source_with_too_many_bad_rows(tmp_path, capsys):
    import yaml

    from sensorpipe.cli import main

    lines = GOOD + list(BAD.values()) + CONFLICT + EXACT
    src = _source(tmp_path, lines)
    cfg = {"sources": [src.__dict__], "channels": ["heart_rate", "steps", "spo2", "glucose"],
           "window": {"size_min": 60, "stride_min": 60, "alignment": "none", "max_missing_ratio": 1.0},
           "validation": {"max_quarantine_rate": 0.5},
           "output": {"dir": str(tmp_path / "out"), "name": "injected"}, "privacy": {"pseudonymize": False}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "strict mode: source 'injected' quarantined 9 of 14 rows (64.3% > validation.max_quarantine_rate 50.0%)" in err
    spills = f"{tmp_path / 'out'}/.work/units/*.injected.quarantine.arrow"
    assert spills in " ".join(err.split()) and list((tmp_path / "out" / ".work" / "units").glob(spills.rsplit("/", 1)[1]))
    assert not (tmp_path / "out" / "injected").exists()       # nothing written
    assert main(["run", str(path)]) == 0                        # without --strict the run goes through


def test_out_of_order_rows_are_kept_and_counted(tmp_path):
    lines = ["p1,2024-03-04T10:02:00Z,hr,61", "p1,2024-03-04T10:00:00Z,hr,60", "p1,2024-03-04T10:03:00Z,hr,62"]
    adapter = make_adapter(_source(tmp_path, lines), str(tmp_path))
    (unit,) = adapter.list_units()
    res = validate_unit(adapter.read_unit(unit), adapter.schema())
    assert len(res.observations) == 3 and res.non_monotonic == 1


def test_counts_reconcile_per_file(tmp_path):
    lines = GOOD + list(BAD.values()) + CONFLICT + EXACT
    src = _source(tmp_path, lines)
    (tmp_path / "d" / "p1_more.csv").write_text(HEADER + "p1,2024-03-04T11:00:00Z,hr,70\np1,2024-03-04T11:01:00Z,hr,0\n")
    adapter = make_adapter(src, str(tmp_path))
    (unit,) = adapter.list_units()
    res = validate_unit(adapter.read_unit(unit), adapter.schema())
    per_file = res.by_file()
    assert per_file[str(tmp_path / "d" / "p1.csv")] == (14, 5, 9)
    assert per_file[str(tmp_path / "d" / "p1_more.csv")] == (2, 1, 1)
    assert all(n == a + q for n, a, q in per_file.values())

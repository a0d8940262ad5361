"""A long recording streamed chunk by chunk gives the bytes of reading it whole (limits.chunk_days).

Each case runs one cohort twice, ``limits.chunk_days: 1`` (small row groups,
so chunks also cut minutes and row groups apart) and ``0`` (whole), and
compares every output file byte for byte, the unit summaries (accounting,
statistics, lineage, quarantine counts) and the run's counts.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from sensorpipe.runners import chunked
from sensorpipe.runners.driver import run_pipeline

KEY = "0123456789abcdef0123456789abcdef"
START = np.datetime64("2024-03-28T00:00:00", "s")   # Berlin springs forward on 2024-03-31
VOLATILE = {"cache"}


def _rows(days: int, seed: int = 3) -> pa.Table:
    """Heart rate every 5 s (a gap of 40 hours across day boundaries, a few readings out of range), then
    HRV every 15 minutes (a 15-minute device), then unmapped 'altitude' rows: sorted streams, as exports are."""
    rng = np.random.default_rng(seed)
    s = np.arange(0, days * 86400, 5, dtype=np.int64)
    s = s[(s < 86400 + 7200) | (s >= 3 * 86400 + 3600 * 7)]   # no heart rate from day 1 02:00 to day 3 07:00
    hr = np.round(65 + 15 * np.sin(s / 9000.0) + rng.normal(0, 3, s.size), 1)
    hr[rng.choice(s.size, 5, replace=False)] = 900.0          # out of range: quarantined
    q = np.arange(0, days * 86400, 900, dtype=np.int64)
    q = q[(q // 86400) != 2]
    hrv = np.round(40 + rng.normal(0, 5, q.size), 1)
    alt = np.arange(0, 3600, 60, dtype=np.int64)
    t = np.concatenate([s, q, alt])
    field = ["hr"] * s.size + ["hrv"] * q.size + ["altitude"] * alt.size
    return pa.table({"participant": ["p7"] * t.size, "field": field,
                     "t_ms": (START.astype(np.int64) + t) * 1000,
                     "time": np.datetime_as_string(START + t) + "Z",
                     "value": np.concatenate([hr, hrv, np.full(alt.size, 120.0)])})


def _config(root: Path, glob: str, time_column: str, time_format: str, chunk_days: int) -> dict:
    return {
        "sources": [{"name": "strap", "adapter": "long_table", "path": str(root / "in"), "options": {
            "tz": "Europe/Berlin",
            "files": [{"glob": glob, "participant_column": "participant", "field_column": "field",
                       "time_column": time_column, "time_format": time_format, "value_column": "value"}],
            "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"},
                       "hrv": {"channel": "hrv_rmssd", "unit": "ms"}}}}],
        "channels": ["heart_rate", "hrv_rmssd"],
        "window": {"size_min": 720, "stride_min": 240, "alignment": "local_midnight", "max_missing_ratio": 0.9},
        "splits": {"train": 1.0, "validation": 0.0, "test": 0.0},
        "output": {"dir": str(root / f"out{chunk_days}"), "name": "strap", "version": "1.0.0",
                   "formats": ["array_record"]},
        "runner": {"name": "local"},
        "privacy": {"pseudonymize": True, "key_file": str(root / "k")},
        "limits": {"chunk_days": chunk_days},
    }


def _outputs(out: Path) -> dict[str, str]:
    """sha256 of every published file but the metadata DB, the HTML report, the run's metrics (run id, timings)
    and the config's own dump."""
    return {str(f.relative_to(out)): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(out.rglob("*"))
            if f.is_file() and ".work" not in f.parts and not f.name.startswith("metadata.db")
            and f.suffix not in (".html", ".prom") and f.name != "sensorpipe.json"}


def _units(out: Path) -> list[dict]:
    """The unit summaries without timings, peaks and the paths of their cache files (``stats``: its counts)."""
    units = []
    for f in sorted((out / ".work" / "units").glob("*.json")):
        d = {k: v for k, v in json.loads(f.read_text()).items() if k not in VOLATILE}
        d["fit_stats"] = {k: v for k, v in json.loads(f.read_text())["fit_stats"].items() if k != "sketch_file"}
        d["stats"] = d["stats"]["counts"]
        for part in d["parts"]:
            part["quarantine"] = Path(part["quarantine"]).name
        units.append(d)
    return units


def _sensorpipe_json(out: Path) -> dict:
    (path,) = out.rglob("sensorpipe.json")
    d = json.loads(path.read_text())
    d["config"].pop("limits")
    d["config"]["output"].pop("dir")
    d["manifest"].pop("sidecar_sha256")   # a checksum of the rest of this file, config (limits, dir) included
    return d


@pytest.fixture
def streamed(monkeypatch):
    """Counts the persons the chunked row stage took, and those it handed back (not sorted streams)."""
    calls = {"streamed": 0, "fallback": 0}
    real = chunked.stream_rows

    def counting(*a, **k):
        try:
            out = real(*a, **k)
        except chunked.NotStreamable:
            calls["fallback"] += 1
            raise
        calls["streamed"] += 1
        return out

    monkeypatch.setattr(chunked, "stream_rows", counting)
    monkeypatch.setattr(chunked, "STREAM_MIN_BYTES", 0)   # the test inputs are small
    return calls


def _run_both(tmp_path: Path, write, glob: str, time_column: str, time_format: str):
    (tmp_path / "in").mkdir()
    (tmp_path / "k").write_text(KEY)
    write(tmp_path / "in")
    results = {cd: run_pipeline(_config(tmp_path, glob, time_column, time_format, cd)) for cd in (0, 1)}
    return results, {cd: tmp_path / f"out{cd}" for cd in (0, 1)}


def _assert_same(results, outs, quarantine=None):
    whole, chunks = _outputs(outs[0]), _outputs(outs[1])
    assert any("array_record" in k for k in whole) and any("quarantine" in k for k in whole)
    assert chunks == whole
    assert _units(outs[1]) == _units(outs[0])
    assert _sensorpipe_json(outs[1]) == _sensorpipe_json(outs[0])
    r0, r1 = results[0], results[1]
    assert (r1.rows_in, r1.rows_accepted, r1.windows_kept, r1.quarantine_by_reason) == \
           (r0.rows_in, r0.rows_accepted, r0.windows_kept, r0.quarantine_by_reason)
    assert r0.quarantine_by_reason == (quarantine or {"out_of_range": 5, "unknown_field": 60})
    assert r0.windows_kept > 10


def test_parquet_streamed_in_day_chunks_is_byte_identical(tmp_path, streamed):
    def write(folder):   # row groups of 4,000 rows: chunks cut minutes apart, and the gap spans chunk ends
        pq.write_table(_rows(6).drop_columns(["time"]), folder / "strap.parquet", row_group_size=4000)

    results, outs = _run_both(tmp_path, write, "*.parquet", "t_ms", "epoch_ms")
    assert streamed == {"streamed": 1, "fallback": 0}
    _assert_same(results, outs)
    lineage = _units(outs[1])[0]["lineage"]
    assert lineage and all(set(w["files"]) == {str(tmp_path / "in" / "strap.parquet")} for w in lineage)


def test_iso_csv_streamed_in_blocks_is_byte_identical(tmp_path, streamed, monkeypatch):
    from sensorpipe.sources import long_table

    real = long_table.pacsv.ReadOptions
    monkeypatch.setattr(long_table.pacsv, "ReadOptions",   # small blocks, so the file comes in many batches
                        lambda **k: real(**{**k, "block_size": 1 << 16} if "block_size" in k else k))

    def write(folder):
        pacsv.write_csv(_rows(5).drop_columns(["t_ms"]), folder / "strap.csv")

    results, outs = _run_both(tmp_path, write, "*.csv", "time", "iso")
    assert streamed == {"streamed": 1, "fallback": 0}
    _assert_same(results, outs)


def test_interleaved_channels_and_files_of_days_are_streamed_byte_identical(tmp_path, streamed):
    def write(folder):   # every 2 days a file, rows in time order (heart rate and HRV interleaved)
        t = _rows(6).drop_columns(["time"])
        t = t.take(pa.array(np.argsort(t.column("t_ms").to_numpy(), kind="stable")))
        day = (t.column("t_ms").to_numpy() // 1000 - START.astype(np.int64)) // 86400
        for k in range(3):
            pq.write_table(t.filter(pa.array(day // 2 == k)), folder / f"strap-{k}.parquet", row_group_size=3000)

    results, outs = _run_both(tmp_path, write, "*.parquet", "t_ms", "epoch_ms")
    assert streamed == {"streamed": 1, "fallback": 0}
    _assert_same(results, outs)
    lineage = _units(outs[1])[0]["lineage"]
    assert len({f for w in lineage for f in w["files"]}) == 3


def test_rows_out_of_order_fall_back_to_the_whole_read(tmp_path, streamed):
    def write(folder):   # an export that lists a stretch of heart rate backwards
        t = _rows(3).drop_columns(["time"])
        idx = np.arange(t.num_rows)
        idx[5_000:5_500] = idx[5_000:5_500][::-1]
        pq.write_table(t.take(pa.array(idx)), folder / "strap.parquet", row_group_size=4000)

    results, outs = _run_both(tmp_path, write, "*.parquet", "t_ms", "epoch_ms")
    assert streamed == {"streamed": 0, "fallback": 1}
    assert _outputs(outs[1]) == _outputs(outs[0]) and _units(outs[1]) == _units(outs[0])
    assert _units(outs[0])[0]["parts"][0]["non_monotonic"] > 0


def test_tied_rows_fall_back_to_the_whole_read(tmp_path, streamed):
    def write(folder):   # the export repeats a stretch of heart rate (exact duplicates) and changes one of them
        t = _rows(3).drop_columns(["time"])
        dup = t.slice(1000, 50)
        val = dup.column("value").to_numpy().copy()
        val[7] += 1.0
        dup = dup.set_column(dup.schema.get_field_index("value"), "value", pa.array(val))
        pq.write_table(pa.concat_tables([t.slice(0, 1050), dup, t.slice(1050)]), folder / "strap.parquet",
                       row_group_size=4000)

    results, outs = _run_both(tmp_path, write, "*.parquet", "t_ms", "epoch_ms")
    assert streamed == {"streamed": 0, "fallback": 1}
    assert results[0].quarantine_by_reason["exact_duplicate"] == 49
    assert results[0].quarantine_by_reason["conflicting_duplicate"] == 2
    assert _outputs(outs[1]) == _outputs(outs[0]) and _units(outs[1]) == _units(outs[0])


def test_who_is_streamed(tmp_path, monkeypatch):
    import dataclasses

    from sensorpipe.config import load_config
    from sensorpipe.sources.base import make_adapter
    from sensorpipe.core.refs import Participant, UnitRef
    from sensorpipe.sources.study import PersonUnit

    for name in ("a.parquet", "b.parquet", "a.csv"):
        (tmp_path / name).write_bytes(b"x" * 1000)
    monkeypatch.setattr(chunked, "STREAM_MIN_BYTES", 1500)
    cfg = load_config(_config(tmp_path, "*.parquet", "t_ms", "epoch_ms", 30))
    src = cfg.sources[0]
    adapter = make_adapter(src, cfg.base_dir)

    def person(files, partitions=()):
        ref = UnitRef(src, cfg.base_dir, Participant("p7", "Europe/Berlin"), tuple(files), (0,) * len(files),
                      partitions=tuple(partitions))
        return PersonUnit("s", "p7", (ref,))

    a, b, c = (str(tmp_path / n) for n in ("a.parquet", "b.parquet", "a.csv"))
    assert not chunked.streamable(cfg, person([a]), [adapter])   # 1,000 bytes: read whole
    monkeypatch.setattr(chunked, "STREAM_MIN_BYTES", 500)
    assert chunked.streamable(cfg, person([a]), [adapter])
    assert chunked.streamable(cfg, person([a, b]), [adapter])       # two files
    assert chunked.streamable(cfg, person([a], [c]), [adapter])     # its partition (a stream file)
    assert not chunked.streamable(cfg, person([c]), [adapter])      # an epoch CSV read whole: types
    assert not chunked.streamable(dataclasses.replace(cfg, limits=dataclasses.replace(cfg.limits, chunk_days=0)),
                                  person([a]), [adapter])
    narrow = dataclasses.replace(cfg, channels=("heart_rate",))   # hrv would be needed by no grid: read whole
    assert not chunked.streamable(narrow, person([a]), [adapter])


# --- a person with several sources: the long wearable is streamed, the CGM (and a lab session) are read whole ---

PID = "sl001"   # the E4 study's first participant, so the lab session joins the same person


def _cgm(folder: Path, days: int, mmol: bool) -> None:
    """A Dexcom Clarity export over the same days (5-minute readings, a 30-hour gap across midnights, readings
    below 40 and above 400 mg/dL written as Low/High), with its participants table."""
    from sensorpipe.demo._clarity_writer import clarity_seconds, write_clarity_csv
    from sensorpipe.demo._synth_signals import utc_to_local

    rng = np.random.default_rng(11)
    t = START.astype(np.int64) + 300 * np.arange(days * 288, dtype=np.int64)
    t = t[(t < START.astype(np.int64) + 86400 + 20 * 3600) | (t >= START.astype(np.int64) + 3 * 86400 + 2 * 3600)]
    mgdl = 150 + 140 * np.sin(np.arange(t.size) / 25.0) + rng.normal(0, 10, t.size)
    mgdl[::97] = 30.0                                         # censored: Low
    mgdl[50::131] = 450.0                                     # censored: High
    local = utc_to_local(t + clarity_seconds(rng, t.size), "Europe/Berlin")
    write_clarity_csv(folder / "cgm" / f"{PID}.csv", local, mgdl, mmol=mmol, transmitter="8TEST1", first_name="X")
    (folder / "cgm" / "participants.csv").write_text(f"participant_id,tz\n{PID},Europe/Berlin\n")


def _fused_config(root: Path, chunk_days: int, glob: str, time_column: str, time_format: str, ring: bool,
                  lab: bool) -> dict:
    """Study 'trial': a wearable (a strap's heart rate and HRV, or a ring's SpO2 and respiratory rate, which the
    E4 cannot give), a CGM and optionally an E4 lab session; with the ring, the CGM comes first in config."""
    fields = ({"hr": {"channel": "spo2", "unit": "%"}, "hrv": {"channel": "respiratory_rate", "unit": "breaths/min"}}
              if ring else {"hr": {"channel": "heart_rate", "unit": "bpm"}, "hrv": {"channel": "hrv_rmssd",
                                                                                   "unit": "ms"}})
    wearable = {"name": "strap", "adapter": "long_table", "path": str(root / "in"), "study": "trial", "options": {
        "tz": "Europe/Berlin",
        "files": [{"glob": glob, "participant_column": "participant", "field_column": "field",
                   "time_column": time_column, "time_format": time_format, "value_column": "value"}],
        "fields": fields}}
    cgm = {"name": "cgm", "adapter": "dexcom_clarity", "path": str(root / "cgm"),
           "participants": str(root / "cgm" / "participants.csv"), "study": "trial"}
    sources = [cgm, wearable] if ring else [wearable, cgm]
    if lab:
        sources.append({"name": "lab", "adapter": "empatica_e4", "path": str(root / "lab"),
                        "participants": str(root / "lab" / "participants.csv"), "study": "trial",
                        "options": {"segments": "segments.csv"}})
    channels = [*(f["channel"] for f in fields.values()), "glucose", "glucose_censored"]
    if lab:
        channels += [c for c in ("heart_rate", "eda_level") if c not in channels]
    cfg = _config(root, glob, time_column, time_format, chunk_days)
    cfg.update(sources=sources, channels=channels)
    cfg["output"]["name"] = "trial"
    return cfg


def _ring_rows(t: pa.Table) -> pa.Table:
    """The strap's rows as a ring's: SpO2 around 96 % (one reading out of range kept), breaths around 15."""
    v = t.column("value").to_numpy()
    field = np.asarray(t.column("field").to_pylist())
    v = np.where(field == "hr", np.where(v == 900.0, 900.0, np.round(90 + v / 15.0, 1)),
                 np.where(field == "hrv", np.round(v / 3.0, 1), v))
    return t.set_column(t.schema.get_field_index("value"), "value", pa.array(v))


def _run_fused(tmp_path: Path, write, glob, time_column, time_format, ring=False, lab=False):
    (tmp_path / "in").mkdir()
    (tmp_path / "k").write_text(KEY)
    write(tmp_path / "in")
    _cgm(tmp_path, 6, mmol=ring)
    if lab:
        from sensorpipe.demo import synthetic

        synthetic.write_e4_study(tmp_path / "lab", 1, 1.2, seed=5, start_date="2024-04-01")
    results = {cd: run_pipeline(_fused_config(tmp_path, cd, glob, time_column, time_format, ring, lab))
               for cd in (0, 1)}
    return results, {cd: tmp_path / f"out{cd}" for cd in (0, 1)}


def _assert_fused_same(results, outs, sources: list[str]):
    _assert_same(results, outs, results[0].quarantine_by_reason)
    (unit,) = _units(outs[1])
    assert [p["source"] for p in unit["parts"]] == sources
    assert unit["stats"]["windows_multi_source"] > 0                     # wearable and CGM windows meet on one grid
    strap = next(p for p in unit["parts"] if p["source"] == "strap")
    assert strap["reason_counts"] == {"out_of_range": 5, "unknown_field": 60} and strap["windows"] > 10


def test_wearable_streamed_beside_a_whole_read_cgm_is_byte_identical(tmp_path, streamed):
    def write(folder):
        t = _rows(6).drop_columns(["time"])
        t = t.set_column(0, "participant", pa.array([PID] * t.num_rows))
        pq.write_table(t, folder / "strap.parquet", row_group_size=4000)

    results, outs = _run_fused(tmp_path, write, "*.parquet", "t_ms", "epoch_ms")
    assert streamed == {"streamed": 1, "fallback": 0}
    _assert_fused_same(results, outs, ["strap", "cgm"])
    (unit,) = _units(outs[1])
    cgm = next(p for p in unit["parts"] if p["source"] == "cgm")
    strap_file, cgm_file = str(tmp_path / "in" / "strap.parquet"), str(tmp_path / "cgm" / f"{PID}.csv")
    assert cgm["rows_accepted"] > 1000 and unit["stats"]["observed_minutes:glucose_censored"] > 0   # glucose_censored derived
    both = [list(w["files"]) for w in unit["lineage"] if len(w["files"]) == 2]
    assert both and all(f == [strap_file, cgm_file] for f in both)   # config order, as the whole read lists them


def test_ring_streamed_between_a_cgm_and_an_e4_lab_session_is_byte_identical(tmp_path, streamed, monkeypatch):
    from sensorpipe.sources import long_table

    real = long_table.pacsv.ReadOptions
    monkeypatch.setattr(long_table.pacsv, "ReadOptions",   # small blocks, so the file comes in many batches
                        lambda **k: real(**{**k, "block_size": 1 << 16} if "block_size" in k else k))

    def write(folder):
        t = _ring_rows(_rows(6).drop_columns(["t_ms"]))
        pacsv.write_csv(t.set_column(0, "participant", pa.array([PID] * t.num_rows)), folder / "strap.csv")

    results, outs = _run_fused(tmp_path, write, "*.csv", "time", "iso", ring=True, lab=True)
    assert streamed == {"streamed": 1, "fallback": 0}
    _assert_fused_same(results, outs, ["cgm", "strap", "lab"])
    (unit,) = _units(outs[1])
    lab = next(p for p in unit["parts"] if p["source"] == "lab")
    assert lab["raw_samples_in"] > 0 and lab["windows"] > 0
    three = [list(w["files"]) for w in unit["lineage"] if any("lab" in f for f in w["files"])]
    assert three and all(f[0].endswith(f"{PID}.csv") and f[1].endswith("strap.csv") for f in three)


def test_a_strap_outranking_the_lab_on_heart_rate_is_streamed_and_the_lab_loses_its_minutes(tmp_path, streamed):
    def write(folder):
        t = _rows(6).drop_columns(["time"])
        pq.write_table(t.set_column(0, "participant", pa.array([PID] * t.num_rows)), folder / "strap.parquet",
                       row_group_size=4000)

    results, outs = _run_fused(tmp_path, write, "*.parquet", "t_ms", "epoch_ms", lab=True)
    assert streamed == {"streamed": 1, "fallback": 0}   # config order ranks the strap first on heart rate
    _assert_fused_same(results, outs, ["strap", "cgm", "lab"])
    lab = next(p for p in _units(outs[1])[0]["parts"] if p["source"] == "lab")
    assert lab["overridden"]["heart_rate"] > 30 and lab["windows"] > 0   # the strap's minutes are the strap's


def test_a_strap_the_lab_outranks_on_heart_rate_is_streamed_without_its_lost_minutes(tmp_path, streamed,
                                                                                       monkeypatch):
    real = _fused_config

    def lab_first(*a, **k):   # first in config: it wins every channel it shares, and local time is New York's
        cfg = real(*a, **k)
        cfg["sources"] = cfg["sources"][-1:] + cfg["sources"][:-1]
        return cfg

    monkeypatch.setitem(globals(), "_fused_config", lab_first)

    def write(folder):
        t = _rows(6).drop_columns(["time"])
        pq.write_table(t.set_column(0, "participant", pa.array([PID] * t.num_rows)), folder / "strap.parquet",
                       row_group_size=4000)

    results, outs = _run_fused(tmp_path, write, "*.parquet", "t_ms", "epoch_ms", lab=True)
    assert streamed == {"streamed": 1, "fallback": 0}   # its readings in the lab's heart-rate minutes are dropped
    _assert_fused_same(results, outs, ["lab", "strap", "cgm"])
    unit = _units(outs[1])[0]
    with_lab = [list(w["files"]) for w in unit["lineage"] if any("/lab/" in f for f in w["files"])]
    strap_file = str(tmp_path / "in" / "strap.parquet")
    both = [(f[:f.index(strap_file)], f[f.index(strap_file) + 1:]) for f in with_lab if strap_file in f]
    assert both and all(a and all("/lab/" in x for x in a) and all("/cgm/" in x for x in b) for a, b in both)
    strap, lab = (next(p for p in unit["parts"] if p["source"] == s) for s in ("strap", "lab"))
    assert strap["overridden"]["heart_rate"] > 30 * 12 and "heart_rate" not in lab["overridden"]  # 5-s rows lost
    lab_file = [f for w in unit["lineage"] for f in w["files"] if "/lab/" in f]
    assert lab_file and lab["windows"] > 0


def test_a_fused_wearable_out_of_order_is_read_whole_beside_the_cgm(tmp_path, streamed):
    def write(folder):   # a stretch of heart rate listed backwards: the chunks hand the strap back
        t = _rows(4).drop_columns(["time"])
        idx = np.arange(t.num_rows)
        idx[5_000:5_500] = idx[5_000:5_500][::-1]
        t = t.take(pa.array(idx))
        pq.write_table(t.set_column(0, "participant", pa.array([PID] * t.num_rows)), folder / "strap.parquet",
                       row_group_size=4000)

    results, outs = _run_fused(tmp_path, write, "*.parquet", "t_ms", "epoch_ms")
    assert streamed == {"streamed": 0, "fallback": 1}
    assert _outputs(outs[1]) == _outputs(outs[0]) and _units(outs[1]) == _units(outs[0])
    assert [p["source"] for p in _units(outs[0])[0]["parts"]] == ["strap", "cgm"]
    assert _units(outs[0])[0]["parts"][0]["non_monotonic"] > 0


def test_which_source_of_a_person_is_streamed(tmp_path, monkeypatch):
    from sensorpipe.config import load_config
    from sensorpipe.sources.base import make_adapter
    from sensorpipe.core.refs import Participant, UnitRef
    from sensorpipe.sources.study import PersonUnit

    for name in ("strap.parquet", "sl001.csv", "e4.csv", "big.parquet"):
        (tmp_path / name).write_bytes(b"x" * (3000 if name == "big.parquet" else 1000))
    monkeypatch.setattr(chunked, "STREAM_MIN_BYTES", 500)

    def person(cfg, files):
        srcs = {s.name: s for s in cfg.sources}
        refs = tuple(UnitRef(srcs[n], cfg.base_dir, Participant(PID, "Europe/Berlin"), (str(tmp_path / f),), (0,))
                     for n, f in files)
        return PersonUnit("trial", PID, refs), [make_adapter(r.source, r.base_dir) for r in refs]

    ring = load_config(_fused_config(tmp_path, 30, "*.parquet", "t_ms", "epoch_ms", ring=True, lab=True))
    p, adapters = person(ring, [("cgm", "sl001.csv"), ("strap", "strap.parquet"), ("lab", "e4.csv")])
    assert chunked.streamed_part(ring, p, adapters) == 1          # the ring: no other source has SpO2 or breaths
    strap = load_config(_fused_config(tmp_path, 30, "*.parquet", "t_ms", "epoch_ms", ring=False, lab=True))
    p, adapters = person(strap, [("strap", "strap.parquet"), ("cgm", "sl001.csv")])
    assert chunked.streamed_part(strap, p, adapters) == 0          # beside a CGM (glucose is the CGM's)
    p, adapters = person(strap, [("strap", "strap.parquet"), ("cgm", "sl001.csv"), ("lab", "e4.csv")])
    assert chunked.streamed_part(strap, p, adapters) == 0          # the E4's heart rate and HRV rank below it
    lab_first = _fused_config(tmp_path, 30, "*.parquet", "t_ms", "epoch_ms", ring=False, lab=True)
    lab_first["studies"] = {"trial": {"priority": {"hrv_rmssd": ["lab", "strap"]}}}
    lab_first = load_config(lab_first)
    p, adapters = person(lab_first, [("strap", "strap.parquet"), ("cgm", "sl001.csv"), ("lab", "e4.csv")])
    assert chunked.streamed_part(lab_first, p, adapters) == 0      # the lab's HRV wins: the strap's there are dropped
    two = _fused_config(tmp_path, 30, "*.parquet", "t_ms", "epoch_ms", ring=False, lab=False)
    ring_src = _fused_config(tmp_path, 30, "*.parquet", "t_ms", "epoch_ms", ring=True, lab=False)["sources"][1]
    two["sources"].append({**ring_src, "name": "ring"})
    two["channels"] += ["spo2", "respiratory_rate"]
    two = load_config(two)
    p, adapters = person(two, [("strap", "strap.parquet"), ("cgm", "sl001.csv"), ("ring", "big.parquet")])
    assert chunked.streamed_part(two, p, adapters) == 2            # two qualify: the larger input is streamed
    p, adapters = person(two, [("strap", "strap.parquet"), ("ring", "strap.parquet")])
    assert chunked.streamed_part(two, p, adapters) is None         # one file read by two sources
    glucose = _fused_config(tmp_path, 30, "*.parquet", "t_ms", "epoch_ms", ring=False, lab=False)
    glucose["sources"][0]["options"]["fields"]["hrv"] = {"channel": "glucose", "unit": "mg/dL"}
    glucose["channels"].remove("hrv_rmssd")
    glucose = load_config(glucose)
    p, adapters = person(glucose, [("strap", "strap.parquet")])
    assert chunked.streamed_part(glucose, p, adapters) is None     # censored readings add rows after fusion

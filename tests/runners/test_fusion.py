"""One person, many sources: a three-source study fused into one grid, one pseudonym and one split per person.

The study ``trial`` has a wrist wearable's minute export (one shared CSV for
every participant), Dexcom Clarity exports named by the CGM clinic's own ids
(linked by the study's id map) and Empatica E4 lab sessions (raw waveforms,
fused through their minute features). Heart rate from the lab outranks the
wearable's (``studies.trial.priority``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import sensorpipe
from sensorpipe.demo import synthetic
from sensorpipe.demo._clarity_writer import clarity_seconds, write_clarity_csv
from sensorpipe.demo._synth_signals import utc_to_local
from sensorpipe.privacy.pseudonym import assign_split, pseudonym
from sensorpipe.core.arrays import load_arrays

KEY = "fusion-test-key-0123456789"
PIDS = ("sl001", "sl002", "sl003")          # sl001 and sl002 also came to the lab (the E4 study writes sl00N)
CGM_IDS = {"sl001": "DX-7731", "sl002": "DX-7732", "sl003": "DX-7733"}
DAY0 = int(np.datetime64("2024-03-06T00:00", "s").astype(np.int64))
DAYS = 4
CHANNELS = ["heart_rate", "steps", "enmo", "eda_level", "glucose"]


def watch_hr(minute_index: np.ndarray) -> np.ndarray:
    """The wearable's heart rate: whole bpm, a slow wave (the lab's PPG rate is a mean of beats, never this)."""
    return 60 + np.round(8 * np.sin(minute_index / 37.0))


def _write_study(root: Path) -> None:
    synthetic.write_e4_study(root / "lab", 2, 1.2, seed=5)
    tz = {pid: synthetic._tz(p) for p, pid in enumerate(PIDS)}
    minutes = np.arange(DAYS * 1440)
    t = DAY0 + 60 * minutes
    cols = {"participant": [], "time_utc": [], "metric": [], "value": []}
    for pid in PIDS:                    # one shared export for everyone, as Fitabase-style merges are
        for metric, values in (("hr", watch_hr(minutes)), ("steps", (minutes % 90 < 20) * 80)):
            cols["participant"].append(np.full(t.size, pid))
            cols["time_utc"].append(np.datetime_as_string(t.astype("datetime64[s]"), unit="s").astype(object) + "Z")
            cols["metric"].append(np.full(t.size, metric))
            cols["value"].append(values.astype(np.int64).astype(str))
    (root / "watch").mkdir()
    pacsv.write_csv(pa.table({k: np.concatenate(v) for k, v in cols.items()}), root / "watch" / "export.csv")
    _csv(root / "watch" / "participants.csv", ["participant_id", "tz"], [[p, tz[p]] for p in PIDS])
    rng = np.random.default_rng(3)
    for p, pid in enumerate(PIDS):      # 5-min CGM readings over the same days
        t5 = DAY0 + 300 * np.arange(DAYS * 288)
        mgdl = 130 + 45 * np.sin(np.arange(t5.size) / 20.0 + p)
        local = utc_to_local(t5 + clarity_seconds(rng, t5.size), tz[pid])
        write_clarity_csv(root / "cgm" / f"{CGM_IDS[pid]}.csv", local, mgdl, mmol=p == 1, transmitter="8TEST1",
                          first_name="X")
    _csv(root / "cgm" / "participants.csv", ["participant_id", "tz"], [[CGM_IDS[p], tz[p]] for p in PIDS])
    _csv(root / "ids.csv", ["source", "source_participant_id", "participant_id"],
         [["cgm", CGM_IDS[p], p] for p in PIDS])
    (root / "key.txt").write_text(KEY)


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def _config(root: Path, out: str, **window) -> dict:
    watch_files = [{"glob": "export.csv", "participant_column": "participant", "field_column": "metric",
                    "time_column": "time_utc", "time_format": "iso", "value_column": "value"}]
    return {
        "sources": [
            {"name": "watch", "adapter": "long_table", "path": "watch", "participants": "watch/participants.csv",
             "study": "trial", "options": {"files": watch_files, "fields": {
                 "hr": {"channel": "heart_rate", "unit": "bpm"}, "steps": {"channel": "steps", "unit": "steps/min"}}}},
            {"name": "cgm", "adapter": "dexcom_clarity", "path": "cgm", "participants": "cgm/participants.csv",
             "study": "trial"},
            {"name": "lab", "adapter": "empatica_e4", "path": "lab", "participants": "lab/participants.csv",
             "study": "trial", "options": {"segments": "segments.csv"}},
        ],
        "studies": {"trial": {"id_map": "ids.csv", "priority": {"heart_rate": ["lab", "watch"]}}},
        "channels": CHANNELS,
        "window": {"size_min": 1440, "stride_min": 1440, "alignment": "local_midnight", **window},
        "splits": {"train": 0.34, "validation": 0.33, "test": 0.33},
        "output": {"dir": out, "name": "trial"},
        "privacy": {"pseudonymize": True, "key_file": "key.txt"},
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from sensorpipe.runners.driver import run_pipeline

    root = tmp_path_factory.mktemp("trial")
    _write_study(root)
    result = run_pipeline(_load(root, _config(root, "out", max_missing_ratio=0.7)), runner="local")
    return root, result, sensorpipe.open(root / "out")


def _load(root: Path, cfg: dict):
    from sensorpipe.config import load_config

    return load_config(cfg, base_dir=str(root))


def _windows(ds):
    return [(split, ex) for split in ds.splits for ex in ds[split]]


def test_one_pseudonym_and_one_split_per_person(study):
    root, result, ds = study
    assert len(result.units) == 3 and {u.key for u in result.units} == {f"trial/{p}" for p in PIDS}
    by_person: dict[str, set[str]] = {}
    for split, ex in _windows(ds):
        assert ex["dataset"] == "trial"
        by_person.setdefault(ex["participant_id"], set()).add(split)
    expected = {pseudonym(KEY.encode(), "trial", p): assign_split(_load(root, _config(root, "out")).splits, "trial", p)
                for p in PIDS}
    assert {p: s for p, s in ((p, next(iter(s))) for p, s in by_person.items())} == expected
    assert all(len(s) == 1 for s in by_person.values())          # nobody is in two splits


def test_a_window_carries_every_channel_its_sources_observed(study):
    root, result, ds = study
    import json

    info = json.loads((Path(result.version_dir) / "dataset_info.json").read_text())
    assert "studies (sources): trial (watch, cgm, lab)" in info["description"]
    assert "`sources` lists the sources that contributed" in info["description"]
    sl001 = pseudonym(KEY.encode(), "trial", "sl001")
    lab_day = [ex for _, ex in _windows(ds)
               if ex["participant_id"] == sl001 and "lab" in ex["sources"]]
    assert len(lab_day) == 1                                     # the E4 session lies in one local day
    ex = lab_day[0]
    assert ex["sources"] == "watch,cgm,lab"             # config order
    observed = ~ex["mask"]
    for ch in ("heart_rate", "steps", "glucose", "eda_level", "enmo"):
        assert observed[:, CHANNELS.index(ch)].sum() > 30, ch
    assert observed[:, CHANNELS.index("glucose")].sum() >= 280   # a reading every 5 min, fused on one grid
    others = [ex["sources"] for _, ex in _windows(ds) if ex["participant_id"] == sl001
              and "lab" not in ex["sources"]]
    assert others.count("watch,cgm") >= DAYS - 2, others


def test_the_lab_outranks_the_wearable_and_the_losers_are_counted(study):
    from sensorpipe.metadata.store import MetadataStore
    from sensorpipe.processing import raw_features
    from sensorpipe.core.grid import MINUTE_NS
    from sensorpipe.schema.validate import range_filter
    from sensorpipe.sources.base import make_adapter
    from sensorpipe.sources.study import plan_persons

    root, result, ds = study
    cfg = _load(root, _config(root, "out"))
    lab = make_adapter(cfg.sources[2], cfg.base_dir)
    lab_minutes = 0                       # minutes where the lab's PPG gave a heart rate: the wearable lost each
    for unit in lab.list_units():
        inp = lab.read_unit(unit)
        for sig in inp.raw_signals:
            kept, _ = range_filter(raw_features.extract(sig).observations)
            hr = kept.channel == 0
            lab_minutes += np.unique(kept.t_utc_ns[hr] // MINUTE_NS).size
    assert lab_minutes > 60
    q = {(m["scope"], m["name"]): m["value"] for m in MetadataStore(result.metadata_url).quality(result.fingerprint)}
    assert q[("watch", "fusion_overridden:heart_rate")] == lab_minutes
    assert ("lab", "fusion_overridden:heart_rate") not in q and ("cgm", "fusion_overridden:glucose") not in q
    assert q[("study:trial", "persons")] == 3
    assert q[("study:trial", "windows_multi_source")] == result.windows_kept   # every day has the watch and the CGM
    # where the lab observed the minute, the stored heart rate is the lab's, not the wearable's whole-bpm value
    persons = {p.participant_id: p for p in plan_persons(cfg, [make_adapter(s, cfg.base_dir) for s in cfg.sources])}
    assert [p.source_names for p in persons.values()] == [("watch", "cgm", "lab")] * 2 + [("watch", "cgm")]
    for _, ex in _windows(ds):
        if "lab" not in ex["sources"]:
            continue
        hr = ds.denormalize(ex["input"], ex["mask"])[:, 0].astype(np.float64)
        minute = (int(ex["start_utc"]) - DAY0) // 60 + np.arange(1440)
        differs = np.isfinite(hr) & (np.abs(hr - watch_hr(minute)) > 0.01)
        assert 30 < differs.sum() <= lab_minutes


def test_rows_reconcile_and_quarantine_per_source(study):
    import pyarrow.parquet as pq

    from sensorpipe.metadata.store import MetadataStore

    root, result, ds = study
    q = {(m["scope"], m["name"]): m["value"] for m in MetadataStore(result.metadata_url).quality(result.fingerprint)}
    for src in ("watch", "cgm", "lab"):
        assert q[(src, "rows_in")] == q[(src, "rows_accepted")] + q[(src, "rows_quarantined")]
    assert q[("watch", "rows_in")] == 3 * 2 * DAYS * 1440
    cgm_q = pq.read_table(root / "out" / "quarantine" / "cgm.parquet")
    assert cgm_q.num_rows == q[("cgm", "rows_quarantined")] > 0      # the exports' preamble rows
    ids = set(cgm_q.column("participant_id").to_pylist())
    assert ids == {pseudonym(KEY.encode(), "trial", p) for p in PIDS}   # no clinic id, no raw id
    assert pq.read_table(root / "out" / "quarantine" / "watch.parquet").num_rows == q[("watch", "rows_quarantined")]


def test_missingness_counts_the_channels_a_persons_sources_provide(study):
    root, result, ds = study
    sl003 = pseudonym(KEY.encode(), "trial", "sl003")            # no lab: enmo and EDA are not measured for them
    mine = [ex for _, ex in _windows(ds) if ex["participant_id"] == sl003]
    assert len(mine) >= DAYS - 1                                 # whole local days, kept at max_missing_ratio 0.7
    for ex in mine:   # heart rate and steps minute by minute, each 5-min Dexcom reading covering 5 minutes
        assert ex["missingness_ratio"] == pytest.approx(_expected_ratio(ex, ("heart_rate", "steps", "glucose")),
                                                        abs=1e-6)
        assert ex["mask"].mean() > 0.5                           # over every channel it would have been dropped
    (u,) = [u for u in result.units if u.key == "trial/sl003"]
    measured = load_arrays(u.cache)["measured"]   # the basis pass 2 computes the records' missing share on
    assert [c for c, m in zip(CHANNELS, measured) if m] == ["heart_rate", "steps", "glucose"]
    sl001 = pseudonym(KEY.encode(), "trial", "sl001")
    ex = next(ex for _, ex in _windows(ds) if ex["participant_id"] == sl001)
    assert ex["missingness_ratio"] == pytest.approx(_expected_ratio(ex, CHANNELS), abs=1e-6)   # the lab: all five
    assert sum(len(ds[s].filter(max_missing=0.7)) for s in ds.splits) == sum(len(ds[s]) for s in ds.splits)


def _expected_ratio(ex, measured) -> float:
    """Missing share over ``measured``: minute by minute, except glucose (Dexcom: a reading covers 5 minutes)."""
    W = ex["mask"].shape[0]
    missing = []
    for ch in measured:
        observed = int((~ex["mask"][:, CHANNELS.index(ch)]).sum())
        missing.append(W - min(W, observed * (5 if ch == "glucose" else 1)))
    return sum(missing) / (W * len(measured))


def test_all_channels_basis_restores_the_old_rule(study, tmp_path):
    from sensorpipe.runners.driver import run_pipeline

    root, _, _ = study
    cfg = _config(root, str(tmp_path / "out"), max_missing_ratio=0.7, missingness_basis="all_channels")
    cfg["sources"] = cfg["sources"][:2]                          # the wearable and the CGM: 3 of 5 channels
    cfg["studies"]["trial"]["priority"] = {}
    run_pipeline(_load(root, cfg), runner="local")
    ds = sensorpipe.open(tmp_path / "out")
    windows = _windows(ds)
    assert len(windows) >= 3 * (DAYS - 1)
    for _, ex in windows:
        assert ex["missingness_ratio"] == pytest.approx(ex["mask"].mean(), abs=1e-6) and ex["mask"].mean() > 0.5


def test_cut_windows_counts_only_measured_channels():
    from sensorpipe.config import WindowConfig
    from sensorpipe.processing.grid import build_grid
    from sensorpipe.core.grid import MINUTE_NS
    from sensorpipe.processing.window import MissingBasis, cut_windows
    from sensorpipe.schema.validate import CHANNEL_NAMES
    from sensorpipe.core.observations import Observations

    t = DAY0 * 10**9 + MINUTE_NS * np.arange(3 * 1440)          # glucose every minute, nothing else, 3 UTC days
    obs = Observations(np.full(t.size, CHANNEL_NAMES.index("glucose"), np.int16), t, np.full(t.size, 120.0),
                       np.zeros(t.size, np.int32), np.arange(t.size), ["cgm.csv"], np.arange(t.size))
    grid = build_grid(obs, tuple(CHANNELS), "UTC")
    cfg = WindowConfig(alignment="utc_midnight", max_missing_ratio=0.5)
    glucose_only = np.array([c == "glucose" for c in CHANNELS])
    assert len(cut_windows(grid, cfg, None, MissingBasis(glucose_only, np.ones(5)))) == 3   # complete days
    everything = cut_windows(grid, cfg, None)
    assert len(everything) == 0 and everything.dropped == {"too_missing": 3}   # 80 % missing over 5 channels


def test_a_complete_15_minute_libre_day_is_complete():
    from sensorpipe.config import WindowConfig
    from sensorpipe.processing.grid import build_grid
    from sensorpipe.core.grid import MINUTE_NS
    from sensorpipe.processing.window import MissingBasis, cut_windows
    from sensorpipe.schema.validate import CHANNEL_NAMES
    from sensorpipe.core.observations import Observations

    t = DAY0 * 10**9 + 15 * MINUTE_NS * np.arange(3 * 96)       # a historic reading every 15 min, 3 UTC days
    t[96:192] += np.arange(96) % 2 * 60 * 10**9                 # day 2: the reader's clock a minute off every other
    obs = Observations(np.full(t.size, CHANNEL_NAMES.index("glucose"), np.int16), t, np.full(t.size, 120.0),
                       np.zeros(t.size, np.int32), np.arange(t.size), ["libre.csv"], np.arange(t.size))
    grid = build_grid(obs, ("glucose",), "UTC")
    cfg = WindowConfig(alignment="utc_midnight")                # the default max_missing_ratio, 0.8
    libre = MissingBasis(np.ones(1, bool), np.full(1, 15.0))
    win = cut_windows(grid, cfg, None, libre)
    assert len(win) == 3 and win.observed.sum(axis=(1, 2)).tolist() == [96, 96, 96]
    assert libre.share(1440 - win.observed.sum(axis=1), 1440).tolist() == [0.0, 0.0, 0.0]
    half = libre.share(np.array([[1440 - 48]]), 1440)          # 48 of 96 readings: half the day
    assert half.tolist() == [0.5]
    assert len(cut_windows(grid, cfg, None)) == 0               # minute by minute, 93 % missing: dropped


def test_inspect_finds_a_person_by_raw_id_with_the_key(study, capsys, monkeypatch):
    from sensorpipe.cli import main

    root, result, ds = study
    monkeypatch.delenv("SENSORPIPE_PSEUDONYM_KEY", raising=False)
    assert main(["inspect", str(root / "out"), "--participant", "sl001", "--key-file", str(root / "key.txt")]) == 0
    out = capsys.readouterr().out
    n = sum(1 for _, ex in _windows(ds) if ex["participant_id"] == pseudonym(KEY.encode(), "trial", "sl001"))
    assert out.count("trial/") == n and "watch,cgm,lab" in out
    monkeypatch.setenv("SENSORPIPE_PSEUDONYM_KEY", KEY)           # the key from the environment, as the run read it
    assert main(["inspect", str(root / "out"), "--participant", "sl002"]) == 0
    assert "watch,cgm" in capsys.readouterr().out
    monkeypatch.delenv("SENSORPIPE_PSEUDONYM_KEY")
    assert main(["inspect", str(root / "out"), "--participant", "sl002"]) == 2
    assert "--key-file" in capsys.readouterr().err


def test_an_id_map_that_sends_two_ids_to_one_person_is_an_error(study, tmp_path):
    from sensorpipe.runners.driver import run_pipeline
    from sensorpipe.sources.base import SourceError

    root, _, _ = study
    bad = tmp_path / "ids.csv"
    _csv(bad, ["source", "source_participant_id", "participant_id"],
         [["cgm", "DX-7731", "sl001"], ["cgm", "DX-7732", "sl001"]])
    cfg = _config(root, str(tmp_path / "out"))
    cfg["studies"]["trial"]["id_map"] = str(bad)
    with pytest.raises(SourceError, match="'DX-7731' and 'DX-7732' are both mapped to study participant 'sl001'"):
        run_pipeline(_load(root, cfg), runner="local")
    _csv(bad, ["source", "source_participant_id", "participant_id"], [["wearable", "DX-7731", "sl001"]])
    with pytest.raises(SourceError, match=r"ids.csv, line 2: source 'wearable' is not a source of this study"):
        run_pipeline(_load(root, cfg), runner="local")


def test_sources_that_disagree_on_the_zone_are_reported_without_the_raw_id(study, tmp_path, caplog):
    import shutil

    from sensorpipe.runners.driver import run_pipeline

    root, _, _ = study
    shutil.copytree(root / "cgm", tmp_path / "cgm")
    _csv(tmp_path / "cgm" / "participants.csv", ["participant_id", "tz"],
         [[CGM_IDS[p], "Asia/Tokyo" if p == "sl003" else synthetic._tz(k)] for k, p in enumerate(PIDS)])
    cfg = _config(root, str(tmp_path / "out"))
    cfg["sources"] = cfg["sources"][:2]
    cfg["sources"][1]["path"], cfg["sources"][1]["participants"] = str(tmp_path / "cgm"), str(tmp_path / "cgm" /
                                                                                               "participants.csv")
    cfg["studies"]["trial"]["priority"] = {}
    with caplog.at_level("WARNING", logger="sensorpipe.runners.stages"):
        run_pipeline(_load(root, cfg), runner="local")
    (msg,) = [r.getMessage() for r in caplog.records if "different time zones" in r.getMessage()]
    assert pseudonym(KEY.encode(), "trial", "sl003") in msg and "sl003" not in msg and "Asia/Tokyo" in msg

"""The ``basicmotions`` adapter on the real BasicMotions files (tests/data/basicmotions, from aeon 1.6.0).

Each file (40 cases of 10 s at 10 Hz, grouped by class: 10 Standing, 10
Running, 10 Walking, 10 Badminton) is one unit; each class run of 100 s
starts on a new minute from 2018-01-01 00:00 UTC, so it gives one full minute
and one of 40 s (above the half-minute coverage rule): 8 ENMO minutes a file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from sensorpipe.config import ConfigError, SourceConfig
from sensorpipe.processing import raw_features
from sensorpipe.sources.base import SourceError, make_adapter
from sensorpipe.sources.basicmotions import read_ts
from tests.sources.adapter_case import AdapterCase

DATA = Path(__file__).resolve().parents[1] / "data" / "basicmotions"
T0_NS = int(np.datetime64("2018-01-01T00:00", "ns").astype(np.int64))
MIN_NS = 60_000_000_000


def adapter(root: Path, participants: str | None = None, **options):
    return make_adapter(SourceConfig("bm", "basicmotions", str(root), participants, options), str(root))


def units(root: Path = DATA, **options):
    a = adapter(root, **options)
    return a, {u.participant.participant_id: u for u in a.list_units()}


class TestBasicMotions(AdapterCase):
    ADAPTER = "basicmotions"
    DUMMY = "basicmotions"
    EXPECTED_UNITS = 2
    EXPECTED_CHANNELS = {"enmo": 16}
    EXPECTED_REASONS = {}
    MUTABLE = ("BasicMotions_TRAIN.ts",)

    def dummy(self) -> Path:
        return DATA


def test_ts_file_cases_and_labels():
    cases = read_ts(DATA / "BasicMotions_TRAIN.ts")
    assert len(cases.values) == 40 and all(v.shape == (6, 100) for v in cases.values)
    assert cases.class_labels == ("Standing", "Running", "Walking", "Badminton")
    assert cases.labels == ["Standing"] * 10 + ["Running"] * 10 + ["Walking"] * 10 + ["Badminton"] * 10
    assert cases.lines[0] == 14                                     # 4 comment lines, 8 metadata lines, @data
    assert cases.values[0][0, :3].tolist() == [0.079106, 0.079106, -0.903497]


def test_runs_start_on_whole_minutes_with_their_activity():
    a, us = units()
    bouts = a.activity_bouts(us["BasicMotions_TRAIN"])
    assert bouts == [(T0_NS + k * 2 * MIN_NS, T0_NS + k * 2 * MIN_NS + 100 * 10 ** 9, name)
                     for k, name in enumerate(["standing", "running", "walking", "racket_sports"])]
    sigs = a.read_unit(us["BasicMotions_TRAIN"]).raw_signals
    assert [(s.kind, s.start_utc_ns, s.sample_rate_hz, s.values.shape, s.unit) for s in sigs] == [
        ("acc", T0_NS + k * 2 * MIN_NS, 10.0, (1000, 3), "mg") for k in range(4)]


def test_gravity_free_acceleration_gets_1_g_along_itself_so_enmo_is_the_dynamic_magnitude():
    a, us = units()
    cases = read_ts(DATA / "BasicMotions_TRAIN.ts")
    sigs = a.read_unit(us["BasicMotions_TRAIN"]).raw_signals
    for k, sig in enumerate(sigs):
        raw_mg = np.concatenate([c[:3].T for c in cases.values[10 * k:10 * k + 10]]) * 1000 / 9.80665
        dyn = np.sqrt((raw_mg ** 2).sum(axis=1))
        assert np.allclose(np.sqrt((sig.values ** 2).sum(axis=1)), 1000 + dyn)
        assert np.allclose(sig.values / np.linalg.norm(sig.values, axis=1, keepdims=True),
                           raw_mg / dyn[:, None])                     # direction kept
        enmo = raw_features.extract(sig).primary()
        assert enmo.t_utc_ns.tolist() == [sig.start_utc_ns, sig.start_utc_ns + MIN_NS]
        assert enmo.value.tolist() == pytest.approx([dyn[:600].mean(), dyn[600:].mean()])
    enmo = [raw_features.extract(s).primary().value.mean() for s in sigs]
    order = ["standing", "running", "walking", "racket_sports"]
    assert sorted(order, key=lambda n: enmo[order.index(n)]) == ["standing", "walking", "racket_sports", "running"]
    assert enmo[0] < 100 and enmo[1] > 1000


def test_gravity_included_files_are_only_converted():
    a, us = units(gravity_removed=False)
    sig = a.read_unit(us["BasicMotions_TEST"]).raw_signals[0]
    first = read_ts(DATA / "BasicMotions_TEST.ts").values[0][:3, 0]
    assert sig.values[0].tolist() == pytest.approx((first * 1000 / 9.80665).tolist())


def test_start_and_zone_from_the_participants_table(tmp_path):
    (tmp_path / "p.csv").write_text("participant_id,tz,start_utc\nBasicMotions_TEST,Europe/Berlin,"
                                    "2019-06-01T10:00:30+02:00\n")
    a, us = units(participants=str(tmp_path / "p.csv"))
    assert us["BasicMotions_TEST"].participant.tz == "Europe/Berlin"
    assert us["BasicMotions_TRAIN"].participant.tz == "UTC"          # options.tz for files not in the table
    start = int(np.datetime64("2019-06-01T08:00:30", "ns").astype(np.int64))
    bouts = a.activity_bouts(us["BasicMotions_TEST"])
    assert bouts[0][0] == start
    assert bouts[1][0] == start - 30 * 10 ** 9 + 3 * MIN_NS          # 08:00:30 + 100 s -> next run at 08:03


def _edited(tmp_path: Path, old: str, new: str) -> Path:
    root = tmp_path / "bm"
    shutil.copytree(DATA, root)
    f = root / "BasicMotions_TRAIN.ts"
    f.write_text(f.read_text().replace(old, new, 1))
    return root


@pytest.mark.parametrize("old,new,message", [
    ("@timeStamps false", "@timeStamps true", r"BasicMotions_TRAIN.ts: @timeStamps true is not supported"),
    ("@classLabel true Standing Running Walking Badminton", "@classLabel false",
     r"BasicMotions_TRAIN.ts: needs '@classLabel true"),
    ("@dimensions 6", "@dimensions 7", r"BasicMotions_TRAIN.ts, line 14: 6 dimensions, the header says 7"),
    (":Standing\n", ":Sitting\n", r"BasicMotions_TRAIN.ts, line 14: class label 'Sitting' is not declared"),
    ("0.079106,0.079106,", "0.079106,x,", r"BasicMotions_TRAIN.ts, line 14: not a number"),
])
def test_format_errors_name_the_file_and_line(tmp_path, old, new, message):
    a, us = units(_edited(tmp_path, old, new))
    with pytest.raises(SourceError, match=message):
        a.read_unit(us["BasicMotions_TRAIN"])


def test_missing_values_are_nan_and_unmapped_labels_are_an_error(tmp_path):
    root = _edited(tmp_path, "0.079106,0.079106,", "?,0.079106,")
    a, us = units(root)
    assert np.isnan(a.read_unit(us["BasicMotions_TRAIN"]).raw_signals[0].values[0]).all()
    root2 = _edited(tmp_path / "b", "Walking Badminton", "Walking Badminton Cricket")
    f = root2 / "BasicMotions_TRAIN.ts"
    f.write_text(f.read_text().replace(":Badminton\n", ":Cricket\n", 1))
    a, us = units(root2)
    with pytest.raises(SourceError, match=r"line \d+: class label 'Cricket' has no activity: add it to "
                                          r"sources\[bm\].options.labels"):
        a.read_unit(us["BasicMotions_TRAIN"])
    a, us = units(root2, labels={"Badminton": "racket_sports", "Running": "running", "Standing": "standing",
                                 "Walking": "walking", "Cricket": "other_exercise"})
    assert [b[2] for b in a.activity_bouts(us["BasicMotions_TRAIN"])] == [
        "standing", "running", "walking", "other_exercise", "racket_sports"]


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="labels maps {'Running': 'jogging'}"):
        adapter(DATA, labels={"Running": "jogging"})
    with pytest.raises(ConfigError, match="acc_dims must be three"):
        adapter(DATA, acc_dims=[0, 1])
    with pytest.raises(ConfigError, match="start_utc '2018-01-01 00:00' is not ISO 8601"):
        adapter(DATA, start_utc="2018-01-01 00:00")
    with pytest.raises(SourceError, match="options.acc_dims \\[4, 5, 6\\] needs 7"):
        a, us = units(acc_dims=[4, 5, 6])
        a.read_unit(us["BasicMotions_TRAIN"])

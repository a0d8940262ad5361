"""Empatica E4 folders: header rows, units, and raw signals turned into minute channels."""

from __future__ import annotations

import numpy as np
import pytest

from sensorpipe.config import SourceConfig
from sensorpipe.demo.synthetic import write_e4_study
from sensorpipe.processing import raw_features
from sensorpipe.schema.validate import CHANNEL_NAMES
from sensorpipe.sources.base import SourceError, make_adapter
from sensorpipe.sources.empatica_e4 import read_e4_signal


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_e4_study(tmp_path_factory.mktemp("e4"), 1, 1.0, seed=5)


def _adapter(root):
    return make_adapter(SourceConfig("lab", "empatica_e4", str(root), str(root / "participants.csv"),
                                     {"segments": "segments.csv"}), str(root))


def test_signals_have_rates_units_and_start(study):
    (unit,) = _adapter(study).list_units()
    inp = _adapter(study).read_unit(unit)
    by_kind = {s.kind: s for s in inp.raw_signals}
    assert {k: s.sample_rate_hz for k, s in by_kind.items()} == {"ppg": 64.0, "acc": 32.0, "eda": 4.0, "temp": 4.0}
    first = (study / unit.participant.participant_id / "BVP.csv").read_text().splitlines()[0]
    assert by_kind["ppg"].start_utc_ns == round(float(first) * 1e9)
    assert by_kind["acc"].values.shape[1] == 3 and by_kind["acc"].unit == "1/64 g"
    assert inp.n_raw_samples == sum(s.values.shape[0] for s in inp.raw_signals)


def test_minute_heart_rate_follows_the_devices_own_hr(study):
    (unit,) = _adapter(study).list_units()
    folder = study / unit.participant.participant_id
    bvp = read_e4_signal(folder / "BVP.csv")
    feats = raw_features.extract(bvp)
    assert {CHANNEL_NAMES[c] for c in feats.observations.channel} == set(raw_features.kind_channels()["ppg"])
    hr_obs = feats.primary()
    lines = (folder / "HR.csv").read_text().splitlines()
    start_s, hr = float(lines[0]), np.array(lines[2:], float)   # E4 HR.csv: 1 Hz from its start row
    minute = ((start_s + np.arange(hr.size)) // 60).astype(np.int64)
    device = {m: hr[minute == m].mean() for m in np.unique(minute)}
    ours = dict(zip(hr_obs.t_utc_ns // 60_000_000_000, hr_obs.value))
    both = sorted(set(device) & set(ours))
    assert len(both) >= 50
    diff = np.abs(np.array([ours[m] - device[m] for m in both]))
    assert np.median(diff) < 3.0 and np.mean(diff < 8.0) > 0.9


def test_enmo_and_eda_and_temperature_minutes(study):
    (unit,) = _adapter(study).list_units()
    folder = study / unit.participant.participant_id
    enmo = raw_features.extract(read_e4_signal(folder / "ACC.csv")).primary()
    assert (enmo.value >= 0).all() and np.median(enmo.value) < 60  # mostly at rest, in mg
    eda = raw_features.extract(read_e4_signal(folder / "EDA.csv")).primary()
    raw = np.array((folder / "EDA.csv").read_text().splitlines()[2:], float)
    assert abs(eda.value.mean() - raw[: eda.value.size * 240].mean()) < 0.5
    temp = raw_features.extract(read_e4_signal(folder / "TEMP.csv")).primary()
    assert 25 < temp.value.min() and temp.value.max() < 40


def test_enmo_of_a_known_amplitude_is_exact():
    from sensorpipe.core.inputs import RawSignal

    n = 32 * 120
    xyz = np.zeros((n, 3))
    xyz[:, 2] = 64 * 1.25      # a constant 1.25 g along z, in 1/64 g
    sig = RawSignal("acc", 1_700_000_040 * 10**9, 32.0, xyz, "1/64 g", "synthetic")
    obs = raw_features.extract(sig).primary()
    np.testing.assert_allclose(obs.value, 250.0)


@pytest.mark.parametrize("content, needle", [
    ("", "the file is empty"),
    ("1709798400.0\n", "needs row 1"),
    ("hello\nworld\n1\n", "not an E4"),
    ("12.0\n64.0\n1\n2\n", "is not a Unix time"),
    ("1709798400.0\n-5\n1\n", "sample rate"),
])
def test_bad_files_name_file_and_row(tmp_path, content, needle):
    p = tmp_path / "BVP.csv"
    p.write_text(content)
    with pytest.raises(SourceError) as e:
        read_e4_signal(p)
    assert "BVP.csv" in str(e.value) and needle in str(e.value)


from tests.sources.adapter_case import AdapterCase  # noqa: E402


class TestEmpaticaE4Adapter(AdapterCase):
    """The shared adapter checks on a 3-minute E4 session (tests/sources/dummy_data/empatica_e4)."""

    ADAPTER = "empatica_e4"
    DUMMY = "empatica_e4"
    PARTICIPANTS = "participants.csv"
    EXPECTED_UNITS = 1
    # the session starts at :19 s: 3 minutes have >= 50 % of their samples, the 4th only 19 s
    EXPECTED_CHANNELS = {"heart_rate": 3, "enmo": 3, "eda_level": 3, "skin_temperature": 3}
    EXPECTED_REASONS = {}
    MUTABLE = ("sl001/BVP.csv", "sl001/ACC.csv", "sl001/EDA.csv", "sl001/TEMP.csv")

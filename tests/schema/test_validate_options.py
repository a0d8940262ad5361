"""Validation options and rules for real exports: the plausible-time range, absurd values on clip
channels, and duplicates equal within a channel's tolerance."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import yaml

from sensorpipe import channels as registry
from sensorpipe.config import ConfigError, ValidationConfig, build_dataclass
from sensorpipe.core.observations import Observations
from sensorpipe.schema.validate import CHANNEL_INDEX, range_filter, validate_unit
from sensorpipe.sources.base import make_adapter
from tests.schema.test_validate import _source

ACTIGRAPHY_1997 = ["p1,1997-06-02T10:00:00Z,steps,14", "p1,1997-06-02T10:01:00Z,steps,22"]


def _validate(tmp_path, lines, validation: ValidationConfig | None = None):
    adapter = make_adapter(_source(tmp_path, lines), str(tmp_path))
    (unit,) = adapter.list_units()
    args = () if validation is None else (validation,)
    return validate_unit(adapter.read_unit(unit), adapter.schema(), *args)


def _validation(text: str) -> ValidationConfig:
    """The section as a pipeline YAML writes it (YAML reads an unquoted date as a date)."""
    return build_dataclass(ValidationConfig, yaml.safe_load(text), "validation")


def test_1997_actigraphy_is_implausible_by_default_and_accepted_with_an_earlier_range(tmp_path):
    res = _validate(tmp_path, ACTIGRAPHY_1997)
    assert res.reason_counts == {"implausible_time": 2} and len(res.observations) == 0
    assert set(res.quarantine.column("reason").to_pylist()) == {"implausible_time"}

    res = _validate(tmp_path, ACTIGRAPHY_1997, _validation("plausible_from: 1990-01-01"))
    assert res.reason_counts == {} and res.rows_in == 2
    obs = res.observations
    assert obs.value.tolist() == [14.0, 22.0]
    assert obs.t_utc_ns.tolist() == [int(np.datetime64("1997-06-02T10:00", "ns").astype(np.int64)),
                                     int(np.datetime64("1997-06-02T10:01", "ns").astype(np.int64))]


def test_plausible_until_is_exclusive_and_moves_the_upper_bound(tmp_path):
    lines = ["p1,2039-12-31T23:59:00Z,hr,60", "p1,2040-01-01T00:00:00Z,hr,61", "p1,2045-05-05T00:00:00Z,hr,62"]
    assert _validate(tmp_path, lines).reason_counts == {"implausible_time": 2}
    res = _validate(tmp_path, lines, _validation("plausible_until: '2050-01-01'"))   # quoted works too
    assert res.reason_counts == {} and res.observations.value.tolist() == [60.0, 61.0, 62.0]


def test_plausible_range_is_checked_with_the_key_named():
    assert ValidationConfig().plausible_utc_ns == (946_684_800 * 10**9, 2_208_988_800 * 10**9)
    with pytest.raises(ConfigError, match=r"validation: plausible_from \(2040-01-01\) must be before plausible_until"):
        _validation("plausible_from: 2040-01-01\nplausible_until: 2000-01-01")
    with pytest.raises(ConfigError, match=r"validation.plausible_from: '1st of May' is not an ISO date; write YYYY-MM-DD"):
        _validation("plausible_from: 1st of May")
    with pytest.raises(ConfigError, match=r"validation.plausible_until: expected an ISO date"):
        _validation("plausible_until: 2040-01-01 12:00:00")      # YAML reads a datetime: a date is asked
    with pytest.raises(ConfigError, match=r"validation.plausible_from: 1500-01-01 is outside 1678-01-01"):
        _validation("plausible_from: 1500-01-01")
    with pytest.raises(ConfigError, match=r"unknown key validation.plausible_form"):
        _validation("plausible_form: 1990-01-01")


def test_the_range_is_part_of_the_config_fingerprint(base_config, tmp_path):
    from sensorpipe.config import load_config

    a = load_config(base_config, base_dir=str(tmp_path))
    b = load_config({**base_config, "validation": {"plausible_from": dt.date(1990, 1, 1)}}, base_dir=str(tmp_path))
    c = load_config({**base_config, "validation": {"strict": True}}, base_dir=str(tmp_path))
    assert a.fingerprint() != b.fingerprint()      # cached units must be redone: other rows pass
    assert a.fingerprint() == c.fingerprint()      # strict mode changes no record


def test_non_finite_and_absurd_glucose_is_quarantined_not_clipped(tmp_path):
    lines = ["p1,2024-03-04T10:00:00Z,glucose,inf", "p1,2024-03-04T10:01:00Z,glucose,1e308",
             "p1,2024-03-04T10:02:00Z,glucose,-inf", "p1,2024-03-04T10:03:00Z,glucose,1181",
             "p1,2024-03-04T10:04:00Z,glucose,650",      # a CGM's HIGH just past the range: still clipped
             "p1,2024-03-04T10:05:00Z,glucose,1180",     # the edge of the rule: range width (580) past 600
             "p1,2024-03-04T10:06:00Z,glucose,12"]       # LOW: clipped to 20
    res = _validate(tmp_path, lines)
    assert res.reason_counts == {"out_of_range": 4}
    q = res.quarantine.to_pandas()
    assert sorted(q.value) == sorted(["inf", "1e308", "-inf", "1181"])
    assert res.clipped == {"glucose": 3}
    assert res.observations.value.tolist() == [600.0, 600.0, 20.0]
    assert res.rows_in == len(res.observations) + res.rows_quarantined


def test_range_filter_drops_implausible_and_absurd_minute_features():
    g, hr = CHANNEL_INDEX["glucose"], CHANNEL_INDEX["enmo"]
    minute = 60 * 10**9
    t0 = int(np.datetime64("2024-03-04T10:00", "ns").astype(np.int64))
    t2100 = int(np.datetime64("2100-01-01T00:00", "ns").astype(np.int64))
    obs = Observations(np.array([g, g, hr, hr, hr], np.int16),
                       np.array([t0, t0 + minute, t0, t2100, t0 + minute], np.int64),
                       np.array([np.inf, 700.0, 5000.0, 10.0, np.nan]), np.zeros(5, np.int32),
                       np.arange(5, dtype=np.int64), ["f"], np.arange(5, dtype=np.int64))
    kept, counts = range_filter(obs)
    assert counts == {"implausible_time": 1, "out_of_range": 1, "clipped": 2}
    assert kept.value[:2].tolist() == [600.0, 4000.0] and np.isnan(kept.value[2])   # NaN features stay NaN
    kept, counts = range_filter(obs.take(np.array([3])), ValidationConfig(plausible_until=dt.date(2200, 1, 1)))
    assert counts == {} and kept.value.tolist() == [10.0]


def test_duplicates_within_the_channel_tolerance_keep_the_first_copy(tmp_path):
    assert registry.get("distance").duplicate_tolerance == 0.01
    assert registry.get("heart_rate").duplicate_tolerance == 0.0
    lines = ["p1,2024-03-04T10:00:00Z,distance,6.68", "p1,2024-03-04T10:00:00Z,distance,6.680002212524414",
             "p1,2024-03-04T10:00:01Z,distance,7.0", "p1,2024-03-04T10:00:01Z,distance,7.5",
             "p1,2024-03-04T10:00:02Z,hr,80", "p1,2024-03-04T10:00:02Z,hr,80.001"]   # heart rate: exact only
    src = _source(tmp_path, lines)
    src.options["fields"]["distance"] = {"channel": "distance", "unit": "m/min"}
    adapter = make_adapter(src, str(tmp_path))
    (unit,) = adapter.list_units()
    res = validate_unit(adapter.read_unit(unit), adapter.schema())
    assert res.reason_counts == {"exact_duplicate": 1, "conflicting_duplicate": 4}
    assert res.observations.value.tolist() == [6.68]                      # the first copy's value
    q = res.quarantine.to_pandas().set_index("value")
    assert q.loc["6.680002212524414", "reason"] == "exact_duplicate"
    assert set(q.index[q.reason == "conflicting_duplicate"]) == {"7.0", "7.5", "80", "80.001"}


def test_readme_names_every_duplicate_tolerance():
    from tests.test_readme import README

    text = README.read_text()
    tolerant = {c.name: c.duplicate_tolerance for c in registry.CHANNELS.values() if c.duplicate_tolerance}
    assert tolerant == {"distance": 0.01, "calories": 0.001, "skin_temperature": 0.01}
    for name, tol in tolerant.items():
        assert f"`{name}` {tol:g}" in text
    assert all(c.duplicate_tolerance >= 0 for c in registry.CHANNELS.values())

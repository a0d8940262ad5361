"""Written values, denormalized, equal a direct recomputation from the source rows."""

from __future__ import annotations

from zoneinfo import ZoneInfo
import datetime as dt

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

import sensorpipe
from sensorpipe.privacy.pseudonym import pseudonym
from tests.conftest import KEY


def _windows_of(ds, dataset: str):
    for split in ds.splits:
        for i in range(len(ds[split])):
            ex = ds[split][i]
            if ex["dataset"] == dataset:
                yield ex


def _participant_of(ex, dataset: str, ids: list[str]) -> str:
    pid = {pseudonym(KEY.encode(), dataset, p): p for p in ids}
    return pid[ex["participant_id"]]


def _window_minutes(ex) -> np.ndarray:
    W = ex["input"].shape[0]
    return ex["start_utc"] // 60 + np.arange(W)


def test_heart_rate_mean_and_steps_sum_per_minute(local_run, sources_dir):
    ds = sensorpipe.open(local_run.output_dir)
    hr_j, steps_j = ds.channels.index("heart_rate"), ds.channels.index("steps")
    ids = pd.read_csv(sources_dir / "fitbit_cohort" / "participants.csv").participant_id.tolist()
    checked, masked_minutes = 0, 0
    for ex in _windows_of(ds, "fitbit_cohort"):
        pid = _participant_of(ex, "fitbit_cohort", ids)
        rows = pq.read_table(sources_dir / "fitbit_cohort" / "minute" / f"{pid}.parquet").to_pandas()
        rows["minute"] = rows.timestamp_ms // 60_000
        minutes = _window_minutes(ex)
        values = ds.denormalize(ex["input"])
        for metric, j, agg in (("heart_rate", hr_j, "mean"), ("steps", steps_j, "sum")):
            per_min = rows[rows.metric == metric].groupby("minute").value.agg(agg)
            expected = per_min.reindex(minutes).to_numpy()
            observed = ~np.isnan(expected)
            np.testing.assert_array_equal(~ex["mask"][:, j], observed)   # no rows <=> masked
            np.testing.assert_allclose(values[observed, j], expected[observed], rtol=1e-5, atol=2e-3)
            assert observed.any()
            masked_minutes += int((~observed).sum())
        checked += 1
    assert checked >= 8
    assert masked_minutes > 60   # off-wrist gaps were checked as masked, not only observed minutes


def test_cgm_readings_land_in_their_minutes(local_run, sources_dir):
    ds = sensorpipe.open(local_run.output_dir)
    j = ds.channels.index("glucose")
    parts = pd.read_csv(sources_dir / "metabolic_study" / "participants.csv")
    zones = dict(zip(parts.participant_id, parts.tz))
    seen_units = set()
    for ex in _windows_of(ds, "metabolic_study"):
        pid = _participant_of(ex, "metabolic_study", list(zones))
        # the demo ships the CGM as Dexcom Clarity exports (a second source of the study): read the EGV rows
        cgm = pd.read_csv(sources_dir / "metabolic_study" / "cgm" / f"{pid}.csv", encoding="utf-8-sig", dtype=str)
        unit = "mmol/L" if "Glucose Value (mmol/L)" in cgm.columns else "mg/dL"
        egv = cgm[cgm["Event Type"] == "EGV"]
        tz = ZoneInfo(zones[pid])
        # independent recomputation: Python's zoneinfo (fold=0: first occurrence) per reading
        utc_min = [int(dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=tz).timestamp()) // 60
                   for s in egv["Timestamp (YYYY-MM-DDThh:mm:ss)"]]
        text = egv[f"Glucose Value ({unit})"]
        value = pd.to_numeric(text, errors="coerce").to_numpy() * (18.0156 if unit == "mmol/L" else 1.0)
        value = np.where(text == "Low", -1.0, np.where(text == "High", np.inf, value))   # censored: checked below
        expected = pd.Series(value, index=utc_min).groupby(level=0).last().reindex(_window_minutes(ex)).to_numpy()
        has = ~np.isnan(expected)
        np.testing.assert_array_equal(~ex["mask"][:, j], has)
        got = ds.denormalize(ex["input"])[:, j]
        real = has & np.isfinite(expected) & (expected > 0)
        np.testing.assert_allclose(got[real], expected[real], rtol=1e-5, atol=1e-2)
        assert (got[expected == -1.0] <= 40).all() and (got[expected == np.inf] >= 400).all()
        assert 250 <= has.sum() <= 288   # a reading every 5 minutes, with sensor gaps
        seen_units.add(unit)
    assert seen_units == {"mg/dL", "mmol/L"}

"""Activity labels in the written demo dataset come from the cohorts' exercise logs (shared local run)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import sensorpipe
from sensorpipe.core.labels import BY_NAME
from sensorpipe.privacy.pseudonym import pseudonym
from tests.conftest import KEY

NAMES = BY_NAME["activity"].names
MIN_NS = 60_000_000_000


def _log(sources_dir, dataset: str) -> dict[str, pd.DataFrame]:
    log = pd.read_csv(sources_dir / dataset / "activities.csv")
    log["s"] = pd.to_datetime(log.start, utc=True).dt.as_unit("ns").astype("int64") // MIN_NS
    log["e"] = pd.to_datetime(log.end, utc=True).dt.as_unit("ns").astype("int64") // MIN_NS
    return {pseudonym(KEY.encode(), dataset, p): rows for p, rows in log.groupby("participant_id")}


def test_day_windows_carry_the_logged_activity_with_most_minutes(local_run, sources_dir):
    ds = sensorpipe.open(local_run.output_dir)
    logs = {d: _log(sources_dir, d) for d in ("fitbit_cohort", "covid_cohort")}
    checked = {"fitbit_cohort": 0, "covid_cohort": 0}
    for ex in (ex for split in ds.splits for ex in ds[split]):
        dataset, code = ex["dataset"], int(ex["labels"]["activity"])
        if dataset not in logs:
            assert code == -1                                  # no activity source: explicitly missing
            continue
        s = int(ex["start_utc"]) // 60
        rows = logs[dataset].get(ex["participant_id"], pd.DataFrame(columns=["s", "e", "type"]))
        cover = {k: int(np.clip(np.minimum(rows.e[rows.type == k], s + 1440) - np.maximum(rows.s[rows.type == k], s),
                                0, None).sum()) for k in ("walking", "running")}
        want = -1 if not any(cover.values()) else NAMES.index(max(cover, key=lambda k: (cover[k], -NAMES.index(k))))
        assert code == want
        checked[dataset] += code >= 0
    assert min(checked.values()) >= 2

"""The plausible-time range reaches validation in the run's worker processes (it travels in the config)."""

from __future__ import annotations

import numpy as np
import pytest

from sensorpipe.runners.driver import run_pipeline

KEY = "0123456789abcdef0123456789abcdef"


def _actigraphy_1997(root):
    """Two participants of a 1997 actigraphy study and one re-measured in 2024: a day of minute steps each."""
    (root / "acti").mkdir(parents=True)
    lines = ["participant,time,field,value"]
    for p, (pid, day) in enumerate((("a01", "1997-06-02"), ("a02", "1997-06-02"), ("b01", "2024-06-03"))):
        t = np.datetime64(f"{day}T00:00") + np.arange(1440)
        steps = (np.arange(1440) * (p + 3)) % 40
        lines += [f"{pid},{str(ti)}:00Z,steps,{s}" for ti, s in zip(t, steps)]
    (root / "acti" / "steps.csv").write_text("\n".join(lines) + "\n")
    (root / "pseudonym.key").write_text(KEY)


def _config(root, validation: dict | None) -> dict:
    cfg = {
        "sources": [{"name": "acti", "adapter": "long_table", "path": str(root / "acti"), "options": {
            "tz": "UTC",
            "files": [{"glob": "*.csv", "participant_column": "participant", "field_column": "field",
                       "time_column": "time", "time_format": "iso", "value_column": "value"}],
            "fields": {"steps": {"channel": "steps", "unit": "steps/min"}}}}],
        "channels": ["steps"],
        "window": {"size_min": 720, "stride_min": 720, "alignment": "utc_midnight", "max_missing_ratio": 0.5},
        "splits": {"train": 0.5, "validation": 0.25, "test": 0.25},
        "output": {"dir": str(root / "out"), "name": "acti", "version": "1.0.0", "formats": ["array_record"]},
        "runner": {"name": "multiprocess", "workers": 2},
        "privacy": {"pseudonymize": True, "key_file": str(root / "pseudonym.key")},
    }
    if validation is not None:
        cfg["validation"] = validation
    return cfg


@pytest.mark.parametrize("validation, participants_kept", [(None, 1), ({"plausible_from": "1990-01-01"}, 3)])
def test_1997_recordings_in_a_multiprocess_run(tmp_path, validation, participants_kept):
    _actigraphy_1997(tmp_path)
    result = run_pipeline(_config(tmp_path, validation))
    assert result.rows_in == 3 * 1440
    assert result.rows_accepted == participants_kept * 1440
    assert result.quarantine_by_reason == ({"implausible_time": 2 * 1440} if participants_kept == 1 else {})
    assert result.windows_kept == 2 * participants_kept          # two 12-hour windows per participant day

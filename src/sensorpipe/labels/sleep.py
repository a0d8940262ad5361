"""Sleep labels of a window, from its ``sleep_stage`` channel (codes 0 awake, 1 light, 2 deep, 3 REM, 4 asleep).

Only observed minutes count: a minute the device did not stage (off-wrist,
daytime for trackers that stage only at night, a channel not in the output)
is unknown, never "awake". So a window with no observed stage has every sleep
label missing (-1 / NaN), and ``total_sleep_min`` is the sleep the device
saw, not an estimate of the whole window.
"""

from __future__ import annotations

import numpy as np

from sensorpipe.core.labels import SLEEP_STAGES
from sensorpipe.labels.base import ChannelLabelProcessor

AWAKE = SLEEP_STAGES.index("awake")


def sleep_labels(stage: np.ndarray, observed: np.ndarray) -> dict[str, np.ndarray]:
    """``sleep_stage``, ``sleep_stage_sequence`` and ``total_sleep_min`` of windows ``[N, W]``."""
    n_codes = len(SLEEP_STAGES)
    code = np.rint(np.nan_to_num(stage, nan=-1.0)).astype(np.int64)
    valid = observed & (code >= 0) & (code < n_codes)
    seq = np.where(valid, code, -1)
    counts = np.stack([(seq == k).sum(axis=1) for k in range(n_codes)], axis=1)   # [N, stages]
    seen = valid.any(axis=1)
    summary = np.where(seen, counts.argmax(axis=1), -1)      # ties: the lower code
    asleep = (valid & (code != AWAKE)).sum(axis=1).astype(np.float32)
    return {"sleep_stage": summary, "sleep_stage_sequence": seq,
            "total_sleep_min": np.where(seen, asleep, np.nan).astype(np.float32)}


class SleepStages(ChannelLabelProcessor):
    """Sleep labels of every window of a unit whose output channels include ``sleep_stage``."""

    name = "sleep_stages"
    produces = ("sleep_stage", "sleep_stage_sequence", "total_sleep_min")
    channel_name = "sleep_stage"

    def from_channel(self, values, observed):
        return sleep_labels(values, observed)

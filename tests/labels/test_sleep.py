"""Sleep labels from observed sleep_stage minutes only; unobserved is missing, never awake."""

from __future__ import annotations

import numpy as np

from sensorpipe.labels.base import labels_for_windows
from tests.labels._channels import channel_batch

NAN = np.nan


def test_summary_sequence_and_total_from_observed_minutes():
    night = np.array([0] * 10 + [1] * 20 + [2] * 15 + [3] * 5 + [NAN] * 10)   # 60 min, 10 unobserved
    awake_only = np.array([0.0] * 30 + [NAN] * 30)
    batch = channel_batch({"sleep_stage": np.stack([night, np.full(60, NAN), awake_only]),
                           "heart_rate": np.full((3, 60), 55.0)})
    labels = labels_for_windows(batch)
    assert labels["sleep_stage"].tolist() == [1, -1, 0]            # light is the most frequent stage
    assert labels["total_sleep_min"][0] == 40.0
    assert np.isnan(labels["total_sleep_min"][1])                   # nothing observed: missing, not 0
    assert labels["total_sleep_min"][2] == 0.0                      # observed awake: truly no sleep
    seq = labels["sleep_stage_sequence"]
    assert seq.shape == (3, 60)
    assert seq[0].tolist() == [0] * 10 + [1] * 20 + [2] * 15 + [3] * 5 + [-1] * 10
    assert (seq[1] == -1).all() and seq[2, :30].tolist() == [0] * 30 and (seq[2, 30:] == -1).all()


def test_unstaged_sleep_counts_as_sleep():
    labels = labels_for_windows(channel_batch({"sleep_stage": np.array([[4.0] * 25 + [0.0] * 5]),
                                               "steps": np.zeros((1, 30))}))
    assert labels["sleep_stage"].tolist() == [4] and labels["total_sleep_min"].tolist() == [25.0]


def test_missing_without_the_channel():
    labels = labels_for_windows(channel_batch({"heart_rate": np.full((2, 30), 60.0)}))
    assert labels["sleep_stage"].tolist() == [-1, -1]
    assert (labels["sleep_stage_sequence"] == -1).all() and np.isnan(labels["total_sleep_min"]).all()

"""Shared literal types, so configs and registries spell options one way."""

from __future__ import annotations

from typing import Literal

Aggregation = Literal["mean", "sum", "max", "min", "last", "mode"]
ImputeMethod = Literal["none", "zero", "mean", "window_mean", "ffill", "linear", "lsm"]
NormalizeMethod = Literal["zscore", "robust", "minmax", "log1p", "none"]
OutOfRange = Literal["quarantine", "clip"]
CaptionGroup = Literal["Heart", "Activity", "Sleep", "EDA", "Temperature", "Metabolic"]
Alignment = Literal["none", "utc_midnight", "local_midnight"]
RunnerName = Literal["local", "multiprocess", "beam"]
StartMethod = Literal["auto", "fork", "forkserver", "spawn"]
RunnerTuning = Literal["none", "fast"]
OutputFormat = Literal["array_record", "tfrecord"]
SplitName = Literal["train", "validation", "test"]
MissingnessBasis = Literal["measured", "all_channels"]

IMPUTE_METHODS: tuple[str, ...] = ("none", "zero", "mean", "window_mean", "ffill", "linear", "lsm")
NORMALIZE_METHODS: tuple[str, ...] = ("zscore", "robust", "minmax", "log1p", "none")
ALIGNMENTS: tuple[str, ...] = ("none", "utc_midnight", "local_midnight")
RUNNERS: tuple[str, ...] = ("local", "multiprocess")
OUTPUT_FORMATS: tuple[str, ...] = ("array_record", "tfrecord")

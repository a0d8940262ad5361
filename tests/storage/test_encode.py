"""The planned record encoder writes exactly the bytes of TFDS's serializer (deterministic map order)."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from sensorpipe.core.labels import LABELS
from sensorpipe.storage.encode import PlannedEncoder, map_order, written_order
from sensorpipe.storage.features import build_features, layout_of
from sensorpipe.storage.layout import RecordLayout, record_layout

CHANNELS = ("heart_rate", "steps", "sleep_stage")
LEVELS = ("statistical", "structural")
W = 30


class RecordEncoder:
    """The reference the planned encoder is held to: TFDS's own encoding, serialized with deterministic
    protobuf map order.

    ``FeaturesDict.serialize_example`` calls ``SerializeToString()``, whose map
    order depends on the process's string hash seed, so two processes would
    write different bytes for the same example; sorting the map keeps the bytes
    identical while TFDS parses them as usual.
    """

    def __init__(self, features) -> None:
        from tensorflow_datasets.core import example_serializer

        self.features = features
        self._serializer = example_serializer.ExampleSerializer(features.get_serialized_info())

    def encode(self, example: dict) -> bytes:
        proto = self._serializer.get_tf_example(self.features.encode_example(example))
        return proto.SerializeToString(deterministic=True)


@pytest.fixture(scope="module")
def encoders():
    features = build_features(CHANNELS, W, LEVELS)
    return RecordEncoder(features), PlannedEncoder(record_layout(CHANNELS, W, LEVELS))


def _labels(rng: np.random.Generator) -> dict:
    out = {}
    for spec in LABELS:
        if spec.kind == "class":
            out[spec.name] = -1
        elif spec.kind == "sequence":
            out[spec.name] = rng.integers(-1, len(spec.names), W).astype(np.int8)
        else:
            out[spec.name], out[f"has_{spec.name}"] = math.nan, False
    return out


def _example(seed: int = 0, **changes) -> dict:
    rng = np.random.default_rng(seed)
    ex = {"input": rng.normal(size=(W, 3)).astype(np.float32), "mask": rng.random((W, 3)) < 0.3,
          "time": rng.integers(0, 60, (W, 4)).astype(np.int16), "missingness_ratio": 0.3,
          "participant_id": "p-1", "dataset": "fitbit", "sources": "fitbit", "start_utc": 1_700_000_000,
          "tz_offset_min": -300,
          "key": "fitbit/p-1/2023-11-14T22:13:20Z", "caption": "Heart rate rose.", "caption_claims": "[]",
          "events": "[]", "caption_statistical": "mean 61 bpm", "caption_structural": "", "labels": _labels(rng),
          "missing_ratio_per_channel": rng.random(3).astype(np.float32),
          "longest_gap_min": rng.integers(0, W, 3).astype(np.int32)}
    for k, v in changes.items():
        if k.startswith("labels/"):
            ex["labels"] = {**ex["labels"], k.split("/", 1)[1]: v}
        else:
            ex[k] = v
    return ex


def test_every_record_of_a_pipeline_run_is_what_tfds_writes(local_run):
    """Stored records == TFDS's encoding of their decoded values == the planned encoding (every record)."""
    import tensorflow_datasets as tfds
    from array_record.python import array_record_module

    features = tfds.builder_from_directory(local_run.version_dir).info.features
    reference, planned = RecordEncoder(features), PlannedEncoder(layout_of(features))
    n = 0
    for path in sorted(Path(local_run.version_dir).glob("*.array_record-*")):
        for record in array_record_module.ArrayRecordReader(str(path)).read_all():
            example = features.deserialize_example_np(record)   # numpy scalars, bytes texts: other input types
            assert reference.encode(example) == record
            assert planned.encode(example) == record
            n += 1
    assert n == sum(local_run.split_sizes.values()) > 20


def test_the_layout_round_trips_through_the_features_dict():
    """features.json (docs included) is the layout, and reading it back gives the same layout."""
    for channels, size, levels in [(CHANNELS, W, LEVELS), (("heart_rate",), 1440, ()), (CHANNELS, 5, ("semantic",))]:
        layout = record_layout(channels, size, levels)
        features = build_features(channels, size, levels)
        assert layout_of(features) == layout
        assert [f.key for f in layout.fields][len(layout.fields) - len(levels):] == [f"caption_{lv}" for lv in levels]
        assert features["input"].shape == (size, len(channels))
        assert features["input"].doc.desc.endswith(", ".join(channels) + ".")
        written = [f.key for f in written_order(layout)]
        assert written == sorted(written, key=map_order) and sorted(written) == sorted(f.key for f in layout.fields)
    keys = [f.key for f in written_order(record_layout(CHANNELS, W, LEVELS))]
    # protobuf (upb) writes a key after the longer keys it prefixes
    assert keys.index("caption_claims") < keys.index("caption")
    assert keys.index("labels/sleep_stage_sequence") < keys.index("labels/sleep_stage")
    unit = next(spec for spec in LABELS if spec.kind == "float" and spec.unit)
    assert build_features(CHANNELS, W, LEVELS)["labels"][unit.name].doc.value_range == unit.unit


def test_a_layout_the_planned_codecs_do_not_take_is_refused_by_name():
    import tensorflow_datasets as tfds

    ragged = tfds.features.FeaturesDict({"ok": tfds.features.Text(), "x": tfds.features.Tensor(
        shape=(None,), dtype=np.float32, encoding=tfds.features.Encoding.BYTES)})
    with pytest.raises(ValueError, match="feature x"):
        layout_of(ragged)
    with pytest.raises(ValueError, match="feature s"):
        layout_of(tfds.features.FeaturesDict({"s": tfds.features.Tensor(shape=(2,), dtype=np.object_)}))


@pytest.mark.parametrize("changes", [
    {},
    {"missingness_ratio": math.nan, "labels/bmi": math.inf, "labels/has_bmi": True},     # NaN and inf floats
    {"missingness_ratio": 1e40, "labels/hypo_events": -0.0},                             # float32 overflow -> inf
    {"missingness_ratio": np.float32(0.1), "labels/bmi": np.float64(23.123456789)},     # numpy scalars, rounding
    {"tz_offset_min": -720, "start_utc": -86_400},                                       # negative ints: 10-byte varints
    {"tz_offset_min": np.int64(840), "start_utc": np.int32(5), "labels/has_bmi": np.bool_(True)},
    {"labels/sex": 1, "labels/activity": np.int64(-1), "labels/condition": True},        # class labels, -1 missing
    {"labels/sex": "female", "labels/activity": b"running"},                             # class names
    {"caption": "", "participant_id": "", "caption_structural": ""},                     # empty text
    {"caption": "Schlaf 22:30–06:10, Ø 58 bpm ✓ 睡眠", "dataset": b"bytes \xff text"},    # non-ASCII, raw bytes
    {"caption": "x" * 200_000, "events": np.array("as array", dtype=object)},           # long text, 0-d array
    {"labels/sleep_stage_sequence": np.full(W, -1, np.int8)},                            # per-minute int8 codes
    {"labels/sleep_stage_sequence": list(range(-1, W - 1))},                             # a list is converted
    {"input": np.asfortranarray(np.arange(W * 3, dtype=np.float32).reshape(W, 3))},    # C-order bytes
    {"input": np.full((W, 3), np.nan, np.float32), "mask": np.ones((W, 3), bool)},
    {"longest_gap_min": [1, 2, 3], "missing_ratio_per_channel": (0.5, 0.25, 1.0)},     # sequences are converted
])
def test_planned_bytes_equal_tfds_bytes(encoders, changes):
    reference, planned = encoders
    ex = _example(**changes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # numpy warns on the float32 overflow, in both paths
        expected = reference.encode(ex)
        assert planned.encode(ex) == expected


@pytest.mark.parametrize("changes, error", [
    ({"input": np.zeros((W, 3), np.float64)}, ValueError),          # an array must already have the dtype
    ({"input": np.zeros((W, 4), np.float32)}, ValueError),          # and the shape
    ({"mask": "yes"}, TypeError),                                    # a string is no bool
    ({"labels/sex": 7}, ValueError),                                 # class label out of range
    ({"labels/sex": -2}, ValueError),
    ({"labels/sex": "unknown-name"}, KeyError),
    ({"tz_offset_min": 2 ** 40}, OverflowError),                     # int32 scalar out of range
    ({"caption": 5}, TypeError),                                     # not a string
    ({"caption": np.array(["a", "b"], dtype=object)}, ValueError),   # not a scalar
    ({"unexpected": 1}, KeyError),                                   # a key the features do not have
    ({"labels/unexpected": 1}, KeyError),
])
def test_planned_encoder_refuses_what_tfds_refuses(encoders, changes, error):
    reference, planned = encoders
    ex = _example(**changes)
    with pytest.raises((error, RuntimeError)):   # TFDS re-raises some errors of nested features as RuntimeError
        reference.encode(ex)
    with pytest.raises(error):
        planned.encode(ex)


def test_a_missing_key_is_an_error(encoders):
    reference, planned = encoders
    for drop in ("caption", "labels"):
        ex = {k: v for k, v in _example().items() if k != drop}
        with pytest.raises(KeyError):
            reference.encode(ex)
        with pytest.raises(KeyError):
            planned.encode(ex)


def test_layout_pickles_and_encodes_without_importing_tfds(encoders):
    """Workers get the layout (a frozen dataclass) and never import tensorflow_datasets to encode."""
    reference, planned = encoders
    clone = pickle.loads(pickle.dumps(planned))
    assert isinstance(clone.layout, RecordLayout) and clone.layout == planned.layout
    ex = _example(3)
    code = ("import pickle, sys\n"
            "from sensorpipe.storage.layout import record_layout\n"
            "from sensorpipe.storage.encode import encoder_for\n"
            "ex = pickle.loads(sys.stdin.buffer.read())\n"
            f"enc = encoder_for(record_layout({CHANNELS!r}, {W}, {LEVELS!r}))\n"
            "sys.stdout.buffer.write(enc.encode(ex))\n"
            "assert 'tensorflow_datasets' not in sys.modules, 'encoding imported TFDS'\n")
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(ex), capture_output=True, check=True)
    assert out.stdout == reference.encode(ex)

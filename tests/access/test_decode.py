"""The fast decoder returns exactly what TFDS's own decode returns, for every field of every record."""

from __future__ import annotations

import numpy as np
import pytest

import sensorpipe
from sensorpipe.access.decode import FastDecoder, compiled_available
from sensorpipe.storage.features import layout_of

PATHS = {True: "compiled", False: "exact"}


def _raw_example_class():
    """A message class with the wire format of ``tf.train.Example`` whose features map to raw ``Feature`` bytes
    (to take a record apart and lay it out otherwise)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="sensorpipe_raw_example.proto", package="sensorpipe_raw",
                                               syntax="proto3")
    feats = proto.message_type.add(name="RawFeatures")
    entry = feats.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=field.TYPE_BYTES, label=field.LABEL_OPTIONAL)
    feats.field.add(name="feature", number=1, type=field.TYPE_MESSAGE, label=field.LABEL_REPEATED,
                    type_name=".sensorpipe_raw.RawFeatures.FeatureEntry")
    example = proto.message_type.add(name="RawExample")
    example.field.add(name="features", number=1, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL,
                      type_name=".sensorpipe_raw.RawFeatures")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("sensorpipe_raw.RawExample"))


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)  # same key order
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a, b, equal_nan=True) and a.flags.writeable == b.flags.writeable
                and a.flags.aligned)
    return type(a) is type(b) and (a == b or (a != a and b != b))


def test_the_compiled_decoder_is_built_where_a_compiler_is():
    """`pip install -e .` builds sensorpipe.access._wire; a silently failed build would only show up as slow reads."""
    import shutil
    import sysconfig

    if not shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]):
        pytest.skip("no C compiler on this machine: records decode through protobuf")
    assert compiled_available(), ("sensorpipe.access._wire is missing or stale: rerun `pip install -e .` "
                                  "(make rebuilds it)")


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "exact"])
def test_fast_decoder_equals_tfds_for_every_record(local_run, compiled):
    if compiled and not compiled_available():
        pytest.skip("sensorpipe.access._wire is not built")
    ds = sensorpipe.open(local_run.output_dir)
    decoder = FastDecoder(ds.features, compiled=compiled)
    assert decoder.path == PATHS[compiled]
    n = 0
    for split in ds.splits.values():
        for i in range(len(split)):
            record = split.raw(i)
            assert _same(decoder(record), ds.features.deserialize_example_np(record)), (split.name, i)
            n += 1
    assert n == sum(local_run.split_sizes.values())
    assert (decoder._fast is not None) == compiled and decoder._misses == 0  # every record took the first path


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "exact"])
def test_records_laid_out_otherwise_take_the_exact_path(local_run, compiled):
    """A record the compiled plan does not expect (here: an unpacked float list) decodes exactly all the same."""
    from tensorflow_datasets.proto import tf_example_pb2

    if compiled and not compiled_available():
        pytest.skip("sensorpipe.access._wire is not built")

    ds = sensorpipe.open(local_run.output_dir)
    record = ds["train"].raw(0)
    example = tf_example_pb2.Example.FromString(record)
    key = next(k for k, f in example.features.feature.items()
               if f.WhichOneof("kind") == "float_list" and f.float_list.value[0] == f.float_list.value[0])  # not NaN
    value = example.features.feature[key].float_list.value[0]
    raw = _raw_example_class().FromString(record)  # feature name -> Feature bytes, kept as written
    # field 2 (float_list) holding FloatList{value: one unpacked fixed32}: valid protobuf, not what TFDS writes
    raw.features.feature[key] = b"\x12\x05\x0d" + np.float32(value).tobytes()
    other = raw.SerializeToString()
    assert tf_example_pb2.Example.FromString(other).features.feature[key].float_list.value[0] == value
    decoder = FastDecoder(ds.features, compiled=compiled)
    assert _same(decoder(other), ds.features.deserialize_example_np(other))
    assert decoder._misses == int(compiled) and (decoder._fast is not None) == compiled
    assert _same(decoder(record), ds.features.deserialize_example_np(record)) and decoder._misses == int(compiled)


def test_decoder_survives_pickling_and_falls_back_for_unplanned_layouts(local_run):
    import pickle

    import tensorflow_datasets as tfds

    ds = sensorpipe.open(local_run.output_dir)
    record = ds["train"].raw(0)
    decoder = pickle.loads(pickle.dumps(FastDecoder(ds.features)))  # workers re-plan from the features
    assert _same(decoder(record), ds.features.deserialize_example_np(record))
    ragged = tfds.features.FeaturesDict({"x": tfds.features.Tensor(shape=(None,), dtype=np.float32,
                                                                   encoding=tfds.features.Encoding.BYTES)})
    blob = ragged.serialize_example({"x": np.arange(3, dtype=np.float32)})
    decoder = FastDecoder(ragged)
    assert decoder.path == "tfds"  # no static shape: TFDS's own decode
    np.testing.assert_array_equal(decoder(blob)["x"], np.arange(3, dtype=np.float32))


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "exact"])
def test_fast_paths_copy_payloads_a_view_would_misalign(compiled):
    """A float32 tensor of 400 bytes sits behind a 6-byte header: the compiled path copies it (aligned)
    instead of viewing it, and both paths return what TFDS returns."""
    import tensorflow_datasets as tfds

    if compiled and not compiled_available():
        pytest.skip("sensorpipe.access._wire is not built")
    features = tfds.features.FeaturesDict({
        "x": tfds.features.Tensor(shape=(100,), dtype=np.float32, encoding=tfds.features.Encoding.BYTES),
        "n": tfds.features.Scalar(dtype=np.int64), "t": tfds.features.Text(),
        "flag": tfds.features.Scalar(dtype=np.bool_), "f": tfds.features.Scalar(dtype=np.float32)})
    decoder = FastDecoder(features, compiled=compiled)
    for n in (-1, 0, 5, 2**40):
        record = features.serialize_example({"x": np.linspace(-1, 1, 100, dtype=np.float32), "n": n,
                                             "t": "é" * 70, "flag": n > 0, "f": 0.25 * n})
        got = decoder(record)
        assert _same(got, features.deserialize_example_np(record)) and got["n"] == n
    assert decoder.path == PATHS[compiled] and decoder._misses == 0


def _small_features():
    import tensorflow_datasets as tfds

    return tfds.features.FeaturesDict({
        "x": tfds.features.Tensor(shape=(3, 2), dtype=np.float32, encoding=tfds.features.Encoding.BYTES),
        "m": tfds.features.Tensor(shape=(3, 2), dtype=np.bool_, encoding=tfds.features.Encoding.BYTES),
        "n": tfds.features.Scalar(dtype=np.int64), "t": tfds.features.Text(),
        "labels": tfds.features.FeaturesDict({"flag": tfds.features.Scalar(dtype=np.bool_),
                                              "f": tfds.features.Scalar(dtype=np.float32),
                                              "c": tfds.features.ClassLabel(names=["a", "b"])})})


def test_compiled_decoder_never_decodes_a_record_differently_from_protobuf():
    """Mutated records (flipped, dropped and inserted bytes, truncations): the C decoder either returns what
    decoding through protobuf returns, or None (then the exact path decides, raising what protobuf raises);
    it never returns another example and never crashes."""
    if not compiled_available():
        pytest.skip("sensorpipe.access._wire is not built")
    from sensorpipe.access.decode import _compile_c, parse_example

    features = _small_features()
    decoder = FastDecoder(features)
    c_decode = _compile_c(layout_of(features))
    rng = np.random.default_rng(0)
    seeds = [features.serialize_example({"x": rng.normal(size=(3, 2)).astype(np.float32), "m": rng.random((3, 2)) < 0.5,
                                         "n": int(n), "t": "ü" * int(rng.integers(0, 200)),
                                         "labels": {"flag": bool(n % 2), "f": float(n) / 3, "c": int(n % 2)}})
             for n in (-5, 0, 1, 300, 2**40)]
    decoded = rejected = 0
    for i in range(4000):
        record = bytearray(seeds[i % len(seeds)])
        for _ in range(int(rng.integers(1, 4))):
            if not record:
                break
            at = int(rng.integers(0, len(record)))
            op = rng.integers(0, 4)
            if op == 0:
                record[at] = int(rng.integers(0, 256))
            elif op == 1:
                del record[at]
            elif op == 2:
                record.insert(at, int(rng.integers(0, 256)))
            else:
                del record[at:]
        record = bytes(record)
        try:
            want = decoder._decode(parse_example(record).features.feature)
        except Exception:  # noqa: BLE001 - whatever protobuf / the exact path raises
            want = None
        got = c_decode(record)
        if got is None:
            rejected += 1
        else:
            assert want is not None and _same(got, want), (i, record)
            decoded += 1
    assert decoded > 200 and rejected > 1000  # both outcomes exercised


def test_compiled_decoder_takes_entries_in_any_order(local_run):
    """TFDS's own serializer writes map entries in hash order: the C decoder matches keys in any order, and
    an unknown or repeated key sends the record to the exact path."""
    if not compiled_available():
        pytest.skip("sensorpipe.access._wire is not built")
    from sensorpipe.access.decode import _compile_c

    ds = sensorpipe.open(local_run.output_dir)
    record = ds["train"].raw(0)
    c_decode = _compile_c(layout_of(ds.features))
    want = ds.features.deserialize_example_np(record)
    raw = _raw_example_class().FromString(record)
    entries = list(raw.features.feature.items())

    def assemble(items) -> bytes:
        from sensorpipe.storage.encode import varint

        body = b"".join(b"\n" + varint(len(e)) + e for e in
                        (b"\n" + varint(len(k.encode())) + k.encode() + b"\x12" + varint(len(v)) + v for k, v in items))
        return b"\n" + varint(len(body)) + body

    assert _same(c_decode(assemble(entries)), want)
    assert _same(c_decode(assemble(entries[::-1])), want)
    assert _same(c_decode(assemble(entries[5:] + entries[:5])), want)
    assert c_decode(assemble(entries + entries[:1])) is None  # a key twice (protobuf: the last one wins)
    assert c_decode(assemble(entries[1:])) is None  # a key missing
    assert c_decode(assemble(entries + [("extra", entries[0][1])])) is None
    decoder = FastDecoder(ds.features)
    assert c_decode(bytearray(record)) is None and _same(decoder(bytearray(record)), want)  # any buffer decodes

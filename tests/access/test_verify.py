"""Verified reads: the manifest in sensorpipe.json, `sensorpipe verify`, and the checks in `open()`.

Each test damages a private copy of the shared test run's version folder
(ArrayRecord + TFRecord shards): corrupt, truncated, missing, swapped shards,
edited normalization, corrupt JSON, a version without a manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import sensorpipe
from sensorpipe.cli import main
from sensorpipe.integrity import DatasetIntegrityError


@pytest.fixture(scope="module")
def version_dir(local_run) -> Path:
    return Path(local_run.version_dir)


@pytest.fixture
def copy(version_dir, tmp_path) -> Path:
    """A private copy of the run's output (only the dataset folder); returns its version folder."""
    dst = tmp_path / "out" / version_dir.parent.name / version_dir.name
    shutil.copytree(version_dir, dst)
    return dst


def _shard(v: Path, split: str, fmt: str = "array_record", i: int = 0) -> Path:
    return next(v.glob(f"*-{split}.{fmt}-{i:05d}-of-*"))


def _verify(v: Path, capsys) -> tuple[int, list[str]]:
    rc = main(["verify", str(v.parent.parent)])
    return rc, capsys.readouterr().out.strip().splitlines()


def test_manifest_records_every_file_with_size_count_and_hashes(version_dir):
    side = json.loads((version_dir / "sensorpipe.json").read_text())
    files = side["manifest"]["files"]
    on_disk = {p.name for p in version_dir.iterdir() if p.name != "sensorpipe.json"}
    assert set(files) == on_disk
    assert {"dataset_info.json", "features.json", "normalization.json"} <= set(files)
    info = json.loads((version_dir / "dataset_info.json").read_text())
    lengths = {s["name"]: [int(x) for x in s["shardLengths"]] for s in info["splits"]}
    shards = {n: r for n, r in files.items() if "split" in r}
    assert {r["format"] for r in shards.values()} == {"array_record", "tfrecord"}
    for name, rec in files.items():
        data = (version_dir / name).read_bytes()
        assert rec["bytes"] == len(data) and rec["sha256"] == hashlib.sha256(data).hexdigest()
    for name, rec in shards.items():
        assert rec["records"] == lengths[rec["split"]][rec["shard"]]
    ds = sensorpipe.open(str(version_dir))
    assert sum(r["records"] for r in shards.values() if r["format"] == "array_record") == \
        sum(len(ds[s]) for s in ds.splits)


def test_shards_hashed_ahead_give_the_same_manifest_and_are_not_hashed_again(copy, monkeypatch):
    """The driver hashes the shards while TFDS's metadata is written (shard_digests) and hands them to the
    manifest: the same manifest as hashing everything at the end, and only the other files are hashed then."""
    from sensorpipe.storage import manifest as mf

    side = json.loads((copy / "sensorpipe.json").read_text())
    norm, rest = side["normalization"], {k: v for k, v in side.items() if k != "manifest"}
    ahead = mf.shard_digests(copy)
    assert set(ahead) == {n for n in side["manifest"]["files"] if mf.SHARD_RE.match(n)}
    hashed: list[str] = []
    real = mf.file_sha256
    monkeypatch.setattr(mf, "file_sha256", lambda path: hashed.append(Path(path).name) or real(path))
    assert mf.build_manifest(copy, norm, rest, ahead) == side["manifest"]
    assert hashed and not set(hashed) & set(ahead)
    hashed.clear()
    assert mf.build_manifest(copy, norm, rest) == side["manifest"]
    assert set(ahead) <= set(hashed)


def test_verify_passes_on_an_intact_version(version_dir, copy, capsys):
    rc, lines = _verify(copy, capsys)
    n = len(json.loads((version_dir / "sensorpipe.json").read_text())["manifest"]["files"])
    assert rc == 0 and lines == [lines[-1]] and lines[-1].startswith(f"ok: {n + 1} files")
    assert sensorpipe.open(str(copy), verify="full")["train"][0]["key"]


def test_swapped_shards_are_detected_at_open_and_by_verify(copy, capsys):
    a, b = _shard(copy, "train", i=0), _shard(copy, "train", i=1)
    tmp = copy / "swap.tmp"
    os.rename(a, tmp), os.rename(b, a), os.rename(tmp, b)
    with pytest.raises(DatasetIntegrityError, match=f"{a.name}: content differs .* holds the content of {b.name}"):
        sensorpipe.open(str(copy))
    rc, lines = _verify(copy, capsys)
    assert rc == 1
    assert lines[0].startswith(f"{a.name}: sha256 ") and f"holds the content of {b.name}" in lines[0]
    assert lines[1].startswith(f"{b.name}: sha256 ") and f"holds the content of {a.name}" in lines[1]
    assert lines[2].startswith("2 problem(s)")


def test_same_size_swap_is_caught_by_the_edge_hash(copy):
    """Two shards of equal size and record count exchanged: only content can tell them apart."""
    side = json.loads((copy / "sensorpipe.json").read_text())["manifest"]["files"]
    by_key: dict = {}
    for name, r in side.items():
        if r.get("format") == "array_record":
            by_key.setdefault((r["bytes"], r["records"]), []).append(name)
    pair = next(v for v in by_key.values() if len(v) >= 2)   # the test run has same-size shards
    a, b = copy / pair[0], copy / pair[1]
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db), b.write_bytes(da)
    with pytest.raises(DatasetIntegrityError, match="swapped with or overwritten"):
        sensorpipe.open(str(copy))


def test_test_shard_copied_over_validation_shard(copy, capsys):
    test, val = _shard(copy, "test"), _shard(copy, "validation")
    shutil.copyfile(test, val)
    with pytest.raises(DatasetIntegrityError) as e:
        sensorpipe.open(str(copy))
    assert str(e.value).startswith(str(val)) and f"holds the content of {test.name}" in str(e.value)
    rc, lines = _verify(copy, capsys)
    assert rc == 1 and lines[0].startswith(f"{val.name}: size ") and test.name in lines[0]


def test_truncated_shard(copy, capsys):
    shard = _shard(copy, "train", i=1)
    size = shard.stat().st_size
    os.truncate(shard, size // 3)
    with pytest.raises(DatasetIntegrityError, match=f"{shard.name}: size {size // 3:,} bytes, the manifest says "
                                                    f"{size:,}"):
        sensorpipe.open(str(copy))
    rc, lines = _verify(copy, capsys)
    assert rc == 1 and lines[0].startswith(f"{shard.name}: size ")


def test_missing_tfrecord_shard(copy, capsys):
    shard = _shard(copy, "validation", "tfrecord")
    shard.unlink()
    with pytest.raises(DatasetIntegrityError, match=f"{shard.name}: missing"):
        sensorpipe.open(str(copy))
    rc, lines = _verify(copy, capsys)
    assert rc == 1 and lines[0].startswith(f"{shard.name}: missing (shard 0 of split 'validation'")


def test_corrupt_shard_same_size(copy, capsys):
    """Bytes overwritten inside a shard: sizes and edges agree, the full hash and the reader do not."""
    shard = _shard(copy, "train", i=0)
    size = shard.stat().st_size
    with open(shard, "r+b") as fh:
        fh.seek(size // 2)
        fh.write(b"\0" * 3000)
    ds = sensorpipe.open(str(copy))                    # the cheap check cannot see it ...
    with pytest.raises(DatasetIntegrityError, match=f"{shard.name}: sha256 .* differs"):
        sensorpipe.open(str(copy), verify="full")      # ... the full one does
    rc, lines = _verify(copy, capsys)
    assert rc == 1 and lines[0].startswith(f"{shard.name}: sha256 ")
    # reading the damaged records: one clear error naming the shard, not a Riegeli traceback
    n0 = json.loads((copy / "sensorpipe.json").read_text())["manifest"]["files"][shard.name]["records"]
    with pytest.raises(DatasetIntegrityError, match=f"{shard.name}: corrupt shard \\(Corrupted Riegeli"):
        for i in range(n0):
            ds["train"][i]
    with pytest.raises(DatasetIntegrityError, match=f"{shard.name}: corrupt shard \\(Corrupted Riegeli"):
        list(sensorpipe.open(str(copy), verify="none")["train"].stream())
    with pytest.raises(DatasetIntegrityError, match=f"{shard.name}: corrupt shard \\(Corrupted Riegeli"):
        sensorpipe.open(str(copy), verify="none")["train"].filter(max_missing=0.5)


def test_unexpected_shard_is_reported_by_verify(copy, capsys):
    extra = copy / _shard(copy, "test").name.replace("-00000-of-", "-00001-of-")
    shutil.copyfile(_shard(copy, "test"), extra)
    rc, lines = _verify(copy, capsys)
    assert rc == 1 and lines[0] == f"{extra.name}: unexpected: a shard the manifest does not list"


def test_edited_normalization_in_sensorpipe_json_is_refused(copy, capsys):
    path = copy / "sensorpipe.json"
    side = json.loads(path.read_text())
    side["normalization"]["center"][0] += 1.0
    path.write_text(json.dumps(side, indent=1, sort_keys=True))
    with pytest.raises(DatasetIntegrityError, match="sensorpipe.json: normalization parameters edited"):
        sensorpipe.open(str(copy))
    rc, lines = _verify(copy, capsys)
    assert rc == 1 and lines[0].startswith("sensorpipe.json: normalization parameters edited")


def test_edited_normalization_json_is_refused_by_denormalize(copy):
    from sensorpipe.access.dataset import denormalize

    path = copy / "normalization.json"
    norm = json.loads(path.read_text())
    before = denormalize(np.zeros((2, len(norm["channels"])), np.float32), copy)
    norm["scale"][0] *= 2.0
    path.write_text(json.dumps(norm, indent=1))
    with pytest.raises(DatasetIntegrityError, match="normalization.json: edited or cut since the run wrote it .* would denormalize to other numbers"):
        denormalize(np.zeros((2, len(norm["channels"])), np.float32), copy)
    with pytest.raises(DatasetIntegrityError, match="normalization.json"):
        sensorpipe.open(str(copy), verify="none")
    assert before.shape == (2, len(norm["channels"]))


@pytest.mark.parametrize("name", ["dataset_info.json", "features.json", "sensorpipe.json"])
def test_corrupt_json_names_the_file(copy, capsys, name):
    path = copy / name
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(DatasetIntegrityError, match=f"{name}: "):
        sensorpipe.open(str(copy))
    assert main(["inspect", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and name in err and "Traceback" not in err
    rc, lines = _verify(copy, capsys)
    assert rc == 1 and lines[0].startswith(f"{name}: ")


def test_corrupt_json_of_a_version_without_manifest(copy):
    """Old versions (no manifest) still get a clear message for a JSON file that does not parse."""
    side = json.loads((copy / "sensorpipe.json").read_text())
    side.pop("manifest")
    (copy / "sensorpipe.json").write_text(json.dumps(side))
    (copy / "dataset_info.json").write_text("{\"name\": ")
    with pytest.raises(DatasetIntegrityError, match="dataset_info.json: not valid JSON"):
        sensorpipe.open(str(copy))


def test_version_written_before_manifests_opens_and_verify_says_so(copy, version_dir, capsys):
    side = json.loads((copy / "sensorpipe.json").read_text())
    side.pop("manifest")
    (copy / "sensorpipe.json").write_text(json.dumps(side))
    ds = sensorpipe.open(str(copy))          # no manifest, no check: read as before
    ref = sensorpipe.open(str(version_dir))
    assert ds["train"][0]["key"] == ref["train"][0]["key"]
    rc, lines = _verify(copy, capsys)
    assert rc == 1 and lines[0].startswith("sensorpipe.json: no manifest")


def test_verify_user_errors_exit_2(copy, tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["verify", str(copy.parent.parent), "--version", "9.9.9"]) == 2
    assert "no version '9.9.9'; versions there: " + copy.name in capsys.readouterr().err
    assert main(["verify", str(copy.parent.parent), "--version", copy.name, "--name", copy.parent.name]) == 0


def test_bad_verify_level_is_refused(copy):
    with pytest.raises(ValueError, match="verify='quick'"):
        sensorpipe.open(str(copy), verify="quick")


def test_swapped_shards_on_an_fsspec_url_are_caught_by_range_reads(version_dir, tmp_path, monkeypatch):
    import fsspec

    mem = fsspec.filesystem("memory")
    root = "/sp_verify_swap"
    if mem.exists(root):
        mem.rm(root, recursive=True)
    a, b = _shard(version_dir, "train", i=0).name, _shard(version_dir, "train", i=1).name
    swap = {a: b, b: a}
    for f in sorted(version_dir.iterdir()):
        src = version_dir / swap.get(f.name, f.name)
        mem.pipe_file(f"{root}/out/{version_dir.parent.name}/{version_dir.name}/{f.name}", src.read_bytes())
    monkeypatch.setenv("SENSORPIPE_CACHE_DIR", str(tmp_path / "cache"))
    try:
        with pytest.raises(DatasetIntegrityError, match=f"{a}: content differs .* holds the content of {b}"):
            sensorpipe.open(f"memory://{root}/out")
        assert not list((tmp_path / "cache").rglob("*.array_record-*"))   # checked without downloading shards
    finally:
        mem.rm(root, recursive=True)


def test_truncated_shard_read_unchecked_names_the_shard(copy):
    """With the checks off, the reader's own Riegeli error still becomes one message naming the shard."""
    shard = _shard(copy, "validation", i=0)
    os.truncate(shard, shard.stat().st_size // 2)
    ds = sensorpipe.open(str(copy), verify="none")
    with pytest.raises(DatasetIntegrityError, match=f"^{shard}: corrupt shard \\((Corrupted|Invalid) Riegeli"):
        ds["validation"][0]

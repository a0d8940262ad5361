"""Key rotation: after ``sensorpipe rotate-key`` no byte under the output folder holds an old pseudonym."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import pytest

import sensorpipe
from sensorpipe.cli import main
from sensorpipe.config import ConfigError, load_config
from sensorpipe.metadata.store import MetadataStore
from sensorpipe.privacy.pseudonym import key_digest
from sensorpipe.runners.driver import run_pipeline
from sensorpipe.runners.rotate import rotate_key
from tests.runners.tiny_cohort import config, write_cohort, write_yaml

PIDS = ("p1", "p2", "p3")
OLD_KEY = b"an old key of thirty-two bytes!!"


def _pseudonyms(key: bytes) -> set[str]:
    return {hmac.new(key, f"tiny/{p}".encode(), hashlib.sha256).hexdigest()[:16] for p in PIDS}


def _hits(root: Path, needles: set[bytes]) -> list[tuple[str, bytes]]:
    """Every (file, needle) where the needle occurs in the file's bytes, anywhere under ``root``."""
    found = []
    for f in sorted(root.rglob("*")):
        if f.is_file():
            data = f.read_bytes()
            found += [(str(f.relative_to(root)), n) for n in needles if n in data]
    return found


def _cohort(tmp_path: Path, version: str = "auto") -> dict:
    write_cohort(tmp_path / "d", PIDS)
    (tmp_path / "key").write_bytes(OLD_KEY)
    cfg = config(tmp_path, tmp_path / "d", privacy={"pseudonymize": True, "key_file": str(tmp_path / "key")},
                 splits={"train": 0.5, "validation": 0.25, "test": 0.25})
    cfg["output"]["version"] = version
    return cfg


@pytest.mark.parametrize("version", ["auto", "1.0.0"])
def test_no_old_pseudonym_survives_a_rotation(tmp_path, version):
    cfg = _cohort(tmp_path, version)
    first = run_pipeline(load_config(cfg))
    second_cfg = {**cfg, "output": {**cfg["output"], "release_notes": "two versions under the old key"}}
    if version == "auto":
        run_pipeline(load_config(second_cfg))         # a second version (1.0.1) with the old pseudonyms
    out = Path(first.output_dir)
    old = _pseudonyms(OLD_KEY)
    assert {ex["participant_id"] for s in ("train", "validation", "test")
            for ex in sensorpipe.open(first.version_dir)[s]} <= old
    assert _hits(out, {p.encode() for p in old})       # the scan finds them before the rotation

    rotation = rotate_key(load_config(cfg))

    new_key = (tmp_path / "key").read_bytes().strip()
    assert new_key != OLD_KEY and len(new_key) == 64
    assert stat.S_IMODE((tmp_path / "key").stat().st_mode) == 0o600
    assert not (tmp_path / "key.new").exists()
    assert (rotation.old_key_digest, rotation.new_key_digest) == (key_digest(OLD_KEY), key_digest(new_key))
    # every byte of the output folder, metadata DB and private cache included: no old pseudonym, no key
    assert _hits(out, {p.encode() for p in old} | {OLD_KEY, new_key}) == []
    new = _pseudonyms(new_key)
    ds = sensorpipe.open(rotation.run.version_dir)
    ids = {ex["participant_id"] for s in ("train", "validation", "test") for ex in ds[s]}
    assert ids and ids <= new
    assert sum(rotation.run.split_sizes.values()) == first.windows_kept
    labels = sorted(p.name for p in (out / "tiny").iterdir())
    assert labels == ([Path(rotation.run.version_dir).name])
    assert rotation.removed_versions == ([] if version == "1.0.0" else ["tiny/1.0.0", "tiny/1.0.1"])
    store = MetadataStore(first.metadata_url)
    try:
        log = store.audit_log()
    finally:
        store.close()
    rot = [e for e in log if e["event"] == "rotate-key"]
    assert len(rot) == 1 and rot[0]["subject"] == rotation.run.run_id
    assert rot[0]["details"]["old_key_digest"] == key_digest(OLD_KEY)
    assert rot[0]["details"]["new_key_digest"] == key_digest(new_key)
    assert rot[0]["actor"] and f"tiny/{Path(rotation.run.version_dir).name}" in rot[0]["versions"]
    assert [e["event"] for e in log].count("run") == (3 if version == "auto" else 2)


def test_a_failed_rotation_keeps_the_old_key_and_dataset(tmp_path, monkeypatch):
    cfg = _cohort(tmp_path)
    first = run_pipeline(load_config(cfg))

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("sensorpipe.runners.rotate.run_pipeline", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        rotate_key(load_config(cfg))
    assert (tmp_path / "key").read_bytes() == OLD_KEY and not (tmp_path / "key.new").exists()
    assert Path(first.version_dir).is_dir()


def test_rotation_needs_a_key_to_rotate(tmp_path, monkeypatch):
    cfg = _cohort(tmp_path)
    plain = {**cfg, "privacy": {"pseudonymize": False}}
    with pytest.raises(ConfigError, match="no key to rotate"):
        rotate_key(load_config(plain))
    monkeypatch.setenv("SENSORPIPE_PSEUDONYM_KEY", OLD_KEY.decode())
    env = {**cfg, "privacy": {"pseudonymize": True}}
    with pytest.raises(ConfigError, match="--key-from-env"):
        rotate_key(load_config(env))
    run_pipeline(load_config(env))
    with pytest.raises(ConfigError, match="still holds the old key"):
        rotate_key(load_config(env), key_from_env=True)
    monkeypatch.setenv("SENSORPIPE_PSEUDONYM_KEY", "a brand new key, also 32 bytes!")
    rotation = rotate_key(load_config(env), key_from_env=True)
    assert _hits(Path(cfg["output"]["dir"]), {p.encode() for p in _pseudonyms(OLD_KEY)}) == []
    assert rotation.new_key_digest == key_digest(b"a brand new key, also 32 bytes!")


def test_the_cli_command(tmp_path, capsys):
    cfg = _cohort(tmp_path)
    path = write_yaml(tmp_path / "pipeline.yaml", cfg)
    assert main(["run", str(path)]) == 0
    assert main(["rotate-key", str(path)]) == 0
    text = capsys.readouterr().out
    assert f"key rotated: digest {key_digest(OLD_KEY)} -> " in text
    assert "removed versions under the old key: tiny/1.0.0" in text


def test_an_unchanged_key_from_the_environment_removes_nothing(tmp_path, monkeypatch):
    """Without a recorded key digest (audit rows gone), an unchanged key shows as an unchanged run: refused."""
    cfg = _cohort(tmp_path)
    monkeypatch.setenv("SENSORPIPE_PSEUDONYM_KEY", OLD_KEY.decode())
    env = {**cfg, "privacy": {"pseudonymize": True}}
    first = run_pipeline(load_config(env))
    store = MetadataStore(first.metadata_url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM privacy_audit")
    store.close()
    with pytest.raises(ConfigError, match="already holds this key's dataset"):
        rotate_key(load_config(env), key_from_env=True)
    assert Path(first.version_dir).is_dir()
    assert _hits(Path(first.output_dir) / "tiny", {p.encode() for p in _pseudonyms(OLD_KEY)})

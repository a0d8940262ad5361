"""Optional AES-GCM encryption of a run's quarantine files and their spills under ``.work/``
(privacy.quarantine_key_file): the planted raw text is absent from the encrypted files' bytes, decrypting
gives exactly the unencrypted run's table, the dataset is the same, and the CLI and the Python API refuse an
encrypted file without the key or with another."""

from __future__ import annotations

import pytest

import sensorpipe
from sensorpipe.cli import main
from sensorpipe.config import ConfigError
from sensorpipe.privacy.sealed import MAGIC, SealedFileError
from sensorpipe.runners.driver import run_pipeline
from sensorpipe.schema.quarantine import read_quarantine
from tests.runners.tiny_cohort import config, shard_bytes, write_cohort, write_yaml

PLANTED = "zq-original-text-4417"
PSEUDONYM_KEY = "pseudonym-key-0123456789abcdef0123"
QUARANTINE_KEY = "quarantine-key-fedcba9876543210fedcba9876543210"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same sources run twice, quarantine plain and encrypted: (root, plain result, encrypted result)."""
    root = tmp_path_factory.mktemp("sealed_q")
    write_cohort(root / "data")
    f = root / "data" / "p1.csv"
    f.write_text(f.read_text() + f"2024-05-02T00:05:00Z,hr,{PLANTED}\n2024-05-02T00:06:00Z,hr,999\n")
    (root / "pseudonym.key").write_text(PSEUDONYM_KEY)
    (root / "quarantine.key").write_text(QUARANTINE_KEY + "\n")
    privacy = {"pseudonymize": True, "key_file": str(root / "pseudonym.key")}
    plain = run_pipeline(str(write_yaml(root / "plain.yaml", config(root, root / "data", out="plain",
                                                                     privacy=privacy))))
    sealed = run_pipeline(str(write_yaml(root / "sealed.yaml", config(
        root, root / "data", out="sealed", privacy={**privacy, "quarantine_key_file": str(root / "quarantine.key")}))))
    return root, plain, sealed


def test_encrypted_file_holds_no_raw_text_and_decrypts_to_the_plain_table(runs):
    root, plain, sealed = runs
    p, s = root / "plain" / "quarantine" / "tiny.parquet", root / "sealed" / "quarantine" / "tiny.parquet"
    assert PLANTED.encode() in p.read_bytes() and p.read_bytes()[:4] == b"PAR1"
    raw = s.read_bytes()
    assert raw[:8] == MAGIC and PLANTED.encode() not in raw and b"PAR1" not in raw
    expected = read_quarantine(p)
    assert expected.num_rows == plain.rows_quarantined == sealed.rows_quarantined == 2
    assert expected.column("value").to_pylist() == [PLANTED, "999"]
    assert read_quarantine(s, QUARANTINE_KEY.encode()).equals(expected)
    assert sensorpipe.read_quarantine(s, key_file=root / "quarantine.key").equals(expected)
    spills = sorted((root / "sealed" / ".work" / "units").glob("*.quarantine.arrow"))
    assert len(spills) == 1      # p1's rows, under .work/: sealed too
    assert spills[0].read_bytes()[:8] == MAGIC and PLANTED.encode() not in spills[0].read_bytes()
    assert read_quarantine(spills[0], QUARANTINE_KEY.encode()).column("value").to_pylist() == [PLANTED, "999"]
    assert shard_bytes(sealed.version_dir) == shard_bytes(plain.version_dir)    # the dataset is the same
    assert sealed.fingerprint == plain.fingerprint
    assert sealed.quarantine_by_reason == plain.quarantine_by_reason == {"out_of_range": 1, "wrong_type": 1}


def test_without_the_key_or_with_another_one_clear_error(runs, tmp_path, capsys):
    root, _, _ = runs
    s = root / "sealed" / "quarantine" / "tiny.parquet"
    with pytest.raises(SealedFileError, match="is encrypted .AES-GCM.; give the key it was written with"):
        read_quarantine(s)
    (tmp_path / "other.key").write_text("another-quarantine-key-0123456789abcdef")
    with pytest.raises(SealedFileError, match="cannot be decrypted with this key"):
        sensorpipe.read_quarantine(s, key_file=tmp_path / "other.key")
    assert main(["quarantine", str(s)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--key-file" in err
    assert main(["quarantine", str(s), "--key-file", str(root / "quarantine.key")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{s}: 2 quarantined rows (encrypted, AES-GCM)"
    assert out[1:3] == ["           1  out_of_range", "           1  wrong_type"]
    assert any(PLANTED in line for line in out[5:])


def test_the_quarantine_key_must_be_a_key_of_its_own(runs, tmp_path):
    root, _, _ = runs
    same_file = {"pseudonymize": True, "key_file": str(root / "pseudonym.key"),
                 "quarantine_key_file": str(root / "pseudonym.key")}
    with pytest.raises(ConfigError, match="quarantine_key_file is privacy.key_file"):
        run_pipeline(config(tmp_path, root / "data", out="a", privacy=same_file))
    (tmp_path / "copy.key").write_text(PSEUDONYM_KEY)
    same_secret = {**same_file, "quarantine_key_file": str(tmp_path / "copy.key")}
    with pytest.raises(ConfigError, match="holds the pseudonymization key"):
        run_pipeline(config(tmp_path, root / "data", out="b", privacy=same_secret))
    (tmp_path / "short.key").write_text("too-short")
    with pytest.raises(ConfigError, match="holds 9 characters; use at least 32"):
        run_pipeline(config(tmp_path, root / "data", out="c", privacy={**same_file,
                                                                        "quarantine_key_file": str(tmp_path / "short.key")}))
    with pytest.raises(ConfigError, match="missing.key does not exist"):
        run_pipeline(config(tmp_path, root / "data", out="d", privacy={**same_file,
                                                                        "quarantine_key_file": str(tmp_path / "missing.key")}))

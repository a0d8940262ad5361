"""storage.publish: the swap, the fallback without an atomic exchange, recovery after a death in between."""

from __future__ import annotations

import pytest

from sensorpipe.storage import publish
from sensorpipe.storage.publish import Staging, next_patch, on_disk_fingerprint, recover

from .conftest import tree_digest


def _version(folder, fingerprint):
    folder.mkdir(parents=True, exist_ok=True)
    for name in publish.VERSION_FILES:
        (folder / name).write_text("{}")
    (folder / "sensorpipe.json").write_text(f'{{"fingerprint": "{fingerprint}"}}')
    (folder / "tiny-train.array_record-00000-of-00001").write_bytes(fingerprint.encode() * 100)


class Died(Exception):
    pass


def _die_at(stage):
    def checkpoint(name):
        if name == stage:
            raise Died(name)
    return checkpoint


@pytest.mark.parametrize("atomic", [True, False])
def test_a_replacement_swaps_and_a_death_in_between_is_recovered(tmp_path, monkeypatch, atomic):
    if not atomic:
        monkeypatch.setattr(publish, "exchange", lambda a, b: False)
    target = tmp_path / "tiny" / "1.0.0"
    _version(target, "old")
    old = tree_digest(target)
    staging = Staging(tmp_path, "run1").create(target)
    _version(staging.version, "new")
    with pytest.raises(Died):
        staging.swap_in(target, _die_at("swap"))
    if atomic:        # no instant without a version: the new one is in, the old one in staging
        assert on_disk_fingerprint(target) == "new" and on_disk_fingerprint(staging.version) == "old"
    else:             # the old one is aside, the new one not yet in
        assert not target.exists() and tree_digest(staging.replaced) == old
    assert recover(tmp_path, keep="run2") == ["run1"]      # the next run, holding the lock
    assert on_disk_fingerprint(target) == ("new" if atomic else "old")
    if not atomic:
        assert tree_digest(target) == old
    assert not (tmp_path / publish.STAGING).exists()


def test_a_failure_before_the_rename_discards_staging_and_keeps_the_old_version(tmp_path):
    target = tmp_path / "tiny" / "1.0.0"
    _version(target, "old")
    old = tree_digest(target)
    staging = Staging(tmp_path, "run1").create(target)
    _version(staging.version, "new")
    staging.discard()
    assert tree_digest(target) == old and not (tmp_path / publish.STAGING).exists()


def test_an_incomplete_folder_holds_no_fingerprint(tmp_path):
    _version(tmp_path / "v", "abc")
    assert on_disk_fingerprint(tmp_path / "v") == "abc"
    (tmp_path / "v" / "dataset_info.json").unlink()
    assert on_disk_fingerprint(tmp_path / "v") is None
    assert next_patch([]) == "1.0.0" and next_patch(["1.0.0", "1.2.9", "1.10.0", "junk"]) == "1.10.1"

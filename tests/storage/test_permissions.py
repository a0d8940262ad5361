"""Outputs are created 0640 (files) and 0750 (folders), with a configurable group, whatever the umask."""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

import pytest

from sensorpipe.config import ConfigError, load_config
from sensorpipe.runners.driver import run_pipeline
from sensorpipe.storage.permissions import AccessPolicy, group_id, restrict_tree
from tests.runners.tiny_cohort import config, write_cohort


def _modes(root: Path) -> dict[str, int]:
    """Mode of every file and folder under ``root`` (``root`` itself as ``.``), by relative path."""
    out = {".": stat.S_IMODE(os.stat(root).st_mode)}
    for p in root.rglob("*"):
        out[str(p.relative_to(root))] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


@pytest.fixture
def open_umask():
    """A permissive umask (000): modes must come from sensorpipe, not from the umask."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_every_output_entry_is_0640_or_0750(tmp_path, open_umask):
    write_cohort(tmp_path / "d", ("p1", "p2"))
    cfg = config(tmp_path, tmp_path / "d")
    result = run_pipeline(load_config(cfg))
    out = Path(result.output_dir)
    modes = _modes(out)
    expected = {"metadata.db", "report.html", ".work", "quarantine", "tiny/1.0.0/sensorpipe.json",
                "tiny/1.0.0/dataset_info.json", "tiny/1.0.0/tiny-train.array_record-00000-of-00002"}
    assert expected <= set(modes) and any(k.startswith(".work/units/") for k in modes)
    wrong = {k: oct(m) for k, m in modes.items() if m != (0o750 if (out / k).is_dir() else 0o640)}
    assert wrong == {}
    # a second, unchanged run leaves the same modes (the tree is set at every run's end)
    assert run_pipeline(load_config(cfg)).unchanged
    assert {k: m for k, m in _modes(out).items()} == modes


def test_configured_modes_and_group(tmp_path, open_umask):
    gid = os.getgroups()[-1] if os.getgroups() else os.getgid()
    name = grp.getgrgid(gid).gr_name
    write_cohort(tmp_path / "d", ("p1",))
    cfg = config(tmp_path, tmp_path / "d", output={"file_mode": "0600", "dir_mode": "0700", "group": name})
    out = Path(run_pipeline(load_config(cfg)).output_dir)
    for p in [out, *out.rglob("*")]:
        st = os.lstat(p)
        assert stat.S_IMODE(st.st_mode) == (0o700 if p.is_dir() else 0o600), p
        assert st.st_gid == gid, p


def test_bad_modes_and_groups_are_config_errors(tmp_path):
    write_cohort(tmp_path / "d", ("p1",))
    with pytest.raises(ConfigError, match="output.file_mode must be an octal mode in quotes"):
        load_config(config(tmp_path, tmp_path / "d", output={"file_mode": "rw-r-----"}))
    with pytest.raises(ConfigError, match="no group named 'no-such-group-xyz'"):
        group_id("no-such-group-xyz")
    assert group_id(None) is None and group_id("0") == 0


def test_restrict_tree_leaves_symlinks_alone(tmp_path, open_umask):
    target = tmp_path / "elsewhere.txt"
    target.write_text("not ours")
    os.chmod(target, 0o644)
    root = tmp_path / "out"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f").write_text("x")
    (root / "link").symlink_to(target)
    assert restrict_tree(root, AccessPolicy()) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert _modes(root)["sub/f"] == 0o640 and _modes(root)["sub"] == 0o750


def test_a_folder_of_another_user_is_left_as_it_is(tmp_path, monkeypatch, caplog):
    """chmod of an entry we do not own raises EPERM: the run goes on, the entry is counted and logged."""
    from sensorpipe.storage import permissions

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "f").write_text("x")

    def denied(path, mode):
        raise PermissionError(1, "Operation not permitted", path)

    monkeypatch.setattr(permissions.os, "chmod", denied)
    permissions.restrict_root(tmp_path / "out", AccessPolicy())
    assert restrict_tree(tmp_path / "out", AccessPolicy(file_mode=0o600, dir_mode=0o700)) == 2
    assert "belongs to another user" in caplog.text and "2 entries under" in caplog.text

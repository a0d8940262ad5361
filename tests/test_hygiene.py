"""Hygiene: safe names, integer ranges, and CLI error paths that print one line and exit 2 (or stop quietly)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sensorpipe
from sensorpipe import cli
from sensorpipe.config import ConfigError, load_config
from sensorpipe.runners import cache
from tests.runners.tiny_cohort import config, write_cohort, write_yaml


@pytest.fixture
def tiny(tmp_path):
    write_cohort(tmp_path / "d", ("p1",))
    return tmp_path


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["sources"][0].update(name="../../x"),
     "sources[0].name: '../../x' is not a safe name; use 1 to 64 letters, digits, '_', '.' or '-', starting with a "
     "letter or digit, no '..'"),
    (lambda c: c["sources"][0].update(name="a/b"), "sources[0].name: 'a/b' is not a safe name"),
    (lambda c: c["sources"][0].update(name=".hidden"), "sources[0].name: '.hidden' is not a safe name"),
    (lambda c: c["sources"][0].update(name="x" * 65), "is not a safe name"),
    (lambda c: c["sources"][0].update(study="../up"), "sources[0].study: '../up' is not a safe name"),
    (lambda c: c["output"].update(name="../../x"), "output.name: '../../x' is not a safe name"),
    (lambda c: c["output"].update(version="1.0.0/../../x"), "output.version: '1.0.0/../../x' is not a safe name"),
])
def test_names_that_become_paths_are_refused(tiny, edit, message):
    cfg = config(tiny, tiny / "d")
    edit(cfg)
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert message in str(e.value)
    assert not (tiny.parent / "x").exists()


def test_safe_names_with_dots_and_dashes_pass(tiny):
    cfg = config(tiny, tiny / "d")
    cfg["sources"][0].update(name="fitbit-2024.v2", study="Study_A-1.b")
    assert load_config(cfg).sources[0].name == "fitbit-2024.v2"


@pytest.mark.parametrize("section, value, message", [
    ("window", {"size_min": 99999999999999999999},
     "window.size_min must be between 1 and 527040 minutes, got 99999999999999999999"),
    ("window", {"stride_min": 0}, "window.stride_min must be between 1 and 527040 minutes, got 0"),
    ("runner", {"workers": 10**6}, "runner.workers must be between 1 and 4096, got 1000000"),
    ("cleaning", {"flatline_max_gap_min": -3}, "cleaning.flatline_max_gap_min must be between 0 and 527040 minutes"),
    ("captions", {"seed": 2**70}, "captions.seed must be between 0 and 9223372036854775807"),
])
def test_out_of_range_integers_name_the_key_and_the_range(tiny, section, value, message):
    with pytest.raises(ConfigError) as e:
        load_config(config(tiny, tiny / "d", **{section: value}))
    assert message in str(e.value)


def _one_line_error(capsys, argv) -> str:
    assert cli.main(argv) == 2
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in cap.err, cap.err
    return lines[0]


def test_cli_errors_are_one_line(tiny, capsys):
    path = write_yaml(tiny / "p.yaml", config(tiny, tiny / "d", window={"size_min": 99999999999999999999}))
    assert "window.size_min must be between 1 and 527040" in _one_line_error(capsys, ["run", str(path)])
    (tiny / "afile").write_text("not a folder")
    for out in ("afile", "afile/sub"):
        path = write_yaml(tiny / "p.yaml", {**config(tiny, tiny / "d"), "output": {"dir": str(tiny / out),
                                                                                   "name": "tiny"}})
        line = _one_line_error(capsys, ["run", str(path)])
        assert line.startswith(f"sensorpipe run: error: output.dir {tiny / out} ") and "set output.dir to a folder" in line


def test_disk_full_names_the_path_and_the_fix(tiny, capsys, monkeypatch):
    try:   # the kernel's own ENOSPC: /dev/full refuses every write
        with open("/dev/full", "wb") as fh:
            fh.write(b"x")
        pytest.skip("no /dev/full here")   # pragma: no cover
    except OSError as e:
        full = e
    assert full.errno == errno.ENOSPC

    def save(path, arrays):
        raise full

    monkeypatch.setattr(cache, "save_arrays", save)
    path = write_yaml(tiny / "p.yaml", config(tiny, tiny / "d"))
    line = _one_line_error(capsys, ["run", str(path)])
    assert line.startswith(f"sensorpipe run: error: disk full writing {tiny / 'out'} during stage pass1 of run ")
    assert line.endswith(": free space or set output.dir elsewhere, and run again; nothing was published")

    def save_named(path, arrays):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(cache, "save_arrays", save_named)
    line = _one_line_error(capsys, ["run", str(path)])
    assert line.startswith(f"sensorpipe run: error: disk full writing {tiny / 'out' / '.work' / 'units'}/tiny__")
    assert ".arrays during stage pass1 of run " in line and "free space or set output.dir elsewhere" in line


def test_a_closed_pipe_is_one_line_and_exit_2():
    """``sensorpipe sources | head -1``: the reader has gone before the output is written."""
    r, w = os.pipe()
    os.close(r)                           # head exited: every write to the pipe fails with EPIPE
    src = str(Path(sensorpipe.__file__).parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "sensorpipe.cli", "sources"], stdout=w, stderr=subprocess.PIPE,
                          text=True, env=env, timeout=120)
    os.close(w)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("sensorpipe sources: error: the reader of the output closed it (broken pipe)")


def test_python_dash_m_sensorpipe_is_the_command_line(tmp_path):
    """``python -m sensorpipe`` works where the entry point is not on PATH (a venv not activated)."""
    env = {**os.environ, "PYTHONPATH": str(Path(sensorpipe.__file__).parents[1])}
    ok = subprocess.run([sys.executable, "-m", "sensorpipe", "sources"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "long_table" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "sensorpipe", "versions", str(tmp_path / "none")],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("sensorpipe versions: error: ") and bad.stderr.count("\n") == 1


@pytest.mark.parametrize("workers", ["0", "99999999999999999999"])
def test_workers_on_the_command_line_are_range_checked(tiny, capsys, workers):
    path = write_yaml(tiny / "p.yaml", config(tiny, tiny / "d"))
    line = _one_line_error(capsys, ["run", str(path), "--runner", "multiprocess", "--workers", workers])
    assert line == f"sensorpipe run: error: runner.workers must be between 1 and 4096, got {workers}"

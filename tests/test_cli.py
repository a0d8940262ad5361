"""CLI commands print what a user needs; each is a thin call into the library."""

from __future__ import annotations

import re
from pathlib import Path

from sensorpipe.cli import main


def test_inspect_prints_window_and_writes_plot(local_run, tmp_path, capsys):
    plot = tmp_path / "w.png"
    assert main(["inspect", local_run.output_dir, "--split", "train", "--index", "0", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    for needle in ("heart_rate", "coverage", "missing ratio", "caption (statistical): ", "caption (semantic): ",
                   "claims (", "labels: ", "diabetes_status="):
        assert needle in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


def test_inspect_bad_index_is_a_message(local_run, capsys):
    assert main(["inspect", local_run.output_dir, "--split", "train", "--index", "99999"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["inspect", local_run.output_dir, "--split", "holdout"]) == 2
    assert "no split 'holdout'" in capsys.readouterr().err


def test_sources_lists_adapters_with_channels(capsys):
    assert main(["sources"]) == 0
    out = capsys.readouterr().out
    assert "long_table" in out and "empatica_e4" in out
    assert "channels: heart_rate, hrv_rmssd, hrv_sdnn, hrv_rmssd_5min, hrv_sdnn_5min, ppg_sqi, enmo, acc_mad" in out
    assert "time:" in out


def test_versions_lists_the_run(local_run, capsys):
    assert main(["versions", local_run.output_dir]) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if local_run.fingerprint in line]
    assert row.split()[:3] == ["sensorpipe_demo", "1.0.0", "published"]
    sizes = ", ".join(f"{k} {v}" for k, v in local_run.split_sizes.items())   # windows per split, in split order
    assert row.endswith(sizes)
    assert main(["versions", local_run.output_dir, "--all"]) == 0
    runs = capsys.readouterr().out
    assert any(line.startswith(local_run.run_id) and " succeeded " in line for line in runs.splitlines())


def test_run_prints_summary_with_paths(sources_dir, base_config, tmp_path, capsys):
    import yaml

    cfg = dict(base_config, sources=[base_config["sources"][1]],
               output=dict(base_config["output"], dir=str(tmp_path / "o")))
    path = sources_dir / "cli_run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "rows      in" in out and "= accepted" in out
    assert Path(out.split("report    ")[1].split()[0]).exists()
    assert re.search(r"time      [\d.]+ s on local \(this process\)", out)


def test_inspect_lists_a_participants_windows(local_run, capsys):
    import sensorpipe

    ex = sensorpipe.open(local_run.output_dir)["train"][0]
    pid = ex["participant_id"]
    assert main(["inspect", local_run.output_dir, "--participant", pid]) == 0
    out = capsys.readouterr().out
    n = sum(1 for u in local_run.units if u.participant == pid for _ in range(u.windows_kept))
    assert out.count(f"/{pid}/") == n and ex["key"] in out
    assert main(["inspect", local_run.output_dir, "--participant", "nobody"]) == 2
    assert "no window of participant 'nobody'" in capsys.readouterr().err


def test_printed_statistics_have_no_negative_zero(local_run, capsys):
    """Denormalized zeros (steps at rest) can come back as -0.0 or -1e-7: inspect and the metadata tables print 0."""
    from sensorpipe.commands import _fixed
    from sensorpipe.commands_versions import _num

    assert _fixed(-0.0) == _fixed(-0.004) == "      0.00" and _fixed(-0.006) == "     -0.01"
    assert _num(-0.0) == "0" and _num(-1.5) == "-1.5"
    for i in range(3):
        assert main(["inspect", local_run.output_dir, "--split", "train", "--index", str(i)]) == 0
        assert "-0.00" not in capsys.readouterr().out

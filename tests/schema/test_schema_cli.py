"""Schemas are versioned in the metadata DB; `schema show` and `schema diff` print them."""

from __future__ import annotations

import copy

import yaml

from sensorpipe.cli import main
from sensorpipe.runners.driver import run_pipeline


def test_changed_schema_gets_a_new_version_and_diff_shows_it(local_run, sources_dir, base_config, tmp_path, capsys):
    cfg = copy.deepcopy(base_config)
    cfg["sources"] = [s for s in cfg["sources"] if s["name"] == "metabolic_study"]
    cfg["output"]["dir"] = str(tmp_path / "o")
    path = sources_dir / "schema_v1.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run_pipeline(str(path))
    run_pipeline(str(path))                                    # unchanged: still version 1
    fields = cfg["sources"][0]["options"]["fields"]
    fields["hr"]["unit"] = "beats/min"                         # a changed declaration
    del fields["kcal"]
    path.write_text(yaml.safe_dump(cfg))
    run_pipeline(str(path), overwrite=True)                    # new fingerprint, same label
    out = str(tmp_path / "o")
    assert main(["schema", "show", "metabolic_study", out]) == 0
    text = capsys.readouterr().out
    assert "version 2 of [1, 2]" in text and "beats/min" in text and "wearable/*.csv: ISO-8601 with Z" in text
    assert main(["schema", "show", "metabolic_study", out, "--version", "1"]) == 0
    assert "kcal" in capsys.readouterr().out
    assert main(["schema", "diff", "metabolic_study", "1", "2", out]) == 0
    diff = capsys.readouterr().out
    assert '~ hr.unit: "bpm" -> "beats/min"' in diff and "- kcal: calories [kcal/min]" in diff
    assert main(["schema", "diff", "metabolic_study", "1", "7", out]) == 2
    assert "no schema version 7" in capsys.readouterr().err

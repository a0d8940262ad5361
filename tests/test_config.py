"""Bad configuration gives one clear message naming the key and the allowed values."""

from __future__ import annotations

import copy

import pytest
import yaml

from sensorpipe.cli import main
from sensorpipe.config import ConfigError
from sensorpipe.runners.plan import load_plan


@pytest.mark.parametrize("mutate, expected", [
    (lambda c: c["window"].update(alignment="noon"), "window.alignment: 'noon' is not allowed; use one of 'none', 'utc_midnight', 'local_midnight'"),
    (lambda c: c["window"].update(size_min="a day"), "window.size_min: expected an integer, got 'a day'"),
    (lambda c: c["window"].update(sizee_min=10), "unknown key window.sizee_min; allowed keys in window: size_min, stride_min, alignment, max_missing_ratio"),
    (lambda c: c.update(colour="red"), "unknown key colour"),
    (lambda c: c["window"].update(max_missing_ratio=1.5), "window.max_missing_ratio must be between 0 and 1"),
    (lambda c: c["runner"].update(name="spark"), "runner.name: 'spark' is not allowed; use one of 'local', 'multiprocess', 'beam'"),
    (lambda c: c["output"].update(formats=["parquet"]), "output.formats[0]: 'parquet' is not allowed"),
    (lambda c: c["channels"].append("blood_pressure"), "unknown channel 'blood_pressure'"),
    (lambda c: c["splits"].update(train=0.9), "must sum to 1"),
    (lambda c: c["sources"][0].update(adapter="fitbit_v9"), "sources[0].adapter: unknown adapter 'fitbit_v9'; registered:"),
    (lambda c: c["sources"][0]["options"]["files"][0].update(time_format="unix"), "time_format: 'unix' is not allowed"),
    (lambda c: c["sources"][0]["options"]["fields"]["heart_rate"].update(unit="furlongs"), "no conversion from 'furlongs' to 'bpm'"),
])
def test_bad_values_are_named(base_config, tmp_path, mutate, expected):
    cfg = copy.deepcopy(base_config)
    mutate(cfg)
    with pytest.raises((ConfigError, ValueError)) as e:
        load_plan(cfg, base_dir=str(tmp_path))
    assert expected in str(e.value)


def test_cli_prints_a_message_not_a_traceback(base_config, tmp_path, capsys):
    cfg = copy.deepcopy(base_config)
    cfg["window"]["alignment"] = "noon"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "window.alignment" in err and "Traceback" not in err
    (tmp_path / "broken.yaml").write_text("sources: [\n")
    assert main(["run", str(tmp_path / "broken.yaml")]) == 2
    assert "is not valid YAML" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("url, expected", [
    ("postgresql+psycopg://writer:s3cret@db.example:5432/meta", "postgresql+psycopg://writer@db.example:5432/meta"),
    ("postgresql://writer:p%40ss%3Aword@db/meta?sslmode=require", "postgresql://writer@db/meta?sslmode=require"),
    ("postgresql://writer@db/meta", "postgresql://writer@db/meta"),
    ("sqlite:////abs/path/metadata.db", "sqlite:////abs/path/metadata.db"),
    ("sqlite:///relative.db", "sqlite:///relative.db"),
    ("", ""),
])
def test_without_password(url, expected):
    from sensorpipe.config import without_password

    assert without_password(url) == expected


def test_shareable_dict_has_no_key_paths_nor_database_password(tmp_path):
    """What ``sensorpipe.json`` and the metadata database's ``configs`` store of a config."""
    from sensorpipe.config import load_config
    from tests.runners.tiny_cohort import config

    cfg = load_config(config(tmp_path, tmp_path / "data", metadata={"url": "postgresql+psycopg://writer:s3cret@db/meta"},
                             privacy={"pseudonymize": True, "key_file": "k/pseudonym.key",
                                      "quarantine_key_file": "k/quarantine.key"}))
    d = cfg.shareable_dict()
    assert "key_file" not in d["privacy"] and "quarantine_key_file" not in d["privacy"]
    assert d["metadata"]["url"] == "postgresql+psycopg://writer@db/meta"
    assert cfg.metadata.url.endswith("writer:s3cret@db/meta")      # the config itself keeps it

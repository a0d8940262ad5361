"""Device model, serial and epoch of actigraphy recordings reach the metadata DB and `sensorpipe lineage`.

Counts are per device and epoch, so each unit's devices are recorded per source file (``unit_devices``) and
a window's lineage lists the recorder of each file that fed it; the serial only as a keyed digest.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import yaml

import sensorpipe
from sensorpipe.cli import main
from sensorpipe.metadata.queries import open_store
from sensorpipe.privacy.pseudonym import pseudonym
from sensorpipe.runners.wipeout import wipeout
from tests.sources.actigraphy._common import DUMMY

KEY = "device-lineage-test-key-0123456789"


def _serial_token(serial: str) -> str:
    """The digest the DB should hold, computed here from its definition (HMAC-SHA256, labelled, 16 hex)."""
    mac = hmac.new(KEY.encode(), b"sensorpipe/device-serial/v1\0" + serial.encode(), hashlib.sha256)
    return "serial:" + mac.hexdigest()[:16]


def test_devices_reach_the_db_and_the_lineage_of_each_window(tmp_path, capsys):
    src = DUMMY / "awd"
    (tmp_path / "key").write_text(KEY)
    cfg = {"sources": [{"name": "acti", "adapter": "actiwatch_awd", "path": str(src),
                        "participants": str(src / "participants.csv")}],
           "channels": ["activity_counts", "light"],
           "window": {"size_min": 60, "stride_min": 60, "max_missing_ratio": 1.0},
           "splits": {"train": 1.0, "validation": 0.0, "test": 0.0},
           "output": {"dir": str(tmp_path / "out"), "name": "acti"},
           "privacy": {"key_file": str(tmp_path / "key")}}
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(config)]) == 0
    capsys.readouterr()
    store = open_store(str(tmp_path / "out"))
    fp = store.list_versions()[0]["fingerprint"]
    rows = store.devices(fp)
    # p1.AWD: Actiwatch-L (serial L102938), 30-s epochs; p2.AWD: Actiwatch 4 (serial V664055), 1-min epochs
    got = sorted((r["device_model"], r["device_serial"], r["epoch_s"]) for r in rows)
    assert got == [("Actiwatch 4", _serial_token("V664055"), 60.0), ("Actiwatch-L", _serial_token("L102938"), 30.0)]
    assert {r["source"] for r in rows} == {"acti"} and len({r["participant"] for r in rows}) == 2
    assert all(r["source_file"].startswith("acti:") for r in rows)          # file tokens, as in lineage
    dump = json.dumps(rows)
    assert "L102938" not in dump and "V664055" not in dump and "p1" not in dump

    key = sensorpipe.open(str(tmp_path / "out" / "acti"))["train"][0]["key"]
    lin = store.lineage(key)
    (dev,) = lin["devices"]
    assert dev["source_file"] == lin["source_files"][0]
    assert (dev["device_model"], dev["epoch_s"]) in {("Actiwatch-L", 30.0), ("Actiwatch 4", 60.0)}

    assert main(["lineage", str(tmp_path / "out"), key]) == 0
    text = capsys.readouterr().out
    assert "recording devices (model, epoch, serial digest) of those files:" in text
    assert f"  {dev['source_file']}  {dev['device_model']}, epoch {dev['epoch_s']:g} s, serial " \
           f"{dev['device_serial']}" in text
    assert main(["lineage", str(tmp_path / "out"), key, "--config", str(config)]) == 0   # paths, with the key
    text = capsys.readouterr().out
    awd = "p1.AWD" if dev["device_model"] == "Actiwatch-L" else "p2.AWD"
    assert f"{src / awd}  {dev['device_model']}, epoch" in text
    assert main(["lineage", str(tmp_path / "out"), key, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["devices"] == [dev]

    # erasing p1 (wipeout) takes their device rows out with their other rows; p2's stay
    wipeout(str(tmp_path / "out"), participant="p1", study="acti", key_file=str(tmp_path / "key"),
            keep_normalization=True)
    store = open_store(str(tmp_path / "out"))
    left = store.devices(fp)
    assert [(r["participant"], r["device_model"]) for r in left] == [(pseudonym(KEY.encode(), "acti", "p2"),
                                                                     "Actiwatch 4")]

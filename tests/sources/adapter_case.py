"""Shared, declarative test base every source adapter's test subclasses.

A subclass names the adapter, its dummy-data folder (``tests/sources/dummy_data/<name>/``,
made by a checked-in script or taken from a real file) and what reading it must give::

    class TestDexcom(AdapterCase):
        ADAPTER = "dexcom_clarity"
        DUMMY = "dexcom_clarity"
        OPTIONS = {}
        PARTICIPANTS = "participants.csv"        # relative to the dummy folder, or None
        EXPECTED_UNITS = 1
        EXPECTED_CHANNELS = {"glucose": 12}      # accepted observations per canonical channel
        EXPECTED_REASONS = {"out_of_range": 1}   # quarantined rows per reason

The base then checks registration, the unit list, value-level expectations,
row reconciliation, and that broken inputs (empty, truncated, garbage, random
mutations via hypothesis) give a :class:`SourceError` naming the file, or
quarantined rows that still reconcile, and never any other exception.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensorpipe.config import SourceConfig
from sensorpipe.processing import raw_features
from sensorpipe.schema.validate import CHANNEL_NAMES, validate_unit
from sensorpipe.sources.base import SourceError, make_adapter, registered_adapters

DUMMY_ROOT = Path(__file__).resolve().parent / "dummy_data"


class AdapterCase:
    ADAPTER: str = ""
    DUMMY: str = ""
    OPTIONS: dict = {}
    PARTICIPANTS: str | None = None
    EXPECTED_UNITS: int = 1
    EXPECTED_CHANNELS: dict[str, int] = {}
    EXPECTED_REASONS: dict[str, int] = {}
    #: files the mutation tests may break (relative to the dummy folder); default: all data files
    MUTABLE: tuple[str, ...] = ()

    # --- helpers -------------------------------------------------------------
    def dummy(self) -> Path:
        return DUMMY_ROOT / self.DUMMY

    def source(self, root: Path) -> SourceConfig:
        return SourceConfig(name=f"test_{self.ADAPTER}", adapter=self.ADAPTER, path=str(root),
                            participants=str(root / self.PARTICIPANTS) if self.PARTICIPANTS else None,
                            options=dict(self.OPTIONS))

    def read_all(self, root: Path) -> dict:
        """Read and validate every unit; returns counts (rows, channels, reasons)."""
        adapter = make_adapter(self.source(root), str(root))
        schema = adapter.schema()
        out = {"units": 0, "rows_in": 0, "accepted": 0, "quarantined": 0, "channels": Counter(), "reasons": Counter()}
        for unit in adapter.list_units():
            inp = adapter.read_unit(unit)
            res = validate_unit(inp, schema)
            out["units"] += 1
            out["rows_in"] += res.rows_in
            out["accepted"] += len(res.observations)
            out["quarantined"] += res.rows_quarantined
            out["reasons"].update(res.reason_counts)
            out["channels"].update(CHANNEL_NAMES[c] for c in res.observations.channel)
            assert res.quarantine.num_rows == res.rows_quarantined
            for sig in inp.raw_signals:
                feats = raw_features.extract(sig).primary()  # each kind's primary channel (heart rate, ENMO, ...)
                out["channels"].update(CHANNEL_NAMES[c] for c in feats.channel)
        return out

    def data_files(self) -> list[str]:
        if self.MUTABLE:
            return list(self.MUTABLE)
        return sorted(str(p.relative_to(self.dummy())) for p in self.dummy().rglob("*")
                      if p.is_file() and p.name != "participants.csv" and not p.name.startswith("make_"))

    def copy(self, tmp_path: Path) -> Path:
        dst = tmp_path / "dummy"
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(self.dummy(), dst)
        return dst

    def assert_fails_cleanly(self, root: Path, broken: Path) -> None:
        """Either a SourceError naming the broken file, or counts that still reconcile."""
        try:
            got = self.read_all(root)
        except SourceError as e:
            assert broken.name in str(e), f"error does not name {broken.name}: {e}"
            return
        assert got["rows_in"] == got["accepted"] + got["quarantined"]

    # --- the declarative tests ------------------------------------------------
    def test_registered_with_docs(self):
        cls = registered_adapters()[self.ADAPTER]
        assert cls.description and cls.time_convention

    def test_reads_expected_values(self):
        got = self.read_all(self.dummy())
        assert got["units"] == self.EXPECTED_UNITS
        assert dict(got["channels"]) == self.EXPECTED_CHANNELS
        assert dict(got["reasons"]) == self.EXPECTED_REASONS
        assert got["rows_in"] == got["accepted"] + got["quarantined"]

    @pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
    def test_broken_files(self, tmp_path, damage):
        for rel in self.data_files():
            root = self.copy(tmp_path)
            target = root / rel
            data = target.read_bytes()
            if damage == "empty":
                target.write_bytes(b"")
            elif damage == "truncated":
                target.write_bytes(data[: max(1, len(data) // 2)])
            else:
                target.write_bytes(bytes(np.random.default_rng(len(data)).integers(0, 256, 2048, dtype=np.uint8)))
            self.assert_fails_cleanly(root, target)

    # one shared test method runs on every adapter subclass (hypothesis calls that "differing executors";
    # each subclass is a different adapter with its own data, so examples are not mixed up meaningfully)
    @settings(max_examples=15, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors])
    @given(data=st.data())
    def test_mutations_never_crash(self, tmp_path, data):
        files = self.data_files()
        rel = data.draw(st.sampled_from(files))
        root = self.copy(tmp_path)
        target = root / rel
        raw = bytearray(target.read_bytes())
        for _ in range(data.draw(st.integers(1, 5))):
            if not raw:
                break
            pos = data.draw(st.integers(0, len(raw) - 1))
            op = data.draw(st.sampled_from(["flip", "delete", "insert"]))
            if op == "flip":
                raw[pos] = data.draw(st.integers(0, 255))
            elif op == "delete":
                del raw[pos:pos + data.draw(st.integers(1, 40))]
            else:
                raw[pos:pos] = data.draw(st.sampled_from([b",", b"\n", b"\t", b"\"", b"NaN", b"-1e9", b"\xff\xfe"]))
        target.write_bytes(bytes(raw))
        self.assert_fails_cleanly(root, target)


def run_sources(tmp_path: Path, sources: list[dict], channels: list[str], window: dict):
    """Run a one-split (all train), non-pseudonymized pipeline over ``sources`` with the CLI, as a user would,
    and return the opened dataset: the "builds windows with `sensorpipe run`" check of an adapter."""
    import yaml

    import sensorpipe
    from sensorpipe.cli import main

    cfg = {"sources": sources, "channels": channels, "window": window,
           "splits": {"train": 1.0, "validation": 0.0, "test": 0.0},
           "output": {"dir": str(tmp_path / "out"), "name": "t", "version": "1.0.0", "formats": ["array_record"]},
           "runner": {"name": "local"}, "privacy": {"pseudonymize": False}}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    return sensorpipe.open(tmp_path / "out")

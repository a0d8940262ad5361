"""Hostile compressed inputs and pickles are refused quickly with a message naming the file and the limit.

Each bomb is real (built here, small on disk, expanding far past the limits
when read naively) and must be refused in well under a second of reading.
"""

from __future__ import annotations

import gzip
import io
import pickle
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from sensorpipe.cli import main
from sensorpipe.config import LimitsConfig, SourceConfig, load_config
from sensorpipe.sources._toolkit import limits as _limits
from sensorpipe.sources._toolkit.export_files import read_xlsx_columns
from sensorpipe.sources.apple_health._xml import read_export
from sensorpipe.sources.base import SourceError, make_adapter
from sensorpipe.sources.wesad import load_subject
from tests.sources.adapter_case import DUMMY_ROOT

HEALTH_HEAD = (b'<?xml version="1.0" encoding="UTF-8"?>\n<HealthData locale="en_US">\n'
               b' <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min" '
               b'startDate="2024-03-10 01:59:00 -0500" endDate="2024-03-10 01:59:00 -0500" value="60"/>\n')
HEALTH_TAIL = (b' <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min" '
               b'startDate="2024-03-10 02:59:00 -0500" endDate="2024-03-10 02:59:00 -0500" value="61"/>\n'
               b'</HealthData>\n')
PAD_BYTES = 80 << 20     # past the 64 MiB floor of the ratio limit; deflates to ~80 KB
XLSX = DUMMY_ROOT / "dexcom_clarity" / "dx02.xlsx"


@pytest.fixture(autouse=True)
def default_limits():
    _limits.use(LimitsConfig())
    yield
    _limits.use(LimitsConfig())


def padded_export_zip(path: Path, pad: int = PAD_BYTES) -> Path:
    """An Apple Health export.zip whose export.xml holds two records and ``pad`` bytes of whitespace."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("apple_health_export/export.xml", "w", force_zip64=True) as f:
            f.write(HEALTH_HEAD)
            block = b" " * (1 << 20)
            for _ in range(pad >> 20):
                f.write(block)
            f.write(HEALTH_TAIL)
    return path


def test_whitespace_padded_export_zip_is_refused_before_it_is_read(tmp_path):
    bomb = padded_export_zip(tmp_path / "export.zip")
    assert bomb.stat().st_size < 200_000
    t0 = time.perf_counter()
    with pytest.raises(_limits.DecompressionLimitError) as e:
        read_export(bomb)
    assert time.perf_counter() - t0 < 0.5
    msg = str(e.value)
    assert str(bomb) in msg and "limits.max_compression_ratio" in msg and "200:1" in msg
    assert f"{PAD_BYTES + len(HEALTH_HEAD) + len(HEALTH_TAIL):,} bytes" in msg


def test_a_raised_ratio_lets_the_export_through_and_whitespace_costs_no_memory(tmp_path):
    bomb = padded_export_zip(tmp_path / "export.zip")
    _limits.use(LimitsConfig(max_compression_ratio=5000))
    read_export(padded_export_zip(tmp_path / "small.zip", pad=1 << 20))   # warm: imports, first allocations
    tracemalloc.start()
    try:
        cols = read_export(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert cols.row.tolist() == [1, 2] and cols.value.to_pylist() == ["60", "61"]
    assert peak < 8 << 20    # the 80 MiB of whitespace between the records is never held (a tree parser: 80+)


def test_decompressed_size_limit_names_its_own_key(tmp_path):
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w", zipfile.ZIP_STORED) as z:   # stored: ratio 1, only the size limit binds
        z.writestr("apple_health_export/export.xml", HEALTH_HEAD + HEALTH_TAIL)
    _limits.use(LimitsConfig(max_decompressed_bytes=100))
    with pytest.raises(_limits.DecompressionLimitError, match=r"over the limit of 100 bytes "
                                                              r"\(limits.max_decompressed_bytes\)"):
        read_export(export)
    _limits.use(LimitsConfig(max_decompressed_bytes=10_000))
    assert read_export(export).row.tolist() == [1, 2]


def _xlsx_with(path: Path, sheet_edit=None, extra_members: dict[str, bytes] | None = None) -> Path:
    """dx02.xlsx (a Clarity export) rewritten: its sheet XML through ``sheet_edit``, members added."""
    with zipfile.ZipFile(XLSX) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml" and sheet_edit:
                data = sheet_edit(data)
            dst.writestr(info.filename, data)
        for name, data in (extra_members or {}).items():
            dst.writestr(name, data)
    return path


def test_xlsx_declaring_the_whole_sheet_reads_only_its_cells(tmp_path):
    """``<dimension ref="A1:XFD1048576"/>``: openpyxl would pad every row to 16,384 cells and the sheet to a
    million rows (gigabytes); the reader ignores the declared size."""
    wide = _xlsx_with(tmp_path / "wide.xlsx", lambda x: x.replace(b'<dimension ref="A1:N24" />',
                                                                 b'<dimension ref="A1:XFD1048576" />'))
    assert wide.stat().st_size < 20_000
    t0 = time.perf_counter()
    header, cols, lines = read_xlsx_columns(wide, "%Y-%m-%dT%H:%M:%S")
    assert time.perf_counter() - t0 < 2.0
    h0, c0, l0 = read_xlsx_columns(XLSX, "%Y-%m-%dT%H:%M:%S")
    assert header == h0 and lines.tolist() == l0.tolist() == list(range(2, 25))
    assert set(cols) == set(c0) and all(cols[k].tolist() == c0[k].tolist() for k in c0)


def test_xlsx_cell_far_away_is_one_malformed_row_not_a_padded_sheet(tmp_path):
    far = b'<row r="600000"><c r="XFD600000" t="inlineStr"><is><t>stray</t></is></c></row></sheetData>'
    path = _xlsx_with(tmp_path / "far.xlsx", lambda x: x.replace(b"</sheetData>", far))
    header, cols, lines = read_xlsx_columns(path, "%Y-%m-%dT%H:%M:%S")
    assert lines.tolist() == list(range(2, 25)) + [600000]
    assert cols["__extra0"].tolist() == [""] * 23 + ["stray"]   # past the header: the row is malformed
    assert all(v == "" for k in header for v in cols[k][-1:])


def test_xlsx_shared_strings_bomb_is_refused(tmp_path):
    strings = b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>' + \
              b"A" * PAD_BYTES + b"</t></si></sst>"
    path = _xlsx_with(tmp_path / "p.xlsx", extra_members={"xl/sharedStrings.xml": strings})
    with pytest.raises(SourceError) as e:
        read_xlsx_columns(path, "%Y-%m-%dT%H:%M:%S")
    assert str(path) in str(e.value) and "limits.max_compression_ratio" in str(e.value)


def _long_source(folder: Path, glob: str) -> SourceConfig:
    return SourceConfig("strap", "long_table", str(folder), None, {
        "tz": "UTC", "files": [{"glob": glob, "participant_column": "participant", "field_column": "field",
                                "time_column": "time", "time_format": "iso", "value_column": "value"}],
        "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"}}})


def test_csv_gz_is_streamed_with_the_same_rows_as_the_plain_csv(tmp_path):
    text = "participant,time,field,value\n" + "".join(
        f"p1,2024-01-01T00:{m:02d}:00Z,hr,{60 + m % 5}\n" for m in range(60))
    (tmp_path / "plain").mkdir()
    (tmp_path / "gz").mkdir()
    (tmp_path / "plain" / "hr.csv").write_text(text)
    (tmp_path / "gz" / "hr.csv.gz").write_bytes(gzip.compress(text.encode()))
    got = {}
    for kind, glob in (("plain", "*.csv"), ("gz", "*.csv.gz")):
        adapter = make_adapter(_long_source(tmp_path / kind, glob), str(tmp_path))
        (unit,) = adapter.list_units()
        (part,) = adapter.read_unit(unit).native
        got[kind] = part.drop_columns(["source_file"])
    assert got["gz"].equals(got["plain"]) and got["gz"].num_rows == 60


def _gz_bomb(path: Path) -> Path:
    """Valid rows, then 80 MiB of blank lines: ~80 KB gzipped (ratio ~1,000:1)."""
    with gzip.open(path, "wb", compresslevel=6) as f:
        f.write(b"participant,time,field,value\np1,2024-01-01T00:00:00Z,hr,60\n")
        block = b"\n" * (1 << 20)
        for _ in range(PAD_BYTES >> 20):
            f.write(block)
    return path


def test_csv_gz_bomb_is_refused_while_streaming(tmp_path):
    (tmp_path / "in").mkdir()
    bomb = _gz_bomb(tmp_path / "in" / "hr.csv.gz")
    adapter = make_adapter(_long_source(tmp_path / "in", "*.csv.gz"), str(tmp_path))
    t0 = time.perf_counter()
    with pytest.raises(SourceError) as e:
        adapter.read_unit(adapter.list_units()[0])
    assert time.perf_counter() - t0 < 2.0
    assert str(bomb) in str(e.value) and "at least" in str(e.value) and "limits.max_compression_ratio" in str(e.value)
    _limits.use(LimitsConfig(max_compression_ratio=5000))   # the documented fix: the one valid row is read
    (part,) = adapter.read_unit(adapter.list_units()[0]).native
    assert part.column("value").to_pylist() == ["60"] and part.num_rows == 1


def test_cli_run_on_a_gz_bomb_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    bomb = _gz_bomb(tmp_path / "in" / "hr.csv.gz")
    (tmp_path / "k").write_text("0123456789abcdef0123456789abcdef")
    src = _long_source(tmp_path / "in", "*.csv.gz")
    cfg = {"sources": [{"name": src.name, "adapter": src.adapter, "path": src.path, "options": src.options}],
           "channels": ["heart_rate"], "output": {"dir": str(tmp_path / "out"), "name": "bomb"},
           "runner": {"name": "local"}, "privacy": {"key_file": str(tmp_path / "k")}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(tmp_path / "p.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bomb) in err[0] and "limits.max_compression_ratio" in err[0]


def test_limits_config_keys_defaults_and_fingerprint():
    base = {"sources": [{"name": "s", "adapter": "long_table", "path": ".", "options": {
        "files": [{"glob": "*.csv", "time_column": "t", "value_column": "v", "field": "hr"}],
        "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"}}}}], "channels": ["heart_rate"]}
    cfg = load_config(base)
    assert cfg.limits == LimitsConfig(max_decompressed_bytes=20 << 30, max_compression_ratio=200.0, chunk_days=30)
    raised = load_config({**base, "limits": {"max_decompressed_bytes": 1 << 40, "max_compression_ratio": 1000,
                                             "chunk_days": 7}})
    assert raised.limits.max_compression_ratio == 1000.0 and raised.limits.chunk_days == 7
    assert raised.fingerprint() == cfg.fingerprint()   # limits never change the records
    from sensorpipe.config import ConfigError

    with pytest.raises(ConfigError, match="limits.max_compression_ratio"):
        load_config({**base, "limits": {"max_compression_ratio": 0.5}})
    with pytest.raises(ConfigError, match="limits.chunk_days"):
        load_config({**base, "limits": {"chunk_days": -1}})


# --- WESAD pickles --------------------------------------------------------------------------------------------
def _subject(tmp_path: Path, data: bytes) -> Path:
    folder = tmp_path / "WESAD" / "S2"
    folder.mkdir(parents=True)
    (folder / "S2.pkl").write_bytes(data)
    return folder / "S2.pkl"


def test_memo_reference_bomb_of_nested_lists_is_refused(tmp_path):
    """30 levels of lists, each holding the previous level 10 times by memo reference: 702 bytes that describe
    10**29 list elements when walked as a tree."""
    ops = [b"\x80\x02", b"}", b"q\x00", b"]", b"q\x01"]          # {} (memo 0) and the empty list (memo 1)
    for k in range(2, 32):
        ops += [b"("] + [b"h" + bytes([k - 1])] * 10 + [b"l", b"q" + bytes([k])]   # MARK, 10 x BINGET, LIST, BINPUT
    ops += [b"h\x00", b"X\x05\x00\x00\x00label", b"h\x1f", b"s", b"."]   # {'label': the deepest list}
    data = b"".join(ops)
    assert len(data) < 800
    pkl = _subject(tmp_path, data)
    assert isinstance(pickle.loads(data)["label"], list)    # the file is a valid pickle: plain loads is cheap
    t0 = time.perf_counter()
    with pytest.raises(SourceError) as e:
        load_subject(pkl, tmp_path / "WESAD")
    assert time.perf_counter() - t0 < 0.5
    assert str(pkl) in str(e.value) and "memo-reference bomb" in str(e.value)


def test_repeated_encode_of_one_memoized_string_is_refused(tmp_path):
    """``_codecs.encode`` called 100,000 times on one memoized 1 KiB string: 1.7 MB of code for 100 MB of
    bytes."""
    out = io.BytesIO()
    out.write(b"\x80\x02c_codecs\nencode\nq\x00X\x00\x04\x00\x00" + b"a" * 1024 + b"q\x01X\x06\x00\x00\x00latin1q\x02")
    out.write(b"(")                                                    # MARK
    out.write(b"h\x00h\x01h\x02\x86R" * 100_000)                       # encode, str, 'latin1', TUPLE2, REDUCE
    out.write(b"l.")
    pkl = _subject(tmp_path, out.getvalue())
    with pytest.raises(SourceError) as e:
        load_subject(pkl, tmp_path / "WESAD")
    assert str(pkl) in str(e.value) and "more than the file's own size" in str(e.value)


def test_a_shared_array_is_built_once(tmp_path):
    """Two keys holding one array (as pickle's memo shares it) still load: sharing alone is no bomb."""
    arr = np.arange(6, dtype=np.float64)
    data = pickle.dumps({"a": arr, "b": arr, "c": [arr] * 3}, protocol=2)
    from sensorpipe.sources.wesad import _ArraysOnly, _Builder

    obj = _Builder(len(data)).build(_ArraysOnly(io.BytesIO(data), len(data), encoding="latin1").load())
    assert obj["a"] is obj["b"] is obj["c"][2] and obj["a"].tolist() == arr.tolist()

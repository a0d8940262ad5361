"""long_table reads what real CSV exports look like, with no converter script: preambles, separate date and
time columns, decimal commas with ';', localized column names, other encodings, 15-minute intervals spread or
repeated, and ISO times with an IANA [Zone] suffix."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sensorpipe.config import ConfigError, SourceConfig
from sensorpipe.schema.validate import CHANNEL_NAMES, validate_unit
from sensorpipe.sources.base import SourceError, make_adapter
from tests.sources.adapter_case import run_sources

FIELDS = {"Activity": {"channel": "steps", "unit": "steps/min"}, "HR": {"channel": "heart_rate", "unit": "bpm"}}
ALIASES = {"Date": ["Datum"], "Time": ["Zeit", "Heure"], "Activity": ["Aktivität", "Activité"],
           "HR": ["Herzfrequenz", "Fréquence cardiaque"]}

# An export in the shape of Philips Actiware / vendor CSVs: a preamble of device and subject lines (its length
# varies with the device), then a header in the export's language, ';' separators, DD.MM.YYYY dates and a
# decimal comma, in Windows-1252.
PREAMBLE_DE = ['"Actiware-Export-Datei"', '"Erstellt";"11.03.2024 08:02:11"', '"Gerät";"Spectrum Plus"',
               '"Seriennummer";"A4000123"', '"Epochenlänge";"00:01:00"', '', '"-------- Epochen-für-Epochen-Daten --"',
               '']
ROWS = [("10.03.2024", "01:58:00", "12", "61,5"), ("10.03.2024", "01:59:00", "0", "60"),
        ("10.03.2024", "02:30:00", "7", "59"),          # the skipped hour: quarantined
        ("10.03.2024", "03:00:00", "4", "62,25"), ("10.03.2024", "03:01:00", "x", "63")]


def write_export(path: Path, header: list[str], preamble: list[str], encoding: str = "cp1252") -> Path:
    lines = preamble + [";".join(f'"{h}"' for h in header)] + [";".join(r) for r in ROWS]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def spec(**extra) -> dict:
    base = {"glob": "*.csv", "time_column": "Time", "date_column": "Date", "time_format": "local",
            "local_time_format": "%d.%m.%Y %H:%M:%S", "value_columns": ["Activity", "HR"], "delimiter": ";",
            "decimal": ",", "encoding": "cp1252", "column_aliases": ALIASES, "header_regex": r'^"?(Datum|Date)"?;'}
    return {**base, **extra}


def read(root: Path, files: list[dict], fields: dict = FIELDS, tz: str = "America/New_York", work_dir=None):
    """{participant: {(channel, t_utc_ns): value}}, results."""
    src = SourceConfig("lt", "long_table", str(root), None, {"files": files, "fields": fields, "tz": tz})
    adapter = make_adapter(src, str(root), work_dir)
    out, results = defaultdict(dict), {}
    for unit in adapter.list_units():
        res = validate_unit(adapter.read_unit(unit), adapter.schema())
        results[unit.participant.participant_id] = res
        o = res.observations
        for c, t, v in zip(o.channel, o.t_utc_ns, o.value):
            out[unit.participant.participant_id][(CHANNEL_NAMES[c], int(t))] = float(v)
    return out, results


def ns(*args, tz: str) -> int:
    return int(dt.datetime(*args, tzinfo=ZoneInfo(tz)).timestamp()) * 10**9


def test_localized_export_with_preamble_date_column_and_decimal_comma(tmp_path):
    write_export(tmp_path / "s01.csv", ["Datum", "Zeit", "Aktivität", "Herzfrequenz"], PREAMBLE_DE)
    got, results = read(tmp_path, [spec()])
    obs = got["s01"]
    ny = "America/New_York"
    assert obs[("heart_rate", ns(2024, 3, 10, 1, 58, tz=ny))] == 61.5          # decimal comma
    assert obs[("heart_rate", ns(2024, 3, 10, 3, 0, tz=ny))] == 62.25
    assert obs[("steps", ns(2024, 3, 10, 3, 0, tz=ny))] == 4.0
    assert ns(2024, 3, 10, 3, 0, tz=ny) - ns(2024, 3, 10, 1, 59, tz=ny) == 60 * 10**9
    q = results["s01"].quarantine.to_pandas()
    # row numbers are the file's own line numbers: 8 preamble lines, the header on line 9
    assert sorted(zip(q.reason, q.source_row)) == [("nonexistent_local_time", 12), ("nonexistent_local_time", 12),
                                                   ("wrong_type", 14)]
    assert set(q.time) == {"10.03.2024 02:30:00", "10.03.2024 03:01:00"}


def test_the_same_export_in_french_and_english_reads_the_same(tmp_path):
    for lang in ("de", "fr", "en"):
        (tmp_path / lang).mkdir()
    de = write_export(tmp_path / "de" / "s01.csv", ["Datum", "Zeit", "Aktivität", "Herzfrequenz"], PREAMBLE_DE)
    write_export(tmp_path / "fr" / "s01.csv", ["Date", "Heure", "Activité", "Fréquence cardiaque"],
                 ['"Fichier d\'export Actiware"', '"Appareil";"Spectrum Plus"', ''])
    write_export(tmp_path / "en" / "s01.csv", ["Date", "Time", "Activity", "HR"], [], encoding="utf-8")
    de_obs = read(de.parent, [spec()])[0]
    assert read(tmp_path / "fr", [spec()])[0] == de_obs
    assert read(tmp_path / "en", [spec(encoding="utf-8")])[0] == de_obs
    # a fixed preamble length works too
    assert read(tmp_path / "fr", [spec(header_regex=None, skip_rows=3)])[0] == de_obs


def test_fifteen_minute_intervals_spread_totals_and_repeat_rates(tmp_path):
    (tmp_path / "p1.csv").write_text("time,Activity,HR\n2024-06-01T12:00:00+02:00,150,88\n"
                                     "2024-06-01T12:15:00+02:00,465,97.5\n2024-06-01T12:30:00+02:00,abc,90\n")
    files = [{"glob": "*.csv", "time_column": "time", "time_format": "iso", "value_columns": ["Activity", "HR"],
              "interval_s": 900}]
    obs, results = read(tmp_path, files)
    noon = ns(2024, 6, 1, 10, 0, tz="UTC")
    steps = [obs["p1"].get(("steps", noon + m * 60 * 10**9)) for m in range(45)]
    hr = [obs["p1"].get(("heart_rate", noon + m * 60 * 10**9)) for m in range(45)]
    assert steps[:15] == [10.0] * 15 and steps[15:30] == [31.0] * 15 and steps[30:] == [None] * 15
    assert sum(steps[:30]) == 150 + 465                                # totals preserved exactly
    assert hr == [88.0] * 15 + [97.5] * 15 + [90.0] * 15
    assert dict(results["p1"].reason_counts) == {"wrong_type": 1}      # "abc": one row, quarantined once
    repeated, _ = read(tmp_path, [{**files[0], "interval_fill": "repeat"}])
    assert repeated["p1"][("steps", noon + 14 * 60 * 10**9)] == 150.0


def test_iso_times_with_an_iana_zone_suffix(tmp_path):
    (tmp_path / "p1.csv").write_text(
        "time,HR\n"
        "2024-11-03T01:30:00-04:00[America/New_York],70\n"      # the first 01:30 (EDT), by its offset
        "2024-11-03T01:30:00-05:00[America/New_York],71\n"      # the second 01:30 (EST)
        "2024-11-03T09:00:00[Europe/Paris],72\n"                # no offset: the zone's rules place it
        "2024-03-31T02:30:00[Europe/Paris],73\n")               # no offset, skipped hour: quarantined
    obs, results = read(tmp_path, [{"glob": "*.csv", "time_column": "time", "time_format": "iso",
                                    "value_column": "HR", "field": "HR"}])
    assert obs["p1"] == {("heart_rate", ns(2024, 11, 3, 5, 30, tz="UTC")): 70.0,
                         ("heart_rate", ns(2024, 11, 3, 6, 30, tz="UTC")): 71.0,
                         ("heart_rate", ns(2024, 11, 3, 8, 0, tz="UTC")): 72.0}
    assert dict(results["p1"].reason_counts) == {"nonexistent_local_time": 1}


def test_clear_errors_for_a_missing_header_and_bad_options(tmp_path):
    write_export(tmp_path / "s01.csv", ["Datum", "Zeit", "Aktivität", "Herzfrequenz"], PREAMBLE_DE)
    with pytest.raises(SourceError, match=r"s01\.csv: no header line found: no line matches header_regex"):
        read(tmp_path, [spec(header_regex="^Timestamp")])
    with pytest.raises(ConfigError, match=r"decimal ',' needs another delimiter"):
        read(tmp_path, [spec(delimiter=",")])
    with pytest.raises(ConfigError, match=r"interval_s: 90"):
        read(tmp_path, [spec(interval_s=90)])
    with pytest.raises(ConfigError, match=r"unknown text encoding 'klingon'"):
        read(tmp_path, [spec(encoding="klingon")])


def test_a_shared_export_with_a_preamble_runs_through_the_partition_step(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    lines = ['"Study export";"v2"', '"Site";"Lyon"', "Sujet;Date;Heure;Activité"]
    for pid in ("a", "b"):
        for m in range(30):
            lines.append(f"{pid};01.06.2024;12:{m:02d}:00;{m}")
    (data / "all.csv").write_bytes(("\n".join(lines) + "\n").encode("cp1252"))
    files = [{"glob": "*.csv", "participant_column": "Subject", "time_column": "Time", "date_column": "Date",
              "time_format": "local", "local_time_format": "%d.%m.%Y %H:%M:%S", "value_column": "Activity",
              "field": "Activity", "delimiter": ";", "encoding": "cp1252", "header_regex": "^Sujet;",
              "column_aliases": {"Subject": ["Sujet"], "Date": ["Date"], "Time": ["Heure"],
                                 "Activity": ["Activité"]}}]
    ds = run_sources(tmp_path, [{"name": "lt", "adapter": "long_table", "path": str(data),
                                 "options": {"files": files, "fields": FIELDS, "tz": "Europe/Paris"}}],
                     ["steps"], {"size_min": 30, "stride_min": 30, "alignment": "none"})
    windows = [ex for s in ds.splits for ex in ds[s]]
    assert len(windows) == 2
    for ex in windows:
        assert ds.denormalize(ex["input"])[:, 0].round(6).tolist() == [float(m) for m in range(30)]

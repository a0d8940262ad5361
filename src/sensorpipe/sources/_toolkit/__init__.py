"""What source adapters share, so that no adapter imports another adapter.

Adapters import from here, from :mod:`sensorpipe.sources.base` (the adapter
interface, the participants table and the zone checks, which the base class
itself uses), and from :mod:`~sensorpipe.sources.partition` /
:mod:`~sensorpipe.sources.study`; never from a sibling adapter
(``tests/sources/test_adapter_imports.py`` checks it). Label processors that
need an adapter's data ask the adapter through :func:`~sensorpipe.sources.base.make_adapter`.

* :mod:`.export_files`: one export per participant, ragged CSV/XLSX columns (Dexcom Clarity, LibreView).
* :mod:`.cgm`: censored CGM readings (Low/High) at the glucose bounds, and their count.
* :mod:`.text_csv`: header CSVs read as text with line numbers, malformed lines kept (Fitabase, Takeout).
* :mod:`.opensignals_header`: the OpenSignals header (OpenSignals exports, WESAD's RespiBAN text file).
* :mod:`.recording_start`: raw recordings placed in time from a local start (EDF, OpenSignals, WESAD).
* :mod:`.xml_files`: local element names and parse errors with line and column (Garmin TCX/GPX).
* :mod:`.limits`: decompression and size limits on inputs.
* :mod:`.memo`: a small per-process memo keyed by file versions (a read and its labels share a parse).

The package starts with an underscore, so ``sensorpipe.sources`` does not
import it as an adapter; its modules are imported by the adapters that use them.
"""

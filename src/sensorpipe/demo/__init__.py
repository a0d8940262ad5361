"""The demo's synthetic datasets (``sensorpipe demo``), kept out of :mod:`sensorpipe.sources`.

:func:`~sensorpipe.demo.synthetic.generate_demo_sources` writes four
realistic studies in the formats real adapters read (Fitbit-style minute
CSVs, Dexcom Clarity exports, E4 sessions, a symptom-onset cohort); the
pipeline then reads them through those adapters like any user data. Nothing
here is an adapter, and nothing in the pipeline imports it.
:mod:`._synth_signals` draws the signals, :mod:`._clarity_writer` writes
Clarity CSV files.
"""

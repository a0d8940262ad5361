"""The ground floor: the data model every stage passes on, the time rules, and the per-unit array files.

Everything else imports down into this package; it imports only numpy,
pyarrow, the standard library and the other ground-floor modules
(``_typing``, ``_arrow``, ``units``), never the config or a stage. How one
unit of work travels through the pipeline, type by type::

    refs.UnitRef  ─ one participant of one source: config section, base dir, Participant(id, IANA tz,
      │             attributes), the files, their partitions and known fingerprints (picklable)
      │ SourceAdapter.read_unit
      ▼
    inputs.UnitInput ─ the native rows, Arrow tables still holding the files' own values
      │                (+ inputs.RawSignal: dense waveforms, values[i] at start_utc_ns + i / sample_rate_hz)
      │ schema.validate (rows in = accepted + quarantined)     processing.raw_features (minute features)
      ▼                                                          ▼
    observations.Observations ─ accepted rows as columns: channel index, t_utc_ns, value in the channel's
      │                         unit, file_index + source_row (lineage); several sources fuse into one
      │ processing.grid.build_grid (bin = whole minutes since the grid start)
      ▼
    grid.MinuteGrid ─ values [T, C] float32, observed [T, C] bool, tz_offset_min [T] int16,
      │               start_minute (UTC), channels; cleaning masks cells in place
      │ processing.window.cut_windows (strategy, max missing, coverage; drops counted by reason)
      ▼
    windows.WindowBatch ─ values / observed [N, W, C], start_utc_min [N], tz_offset_min [N, W],
      │                   local_min [N, W], channels, dropped; + unit and reading_interval_min for
      │                   label processors, + events per window for caption levels
      │ sensorpipe.labels processors -> unified labels (labels.LABELS, missing explicit), labels.LabelEvent s
      │ arrays.save_arrays (the unit cache between pass 1 and pass 2) / arrays.load_arrays
      ▼
    records ─ impute, normalize, caption, encode: one tf.train.Example per window
              (input, mask, time, labels, caption, ...; storage.layout)

Modules: :mod:`~sensorpipe.core.refs`, :mod:`~sensorpipe.core.inputs`,
:mod:`~sensorpipe.core.observations`, :mod:`~sensorpipe.core.grid`,
:mod:`~sensorpipe.core.windows`, :mod:`~sensorpipe.core.labels` (the unified
label schema and label events), :mod:`~sensorpipe.core.timeparse` (how
timestamps become UTC nanoseconds, DST rules included) and
:mod:`~sensorpipe.core.arrays` (named arrays in one file, written atomically).
"""

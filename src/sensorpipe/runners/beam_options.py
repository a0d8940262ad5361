"""Apache Beam pipeline options from ``runner.beam_options`` and ``--beam-option KEY=VALUE``.

Both pass through to Beam's ``PipelineOptions`` unchanged, so every option a
Beam runner documents (``runner``, ``project``, ``temp_location``,
``flink_master``, ``setup_file``, ``sdk_container_image``, ``direct_num_workers``,
...) works as Beam spells it. The config takes a list of flags
(``["--runner=DataflowRunner"]``, the leading ``--`` optional) or a mapping
(``{runner: DataflowRunner}``; ``true`` is a bare switch, ``false`` leaves it out);
the CLI's ``--beam-option`` flags come after the config's, so they win.
Workers log at WARNING unless ``default_sdk_harness_log_level`` says otherwise
(at INFO each DirectRunner worker prints a dozen start-up lines per pipeline).
Beam is imported lazily: only a run on the ``beam`` runner needs the extra.
"""

from __future__ import annotations

from typing import Any, Iterable

from sensorpipe.config import ConfigError

INSTALL_HINT = "install it with: pip install 'sensorpipe[beam]'"


def beam_flags(options: Iterable[str] | dict[str, Any] = ()) -> list[str]:
    """``runner.beam_options`` (list or mapping) as ``--key=value`` flags, in the order given."""
    if isinstance(options, dict):
        flags = []
        for key, value in options.items():
            key = str(key).lstrip("-")
            if value is True:
                flags.append(f"--{key}")
            elif value is not False and value is not None:
                flags.append(f"--{key}={value}")
        return flags
    return [o if o.startswith("--") else f"--{o}" for o in options]


def parse_cli_options(pairs: Iterable[str]) -> list[str]:
    """``--beam-option KEY=VALUE`` arguments (repeatable) as flags; a pair without ``=`` is a one-line error."""
    flags = []
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip("-"):
            raise ConfigError(f"--beam-option {pair!r}: expected KEY=VALUE (e.g. --beam-option runner=DirectRunner, "
                             f"--beam-option direct_num_workers=2)")
        flags.append(f"--{key.lstrip('-')}={value}")
    return flags


def pipeline_options(flags: list[str]):
    """Beam's ``PipelineOptions`` for ``flags`` (DirectRunner unless they name another runner)."""
    try:
        from apache_beam.options.pipeline_options import PipelineOptions
    except ImportError as e:
        raise ImportError(f"runner.name: beam needs apache-beam, which is not installed; {INSTALL_HINT}") from e
    if not any(f.startswith("--runner=") or f == "--runner" for f in flags):
        flags = ["--runner=DirectRunner", *flags]
    if not any(f.startswith("--default_sdk_harness_log_level") for f in flags):
        flags = [*flags, "--default_sdk_harness_log_level=WARNING"]   # not every worker's start-up at INFO
    return PipelineOptions(flags)

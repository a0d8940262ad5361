"""The run plan: a loaded config plus the registered components it names (the composition root).

:mod:`sensorpipe.config` is a leaf: it reads YAML into typed sections and checks each on its own
(types, ranges, fixed enumerations). Whatever needs the registries, or relates one section to
another, is checked here, where importing every layer is allowed:

- the source adapters by name, each one's ``options`` against its ``Options`` dataclass, and
  the adapter's schema built once (a bad option value or unit fails before any file is read);
- the cleaning rules, the windowing strategy, the normalizers and the caption levels by name,
  with their own options (the checks stay next to each registry);
- the per-channel sections, the required coverage and the studies against ``channels`` and
  ``sources``.

Every error is a :class:`~sensorpipe.core.errors.ConfigError` naming the key path, as the
config's own are, so the CLI prints it as the same one line (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensorpipe.captions.base import CaptionLevel, get_level
from sensorpipe.config import (CaptionConfig, CleaningConfig, NormalizationConfig, PipelineConfig, SourceConfig,
                               WindowConfig, build_dataclass, load_config)
from sensorpipe.core.errors import ConfigError
from sensorpipe.processing.clean import CleaningRule, check_cleaning_config, get_cleaning_rule
from sensorpipe.processing.normalizers import Normalizer, get_normalizer
from sensorpipe.processing.windowing import WindowingStrategy, check_window_config, get_strategy
from sensorpipe.sources.base import SourceAdapter, get_adapter


@dataclass(frozen=True)
class SourcePlan:
    """One source with its adapter class and its options parsed into the adapter's ``Options``."""

    config: SourceConfig
    adapter: type[SourceAdapter]
    options: Any


@dataclass(frozen=True)
class RunPlan:
    """A config every name of which resolved: what the driver composes a run from."""

    config: PipelineConfig
    sources: tuple[SourcePlan, ...]
    cleaning_rules: tuple[type[CleaningRule], ...]
    window_strategy: type[WindowingStrategy]
    #: every normalization method the config names (default and per channel), by name
    normalizers: dict[str, Normalizer]
    caption_levels: tuple[type[CaptionLevel], ...]


def resolve_cleaning(section: CleaningConfig, path: str = "cleaning") -> tuple[type[CleaningRule], ...]:
    """The rule classes of ``section.rules``, after the rules' own checks (names, options, per-channel ranges)."""
    check_cleaning_config(section, path)
    return tuple(get_cleaning_rule(name, f"{path}.rules[{i}]") for i, name in enumerate(section.rules))


def resolve_window(section: WindowConfig, path: str = "window") -> type[WindowingStrategy]:
    """The strategy class of ``section.strategy``, after its check of the sections and options it reads."""
    check_window_config(section, path)
    return get_strategy(section.strategy, f"{path}.strategy")


def resolve_normalizers(section: NormalizationConfig, path: str = "normalization") -> dict[str, Normalizer]:
    """Every method the section names, by name; an unknown one is an error at its key path."""
    named: dict[str, Normalizer] = {}
    if section.default is not None:
        named[section.default] = get_normalizer(section.default, f"{path}.default")
    for ch, spec in section.per_channel.items():
        method, where = (spec, f"{path}.per_channel.{ch}") if isinstance(spec, str) else \
            (spec.method, f"{path}.per_channel.{ch}.method")
        if method not in named:
            named[method] = get_normalizer(method, where)
    return named


def resolve_caption_levels(section: CaptionConfig, path: str = "captions") -> tuple[type[CaptionLevel], ...]:
    """The level classes of ``section.levels``, in order."""
    return tuple(get_level(name, f"{path}.levels[{i}]") for i, name in enumerate(section.levels))


def resolve_source(source: SourceConfig, index: int, base_dir: str) -> SourcePlan:
    """``sources[index]``'s adapter and options; the adapter's schema is built once so bad options fail here."""
    adapter_cls = get_adapter(source.adapter, f"sources[{index}].adapter")
    options = build_dataclass(adapter_cls.Options, source.options, f"sources[{index}].options")
    try:
        adapter_cls(source, base_dir).schema()
    except (KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) else str(e)
        raise ConfigError(f"sources[{index}] ({source.name}): {msg}") from None
    return SourcePlan(source, adapter_cls, options)


def check_channel_sections(cfg: PipelineConfig) -> None:
    """Per-channel settings and required coverage may only name output channels."""
    for section, mapping in (("imputation", cfg.imputation.per_channel), ("normalization", cfg.normalization.per_channel),
                             ("cleaning", cfg.cleaning.per_channel)):
        for ch in mapping:
            if ch not in cfg.channels:
                raise ConfigError(f"{section}.per_channel.{ch}: not one of the output channels ({', '.join(cfg.channels)})")
    for ch in cfg.window.required_coverage:
        if ch not in cfg.channels:
            raise ConfigError(f"window.required_coverage.{ch}: not one of the output channels ({', '.join(cfg.channels)})")


def check_studies(cfg: PipelineConfig) -> None:
    """``studies.<name>`` must name a study of ``sources``, and its priorities that study's sources."""
    members: dict[str, list[str]] = {}
    for s in cfg.sources:
        members.setdefault(s.study, []).append(s.name)
    for study, sc in cfg.studies.items():
        where = f"studies.{study}"
        if study not in members:
            raise ConfigError(f"{where}: no source declares study {study!r}; studies of the sources: "
                              f"{', '.join(sorted(members))} (set sources[].study)")
        for ch, order in sc.priority.items():
            if ch not in cfg.channels:
                raise ConfigError(f"{where}.priority.{ch}: not one of the output channels ({', '.join(cfg.channels)})")
            for k, name in enumerate(order):
                if name not in members[study]:
                    raise ConfigError(f"{where}.priority.{ch}[{k}]: {name!r} is not a source of study {study!r} "
                                      f"({', '.join(members[study])})")
            if len(set(order)) != len(order):
                raise ConfigError(f"{where}.priority.{ch}: a source is listed twice")


def build_plan(cfg: PipelineConfig) -> RunPlan:
    """Resolve and check every name of ``cfg``, sections in the config's order, then the relations between them."""
    cleaning_rules = resolve_cleaning(cfg.cleaning)
    window_strategy = resolve_window(cfg.window)
    normalizers = resolve_normalizers(cfg.normalization)
    caption_levels = resolve_caption_levels(cfg.captions)
    check_channel_sections(cfg)
    sources = tuple(resolve_source(s, i, cfg.base_dir) for i, s in enumerate(cfg.sources))
    check_studies(cfg)
    return RunPlan(cfg, sources, cleaning_rules, window_strategy, normalizers, caption_levels)


def load_plan(source: str | Path | dict[str, Any] | PipelineConfig, base_dir: str | None = None) -> RunPlan:
    """:func:`~sensorpipe.config.load_config` (unless given a config) and then :func:`build_plan`."""
    cfg = source if isinstance(source, PipelineConfig) else load_config(source, base_dir)
    return build_plan(cfg)


__all__ = ["RunPlan", "SourcePlan", "build_plan", "load_plan", "resolve_cleaning", "resolve_window",
           "resolve_normalizers", "resolve_caption_levels", "resolve_source", "check_channel_sections",
           "check_studies"]

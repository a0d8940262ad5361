"""Errors shared by every layer, kept at the bottom so raising one imports nothing of the pipeline.

:class:`ConfigError` lives here rather than in :mod:`sensorpipe.config` so that the plugin
loader, the registries and the adapters can raise it without importing the config module
(which would put config below them); ``sensorpipe.config`` re-exports it.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration problem, with the key path and the fix in the message."""


__all__ = ["ConfigError"]

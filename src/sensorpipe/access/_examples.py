"""What the framework loaders share: one split (optionally channel-selected), a field choice.

The split itself (``sensorpipe.access.dataset.Split``) selects channels and
opens its reader lazily in whichever process reads, so loaders add only their
framework's conversion on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class SplitExamples:
    """Examples of one split as ``sensorpipe.open()`` returns them, restricted to ``fields``."""

    def __init__(self, path_or_dataset: Any, split: str = "train", channels: Sequence[str] | None = None,
                 fields: Sequence[str] | None = None) -> None:
        from sensorpipe.access.dataset import SensorDataset

        ds = path_or_dataset if isinstance(path_or_dataset, SensorDataset) else SensorDataset(path_or_dataset)
        view = ds[split] if channels is None else ds[split].select(channels)
        self._split = view
        self.split = split
        self.channels: tuple[str, ...] = tuple(view.channels)
        self._np_dtype = ds.features.np_dtype
        self._dir = str(ds.version_dir)
        if fields is not None:
            fields = tuple(fields)
            unknown = [f for f in fields if f not in self._np_dtype]
            if unknown:
                raise KeyError(f"unknown field(s) {', '.join(unknown)}; examples have: "
                               f"{', '.join(sorted(self._np_dtype))}")
        self.fields = fields

    def __len__(self) -> int:
        return len(self._split)

    def example(self, i: int) -> dict[str, Any]:
        ex = self._split[int(i)]
        return ex if self.fields is None else {k: ex[k] for k in self.fields}

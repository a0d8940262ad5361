"""What the workers need after pass 1: imported ahead, off the critical path.

Pass 2 captions windows (the structural level's peak finding loads
``scipy.signal``) and serializes records; the run's tail
writes shards (TFDS's metadata writer) and the HTML report in the workers and
records metadata (SQLAlchemy) in the driver. Imported on first use, these
would cost every worker their import time at the start of pass 2.

* Under ``forkserver`` the forkserver imports this module once, while the
  driver works through the first units, and every worker forks with it.
* Under ``fork`` the driver imports it in a background thread during pass 1
  (the workers are busy then) and the runner forks fresh workers for pass 2,
  which start with all of it loaded.
"""

from __future__ import annotations

import tensorflow_datasets.core.folder_dataset  # noqa: F401

import sensorpipe.captions.base  # noqa: F401  (its registry: the caption levels, walked below)
import sensorpipe.captions._scipy_signal  # noqa: F401  (scipy.signal: the structural captions' peak finding)
import sensorpipe.metadata.store  # noqa: F401
import sensorpipe.processing.raw_features  # noqa: F401  (raw-signal units; stages imports it on first use)
import sensorpipe.quality.record  # noqa: F401
import sensorpipe.quality.report  # noqa: F401
import sensorpipe.storage.encode  # noqa: F401
import sensorpipe.storage.features  # noqa: F401
from sensorpipe.registry import REGISTRIES

for _registry in list(REGISTRIES.values()):   # the built-in classes of every kind, imported ahead as well
    _registry.builtins()

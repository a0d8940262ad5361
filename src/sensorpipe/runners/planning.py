"""Planning: the run's units, with shared multi-participant files partitioned on the runner's workers.

Listing the units partitions every shared file under ``.work``
(:mod:`sensorpipe.sources.partition`). Done in the driver alone, that step
left the workers idle at the start of every run; on a runner with worker
processes each worker now partitions a range of such a file while the
driver hashes it. The local runner has nothing to run a range on and keeps
the serial step (which hashes in a thread meanwhile).
"""

from __future__ import annotations

from sensorpipe.sources import partition
from sensorpipe.sources.study import plan_persons


def plan_units(cfg, adapters: list, pool) -> list:
    """:func:`~sensorpipe.sources.study.plan_persons`, partitioning shared files on ``pool``'s workers."""
    if getattr(pool, "remote", None) is not None:   # beam, remote work area: planned on a worker
        return pool.plan_units(cfg)
    workers = getattr(pool, "workers", 1)
    if workers < 2:
        return plan_persons(cfg, adapters)
    with partition.parallel(pool.submit, workers):
        return plan_persons(cfg, adapters)


__all__ = ["plan_units"]

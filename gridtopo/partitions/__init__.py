"""The partitioned pipeline: the partition (a province, or a region or set of feeders within
one) is the unit of work.

Each partition's exports are read, validated, deduplicated and reconciled by the library's own
functions (:mod:`~gridtopo.partitions.steps`); the few facts that cross partitions — a tie
between feeders of two partitions, a PMS id naming another partition's transformer, a customer
whose area is in another partition, a transformer two partitions' areas compete for — are
resolved by the driver between the steps (:mod:`~gridtopo.partitions.run`). Where the steps run
is an :class:`Executor`'s business: :class:`InProcess` here, :mod:`gridtopo.spark` on Apache
Spark. The default ingest stays one partition in one process (:mod:`gridtopo.pipeline`).
"""

from gridtopo.partitions.run import PartitionedRun, PartitionOverlapError, partitions_of
from gridtopo.partitions.stage import Context, Executor, InProcess, Outputs, Step

__all__ = [
    "Context",
    "Executor",
    "InProcess",
    "Outputs",
    "PartitionOverlapError",
    "PartitionedRun",
    "Step",
    "partitions_of",
]

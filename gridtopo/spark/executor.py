"""Run the partitioned pipeline's steps on Spark: one task per partition, results as Arrow.

A step's outputs (small polars frames) travel back to the driver as Arrow IPC bytes in rows
``(partition, name, payload)``: one schema for every step, whatever frames it returns.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from gridtopo.partitions import Context, Outputs, Step

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

RESULT_SCHEMA = "partition string, name string, payload binary"


def spark_session(master: str = "local[2]", app: str = "gridtopo") -> SparkSession:
    """A Spark session on ``master`` whose Python workers run this interpreter; no UI, no
    downloads."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers: this venv's packages
    return (SparkSession.builder.master(master).appName(app)
            .config("spark.ui.enabled", "false")
            .config("spark.pyspark.python", sys.executable)
            .config("spark.pyspark.driver.python", sys.executable)
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .getOrCreate())


def _ipc(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_ipc(buffer)
    return buffer.getvalue()


def _task(step: Step, ctx: Context):  # type: ignore[no-untyped-def]
    """The ``mapInArrow`` function running ``step`` on each partition key of its batches."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for key in batch.column(0).to_pylist():
                outputs = step(key, ctx)
                names = list(outputs) or [""]
                yield pa.RecordBatch.from_pydict({
                    "partition": [key] * len(names),
                    "name": names,
                    "payload": [_ipc(outputs[n]) if n else b"" for n in names],
                }, schema=pa.schema([("partition", pa.string()), ("name", pa.string()),
                                     ("payload", pa.binary())]))

    return run


class SparkExecutor:
    """An :class:`~gridtopo.partitions.Executor` on a Spark session: each step is a job with
    one task per partition."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def map(self, step: Step, keys: list[str], ctx: Context) -> dict[str, Outputs]:
        """Run ``step`` for every key as Spark tasks; the frames each returned, by key."""
        frame = self.spark.createDataFrame([(k,) for k in keys], "partition string")
        rows = frame.repartition(len(keys), "partition").mapInArrow(
            _task(step, ctx), RESULT_SCHEMA).collect()
        results: dict[str, Outputs] = {key: {} for key in keys}
        for row in rows:
            if row["name"]:
                results[row["partition"]][row["name"]] = pl.read_ipc(io.BytesIO(row["payload"]))
        return results

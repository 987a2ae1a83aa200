"""The partitioned pipeline on Apache Spark (optional extra ``gridtopo[spark]``, Java 17+).

:class:`SparkExecutor` runs each step of :mod:`gridtopo.partitions.steps` as one Spark job,
a task per partition (``mapInArrow`` over the partition keys), the driver keeping only the
cross-partition facts; :func:`spark_session` starts a session on ``local[2]``, a
``spark://`` master or ``yarn`` without fetching anything (no ``spark.jars.packages``).
Steps stage their frames as Parquet partitioned by the partition key, so the staging directory
must be on a file system every executor sees.
"""

from gridtopo.spark.executor import SparkExecutor, spark_session

__all__ = ["SparkExecutor", "spark_session"]

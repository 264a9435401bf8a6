"""What a job run or an estimator fit holds on the cluster while it lasts, released together when it ends."""

from __future__ import annotations

from contextlib import ExitStack

from pyspark import Broadcast, StorageLevel
from pyspark.sql import DataFrame, SparkSession


def persisted(stack: ExitStack, frame: DataFrame, level: StorageLevel = StorageLevel.MEMORY_AND_DISK) -> DataFrame:
    """``frame`` persisted (by default in memory, spilling to disk) until ``stack`` closes."""
    frame = frame.persist(level)
    stack.callback(frame.unpersist)
    return frame


def broadcast(stack: ExitStack, spark: SparkSession, value) -> Broadcast:
    """``value`` broadcast to the executors until ``stack`` closes, then destroyed there and here."""
    shared = spark.sparkContext.broadcast(value)
    stack.callback(shared.destroy)
    return shared

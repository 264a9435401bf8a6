"""What a job run or an estimator fit holds on the cluster while it lasts, released together when it ends.

Models reach the executors as file artifacts (core/shipped.py), not as ``sc.broadcast``, which
Spark Connect lacks: what is left to release is cached rows."""

from __future__ import annotations

from contextlib import ExitStack

from pyspark import StorageLevel
from pyspark.sql import DataFrame


def persisted(stack: ExitStack, frame: DataFrame, level: StorageLevel = StorageLevel.MEMORY_AND_DISK) -> DataFrame:
    """``frame`` persisted (by default in memory, spilling to disk) until ``stack`` closes."""
    frame = frame.persist(level)
    stack.callback(frame.unpersist)
    return frame


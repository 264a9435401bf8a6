"""Topics over time: each period's rows per topic, their share of the period, and the period's top terms.

``input.time_col`` names a date or timestamp column, or strings Spark reads as one. Rows
are bucketed into periods (``evaluate.time_bucket``), counted per period and cluster in
Spark, and each period's term counts per cluster are ranked by the cluster summary's
class-based TF-IDF restricted to that period's rows, so a topic's vocabulary drift shows.
The ranking runs on the executors, one group per period: only the table (periods x
clusters rows) reaches the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from pyspark.ml.functions import vector_to_array
from pyspark.ml.stat import Summarizer
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.core.columns import CLUSTER_COL, quoted
from n2d_spark.outputs.cluster_summary import class_tfidf, top_terms
from n2d_spark.rows.text import COUNTS_COL

PERIOD_COL = "period"
# auto: the finest bucket that splits the span into at most this many periods; a chart of
# more is hard to read, and the table grows with periods x clusters.
MAX_AUTO_PERIODS = 60
_BUCKET_DAYS = {"day": 1.0, "week": 7.0, "month": 365.25 / 12, "year": 365.25}
_TERM_COUNTS = "_term_counts"

TABLE_SCHEMA = T.StructType(
    [
        T.StructField(PERIOD_COL, T.DateType(), False),
        T.StructField(CLUSTER_COL, T.IntegerType(), False),
        T.StructField("rows", T.LongType(), False),
        T.StructField("share", T.DoubleType(), False),
        T.StructField("top_terms", T.ArrayType(T.StringType(), False), False),
    ]
)


@dataclass(frozen=True)
class TimeSpan:
    """What the time column holds: its first and last readable times, and how many rows have none."""

    first: datetime | None
    last: datetime | None
    rows_without_time: int


def as_timestamp(rows: DataFrame, time_col: str) -> Column:
    """The time column as a timestamp; a string that does not parse (or a null) is null, not an error."""
    column = F.col(quoted(time_col))
    if isinstance(rows.schema[time_col].dataType, T.StringType):
        return F.try_to_timestamp(column)
    return column.cast(T.TimestampType())


def time_span(rows: DataFrame, time_col: str) -> TimeSpan:
    timed = as_timestamp(rows, time_col)
    bounds = rows.agg(F.min(timed), F.max(timed), F.count(F.when(timed.isNull(), 1))).first()
    return TimeSpan(first=bounds[0], last=bounds[1], rows_without_time=int(bounds[2]))


def choose_bucket(span: TimeSpan, configured: str) -> str:
    """``configured`` unless auto; then the finest bucket with at most MAX_AUTO_PERIODS periods over the span."""
    if configured != "auto":
        return configured
    if span.first is None:
        return "month"
    days = (span.last - span.first).total_seconds() / 86400
    for bucket, length in _BUCKET_DAYS.items():
        if days / length < MAX_AUTO_PERIODS:
            return bucket
    return "year"


def topics_over_time(labelled: DataFrame, time_col: str, bucket: str, vocabulary: list[str] | None, n_terms: int) -> DataFrame:
    """A DataFrame with TABLE_SCHEMA: per period (its first day) and cluster, rows, share of the period, top terms.

    ``labelled`` has ``cluster``, the time column and, in text mode, the term counts. Rows
    without a readable time are left out (``time_span`` counts them). Without a vocabulary
    (vector mode) ``top_terms`` is empty.
    """
    period = F.to_date(F.date_trunc(bucket, as_timestamp(labelled, time_col)))
    sums = [vector_to_array(Summarizer.sum(F.col(COUNTS_COL))).alias(_TERM_COUNTS)] if vocabulary is not None else []
    counted = (
        labelled.withColumn(PERIOD_COL, period)
        .filter(F.col(PERIOD_COL).isNotNull())
        .groupBy(PERIOD_COL, CLUSTER_COL)
        .agg(F.count("*").alias("rows"), *sums)
        .withColumn("share", F.col("rows") / F.sum("rows").over(Window.partitionBy(PERIOD_COL)))
    )
    if vocabulary is None:
        return counted.withColumn("top_terms", F.array().cast(T.ArrayType(T.StringType(), False))).select(TABLE_SCHEMA.fieldNames())

    def rank_terms(group: pd.DataFrame) -> pd.DataFrame:
        term_counts = np.vstack(group[_TERM_COUNTS].to_numpy())
        terms = top_terms(class_tfidf(term_counts), term_counts, vocabulary, n_terms)
        return group[[PERIOD_COL, CLUSTER_COL, "rows", "share"]].assign(top_terms=terms)

    return counted.groupBy(PERIOD_COL).applyInPandas(rank_terms, TABLE_SCHEMA)

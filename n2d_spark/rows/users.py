"""Users (``input.user_col``: a reviewer, an author, a customer): each user's topics, and the
profile that similar users are found by. Spark SQL in the JVM, grouped by user: nothing the size
of the input reaches the driver.

A user's profile is the mean of the unit embeddings of their labelled rows: what they write
about, weighted by how much of it they write. The users most similar to each are then found
as rows are (rows/neighbours.py), by the cosine of the profiles.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from n2d_spark.core.columns import CLUSTER_COL, EMBEDDING_COL, ID_COL
from n2d_spark.rows.similar import dot

USER_COL = "user"
ROWS_COL = "rows"
TOPICS_COL = "topics"
# users/ lists each user's largest topics, at most this many.
TOP_TOPICS = 3


def user_topics(labelled: DataFrame, names: DataFrame) -> DataFrame:
    """``user``, ``rows`` (labelled rows), ``topics``: the largest ``TOP_TOPICS`` as (cluster, name, share), largest first.

    ``labelled`` has ``user`` and ``cluster``; ``names`` has ``cluster`` and ``name``.
    """
    per_topic = labelled.groupBy(USER_COL, CLUSTER_COL).agg(F.count(F.lit(1)).alias("n"))
    user = Window.partitionBy(USER_COL)
    ranked = (
        per_topic.withColumn(ROWS_COL, F.sum("n").over(user))
        .withColumn("share", F.col("n") / F.col(ROWS_COL))
        .withColumn("place", F.row_number().over(user.orderBy(F.col("n").desc(), F.col(CLUSTER_COL))))
        .filter(F.col("place") <= TOP_TOPICS)
        .join(F.broadcast(names), CLUSTER_COL, "left")
    )
    topic = F.struct(F.col("place"), F.col(CLUSTER_COL).alias("cluster"), F.col("name"), F.col("share"))
    return ranked.groupBy(USER_COL).agg(
        F.first(ROWS_COL).alias(ROWS_COL),
        F.transform(F.sort_array(F.collect_list(topic)), lambda t: F.struct(t["cluster"], t["name"], t["share"])).alias(TOPICS_COL),
    )


def user_profiles(embedded: DataFrame) -> DataFrame:
    """``id`` (the user) and ``embedding`` (array<float>): the mean of the user's unit embeddings.

    ``embedded`` has ``user`` and ``embedding``.
    """
    vector = F.col(EMBEDDING_COL)
    norm = F.sqrt(dot(vector, vector))
    unit = F.when(norm > 0, F.transform(vector, lambda x: x / norm))
    values = embedded.select(USER_COL, F.posexplode(unit).alias("position", "value"))
    means = values.groupBy(USER_COL, "position").agg(F.avg("value").alias("mean"))
    ordered = F.sort_array(F.collect_list(F.struct(F.col("position"), F.col("mean"))))
    return means.groupBy(F.col(USER_COL).alias(ID_COL)).agg(
        F.transform(ordered, lambda p: p["mean"].cast("float")).alias(EMBEDDING_COL)
    )


def with_user(rows: DataFrame, user_col: Column) -> DataFrame:
    """``rows``' ``id`` with ``user`` (the user column as a string); rows without a user are left out."""
    return rows.select(ID_COL, user_col.cast("string").alias(USER_COL)).filter(F.col(USER_COL).isNotNull())

"""Assign stage: place new embeddings on the fitted manifold and give them a cluster, on the executors.

The manifold and the clusterer are fitted on a sample on the driver; every other row is
placed by the learned placement (model/placement.py) or by the fitted UMAP's transform, and
labelled by the fitted clusterer in pandas UDFs, so that nothing the size of the input comes
back to the driver.

The learned placement maps each row on its own: the rows are placed where they are, partition
by partition, with no shuffle.
UMAP's ``transform`` of a row depends on the batch it arrives in: the batch's rows share
the random stream of the layout optimisation, and a batch of more than 10,000 rows gets
30 optimisation epochs where a smaller one gets 100. The batches are therefore fixed by
the data, not by the partitioning: a row's batch is a seeded hash of its id modulo the
number of batches, and a batch is sorted by id before the transform. The same input and
config give the same labels on any cluster; another ``manifold.batch_rows`` can move rows
near a cluster's edge (docs/how-it-works.md, "Batches and determinism").
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from threadpoolctl import threadpool_limits

from n2d_spark.core.columns import CLUSTER_COL, CONFIDENCE_COL, EMBEDDING_COL, ID_COL, SECOND_CLUSTER_COL, UMAP_COL
from n2d_spark.core.shipped import ship
from n2d_spark.model.assigner import Assignment, ClusterAssigner
from n2d_spark.model.manifold import import_umap_without_tensorflow
from n2d_spark.rows.embed import dense_rows

_BATCH_COL = "_assign_batch"


def assignment_schema(id_type: T.DataType) -> T.StructType:
    return T.StructType(
        [
            T.StructField(ID_COL, id_type, False),
            T.StructField(CLUSTER_COL, T.IntegerType(), False),
            T.StructField(UMAP_COL, T.ArrayType(T.FloatType(), False), False),
            T.StructField(CONFIDENCE_COL, T.FloatType(), False),
            T.StructField(SECOND_CLUSTER_COL, T.IntegerType(), False),
        ]
    )


def assignment_frame(ids, assignment: Assignment) -> pd.DataFrame:
    """An ``Assignment`` of the rows ``ids`` as the columns of ``assignment_schema``."""
    return pd.DataFrame(
        {
            ID_COL: ids,
            CLUSTER_COL: assignment.labels,
            UMAP_COL: list(assignment.coordinates),
            CONFIDENCE_COL: assignment.confidence,
            SECOND_CLUSTER_COL: assignment.second,
        }
    )


def assign(rows: DataFrame, assigner: ClusterAssigner, n_rows: int, batch_rows: int, seed: int) -> DataFrame:
    """``rows`` (id, embedding; ``n_rows`` of them) as (id, cluster, umap), UMAP's transform in batches of about ``batch_rows``."""
    width = len(rows.first()[EMBEDDING_COL]) if n_rows else 0
    return assign_batches(rows, assigner, F.lit(batch_count(n_rows, batch_rows)), seed, width)


def batch_count(n_rows, batch_rows: int):
    """How many assign batches ``n_rows`` rows make: at least one, at most ``batch_rows`` rows each on average.

    ``n_rows`` is a number, or a Column (e.g. a scalar subquery counting the rows) for a plan that counts lazily.
    """
    if isinstance(n_rows, Column):
        return F.greatest(F.lit(1).cast("long"), F.ceil(n_rows / F.lit(batch_rows)))
    return max(1, math.ceil(n_rows / batch_rows))


def assign_batches(rows: DataFrame, assigner: ClusterAssigner, n_batches: Column | None, seed: int, width: int) -> DataFrame:
    """``rows`` (id, embedding) as ``assignment_schema``'s rows.

    With UMAP's transform (``assigner.places_by_batch``) in batch ``pmod(xxhash64(id, seed), n_batches)``,
    sorted by id; with the learned placement, partition by partition (``n_batches`` is not read and may be None).

    ``assigner`` travels to the executors as a file artifact (core/shipped.py), loaded after
    ``import_umap_without_tensorflow``: its UMAP would otherwise import umap-learn, and with it
    TensorFlow. A Python worker loads it once, for all its tasks.
    ``width`` is the embeddings' width; ``n_batches`` a Column (``batch_count``). A row without an
    embedding is in no result: the estimator passes its rows unfiltered, since a Spark filter on a
    UDF's result runs the UDF twice (rows/estimator_stages.py).
    """

    shipped = ship(rows.sparkSession, assigner)
    schema = assignment_schema(rows.schema[ID_COL].dataType)

    def assign_batch(batch: pd.DataFrame) -> pd.DataFrame:
        import_umap_without_tensorflow()
        batch = batch[batch[EMBEDDING_COL].notna()].sort_values(ID_COL, kind="stable")
        if batch.empty:
            return assignment_frame(batch[ID_COL], Assignment.of_no_rows())
        # Spark runs a task per core: the neighbour search's BLAS threads would oversubscribe them.
        with threadpool_limits(1):
            assignment = shipped.load().assign(dense_rows(batch[EMBEDDING_COL].to_numpy(), width))
        return assignment_frame(batch[ID_COL].to_numpy(), assignment)

    if not assigner.places_by_batch:
        return rows.select(ID_COL, EMBEDDING_COL).mapInPandas(lambda batches: map(assign_batch, batches), schema)
    return (
        rows.select(ID_COL, EMBEDDING_COL)
        .withColumn(_BATCH_COL, F.pmod(F.xxhash64(F.col(ID_COL), F.lit(seed)), n_batches))
        .groupBy(_BATCH_COL)
        .applyInPandas(assign_batch, schema)
    )


def fitted_assignments(spark, ids: np.ndarray, assignment: Assignment, id_type: T.DataType) -> DataFrame:
    """The fit sample's own assignment (its labels and coordinates from the fit) as a DataFrame of the same shape as ``assign``'s."""
    return spark.createDataFrame(assignment_frame(ids, assignment), assignment_schema(id_type))

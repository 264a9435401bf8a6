"""Embed stage: every row's input vector through the broadcast encoder, in Arrow batches on the executors.

The input column is either the text stage's sparse count vectors (a Spark ML vector
column, which Arrow hands over as its indices and values) or vector mode's fixed-length
``array<float>``; both become one matrix per batch.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark import Broadcast
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.columns import EMBEDDING_COL, ID_COL
from n2d_spark.encoder import spark_vectors_to_csr


def embed(rows: DataFrame, column: str, shared_model: Broadcast, batch_rows: int) -> DataFrame:
    """``rows`` plus an ``embedding`` column (array<float>, the bottleneck's width).

    ``shared_model`` is the broadcast ``EmbeddingModel``; its owner destroys it once the result
    is no longer needed. The encoder runs on at most ``batch_rows`` rows at a time, whatever the
    size of the Arrow batches the session hands the UDF (each row's embedding is bitwise the
    same at any batch size), so no session setting is changed here.
    A row of count vectors without any vocabulary term has nothing to embed: its embedding is null.
    """
    input_dim = shared_model.value.encoder.input_dim
    sparse = isinstance(rows.schema[column].dataType, VectorUDT)

    def embed_matrix(matrix: sp.csr_matrix | np.ndarray) -> pd.Series:
        # The encoder's layers are single-threaded Numba loops (no BLAS), so a task uses one core.
        model = shared_model.value
        pieces = [model.embed(matrix[start : start + batch_rows]) for start in range(0, matrix.shape[0], batch_rows)]
        embeddings = pd.Series(list(np.vstack(pieces)) if pieces else [], dtype=object)
        if sparse:
            embeddings[np.diff(matrix.indptr) == 0] = None
        return embeddings

    # Arrow hands a vector column over as a frame of its fields, an array column as a series.
    if sparse:

        @F.pandas_udf(T.ArrayType(T.FloatType()))
        def embed_batch(batch: pd.DataFrame) -> pd.Series:
            return embed_matrix(spark_vectors_to_csr(batch, input_dim))

    else:

        @F.pandas_udf(T.ArrayType(T.FloatType()))
        def embed_batch(batch: pd.Series) -> pd.Series:
            return embed_matrix(dense_rows(batch.to_numpy(), input_dim))

    return rows.withColumn(EMBEDDING_COL, embed_batch(F.col(column)))


def collect_sample(rows: DataFrame, column: str, n_rows: int, seed: int) -> tuple[np.ndarray, sp.csr_matrix | np.ndarray]:
    """A uniform sample of ``n_rows`` input vectors on the driver, as (ids, matrix), sorted by id.

    The sample is the ``n_rows`` rows with the smallest seeded hash of their id (``hash_sample``),
    so it is the same whatever the partitioning. The matrix is CSR for count vectors, dense for
    vector mode's arrays.
    """
    picked = hash_sample(rows.select(ID_COL, column), n_rows, seed).collect()
    picked.sort(key=lambda row: row[ID_COL])
    ids = np.array([row[ID_COL] for row in picked])
    if isinstance(rows.schema[column].dataType, VectorUDT):
        return ids, rows_to_csr(picked, column)
    return ids, dense_rows([row[column] for row in picked], None)


def hash_sample(rows: DataFrame, n_rows: int, seed: int) -> DataFrame:
    """The ``n_rows`` rows of ``rows`` with the smallest ``xxhash64(id, seed)``, in that order (lazy).

    Spark takes an ordered limit by sending each partition's first ``n_rows`` to one place: with
    P partitions, up to P x ``n_rows`` rows (at a million rows in 32 partitions, 800,000 of them
    reached the driver for a 25,000-row sample). The hash is uniform over the 64-bit integers, so
    a filter below the quantile that keeps a little over ``n_rows`` of the rows leaves the same
    smallest ``n_rows`` and sends only those few; if it keeps too few (a chance of about 1e-9
    at the margin below), the ordered limit runs on all rows instead. Counts a pass over ``rows``
    first: the callers' rows are cached.
    """
    order = F.xxhash64(F.col(ID_COL), F.lit(seed))
    total = rows.count()
    # Six binomial standard deviations above the expected count, and 1% more.
    keep = min(1.0, (1.01 * n_rows + 6 * math.sqrt(n_rows) + 10) / max(total, 1))
    if keep < 1.0:
        threshold = -(2**63) + int(keep * 2.0**64)
        kept = rows.filter(order < F.lit(threshold))
        if kept.count() >= n_rows:
            return kept.orderBy(order).limit(n_rows)
    return rows.orderBy(order).limit(n_rows)


def dense_rows(arrays, width: int | None) -> np.ndarray:
    """Equal-length arrays as a float32 matrix (``width`` columns when there are no rows)."""
    if len(arrays) == 0:
        return np.zeros((0, width or 0), dtype=np.float32)
    return np.vstack(arrays).astype(np.float32)


def rows_to_csr(rows: list[Row], column: str) -> sp.csr_matrix:
    vectors = [row[column] for row in rows]
    size = vectors[0].size if vectors else 0
    indices = [np.asarray(v.indices) for v in vectors]
    values = [np.asarray(v.values) for v in vectors]
    return spark_vectors_to_csr(pd.DataFrame({"indices": indices, "values": values}), size)

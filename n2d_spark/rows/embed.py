"""Embed stage: every row's input vector through the encoder, in Arrow batches on the executors.

The input column is either the text stage's sparse count vectors (a Spark ML vector
column, which Arrow hands over as its indices and values) or vector mode's fixed-length
``array<float>``; both become one matrix per batch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.core.columns import EMBEDDING_COL
from n2d_spark.core.shipped import ship
from n2d_spark.model.encoder import EmbeddingModel, spark_vectors_to_csr


def embed(rows: DataFrame, column: str, model: EmbeddingModel, batch_rows: int) -> DataFrame:
    """``rows`` plus an ``embedding`` column (array<float>, the bottleneck's width).

    ``model`` travels to the executors as a file artifact (core/shipped.py). The encoder runs on
    at most ``batch_rows`` rows at a time, whatever the size of the Arrow batches the session
    hands the UDF (each row's embedding is bitwise the same at any batch size), so no session
    setting is changed here.
    A row of count vectors without any vocabulary term has nothing to embed: its embedding is null.
    """
    input_dim = model.encoder.input_dim
    shipped = ship(rows.sparkSession, model)
    sparse = isinstance(rows.schema[column].dataType, VectorUDT)

    def embed_matrix(matrix: sp.csr_matrix | np.ndarray) -> pd.Series:
        # The encoder's layers are single-threaded Numba loops (no BLAS), so a task uses one core.
        loaded = shipped.load()
        pieces = [loaded.embed(matrix[start : start + batch_rows]) for start in range(0, matrix.shape[0], batch_rows)]
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


def dense_rows(arrays, width: int | None) -> np.ndarray:
    """Equal-length arrays as a float32 matrix (``width`` columns when there are no rows)."""
    if len(arrays) == 0:
        return np.zeros((0, width or 0), dtype=np.float32)
    return np.vstack(arrays).astype(np.float32)

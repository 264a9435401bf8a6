"""Embed stage: every row's count vector through the broadcast encoder, in Arrow batches on the executors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.encoder import EmbeddingModel, spark_vectors_to_csr
from n2d_spark.read import ID_COL
from n2d_spark.text import COUNTS_COL

EMBEDDING_COL = "embedding"


def embed(vectors: DataFrame, model: EmbeddingModel, batch_rows: int) -> DataFrame:
    """``vectors`` plus an ``embedding`` column (array<float>, the bottleneck's width).

    A row without any vocabulary term has nothing to embed: its embedding is null.
    """
    spark = vectors.sparkSession
    # The UDF sees one Arrow batch at a time: this bounds its memory and sets the matmul's size.
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows))
    shared_model = spark.sparkContext.broadcast(model)
    input_dim = model.encoder.input_dim

    @F.pandas_udf(T.ArrayType(T.FloatType()))
    def embed_batch(counts: pd.DataFrame) -> pd.Series:
        csr = spark_vectors_to_csr(counts, input_dim)
        embeddings = pd.Series(list(shared_model.value.embed(csr)), dtype=object)
        embeddings[np.diff(csr.indptr) == 0] = None
        return embeddings

    return vectors.withColumn(EMBEDDING_COL, embed_batch(F.col(COUNTS_COL)))


def collect_sample(vectors: DataFrame, n_rows: int, seed: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """A uniform sample of ``n_rows`` count vectors on the driver, as (ids, CSR rows), sorted by id.

    Rows are ranked by a seeded hash of their id, so the sample is the same whatever the
    partitioning, and only the top ``n_rows`` of each partition travel to the driver.
    """
    picked = (
        vectors.select(ID_COL, COUNTS_COL)
        .orderBy(F.xxhash64(F.col(ID_COL), F.lit(seed)))
        .limit(n_rows)
        .collect()
    )
    picked.sort(key=lambda row: row[ID_COL])
    return np.array([row[ID_COL] for row in picked]), rows_to_csr(picked, COUNTS_COL)


def rows_to_csr(rows: list[Row], column: str) -> sp.csr_matrix:
    vectors = [row[column] for row in rows]
    size = vectors[0].size if vectors else 0
    indices = [np.asarray(v.indices) for v in vectors]
    values = [np.asarray(v.values) for v in vectors]
    return spark_vectors_to_csr(pd.DataFrame({"indices": indices, "values": values}), size)

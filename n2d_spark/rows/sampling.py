"""The seeded samples the driver fits on: the autoencoder's input vectors, UMAP's embeddings, the coherence rows.

A sample is the rows with the smallest seeded hash of their id, so the same rows are drawn
whatever the partitioning, and only the sample travels to the driver.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.core.columns import ID_COL, WORD_COUNT_COL
from n2d_spark.model.encoder import spark_vectors_to_csr
from n2d_spark.rows.embed import dense_rows


def collect_sample(rows: DataFrame, column: str, n_rows: int, seed: int) -> tuple[np.ndarray, sp.csr_matrix | np.ndarray]:
    """A uniform sample of ``n_rows`` input vectors on the driver, as (ids, matrix), sorted by id.

    The sample is the ``n_rows`` rows with the smallest seeded hash of their id (``hash_sample``),
    so it is the same whatever the partitioning. The matrix is CSR for count vectors, dense for
    vector mode's arrays.
    """
    ids, sampled = collect_columns(rows, [column], n_rows, seed)
    return ids, sampled[column]


def collect_term_sample(rows: DataFrame, column: str, n_rows: int, seed: int) -> tuple[np.ndarray, sp.csr_matrix, np.ndarray]:
    """``collect_sample`` of count vectors, with each row's words (``WORD_COUNT_COL``: in the vocabulary or not)."""
    ids, sampled = collect_columns(rows, [column, WORD_COUNT_COL], n_rows, seed)
    return ids, sampled[column], sampled[WORD_COUNT_COL]


def collect_columns(rows: DataFrame, columns: list[str], n_rows: int, seed: int) -> tuple[np.ndarray, dict]:
    """``collect_sample`` of several columns in one pass: (ids, each column's values by name), CSR for vectors,
    dense for arrays, a NumPy array for anything else."""
    picked = _picked(rows, columns, n_rows, seed)
    ids = np.array([row[ID_COL] for row in picked])
    return ids, {column: _values(picked, column, rows.schema[column].dataType) for column in columns}


def _values(picked: list[Row], column: str, data_type: T.DataType) -> sp.csr_matrix | np.ndarray:
    if isinstance(data_type, VectorUDT):
        return rows_to_csr(picked, column)
    if isinstance(data_type, T.ArrayType):
        return dense_rows([row[column] for row in picked], None)
    return np.array([row[column] for row in picked])


def _picked(rows: DataFrame, columns: list[str], n_rows: int, seed: int) -> list[Row]:
    """The sample's rows (id and ``columns``) on the driver, sorted by id."""
    selected = rows.select(ID_COL, *columns)
    below = _below_quantile(selected, n_rows, seed)
    # Collected at once: fewer than n_rows back means the filter kept too few (hash_sample).
    picked = _first_by_hash(below, n_rows, seed).collect() if below is not None else []
    if len(picked) < n_rows:
        picked = _first_by_hash(selected, n_rows, seed).collect()
    picked.sort(key=lambda row: row[ID_COL])
    return picked


def hash_sample(rows: DataFrame, n_rows: int, seed: int) -> DataFrame:
    """The ``n_rows`` rows of ``rows`` with the smallest ``xxhash64(id, seed)``, in that order (lazy).

    Spark takes an ordered limit by sending each partition's first ``n_rows`` to one place: with
    P partitions, up to P x ``n_rows`` rows (at a million rows in 32 partitions, up to 800,000
    for a 25,000-row sample). The hash is uniform over the 64-bit integers, so
    a filter below the quantile that keeps a little over ``n_rows`` of the rows leaves the same
    smallest ``n_rows`` and sends only those few; if it keeps too few (a chance of about 1e-9
    at the margin below), the ordered limit runs on all rows instead. Counts a pass over ``rows``
    first: the callers' rows are cached.
    """
    below = _below_quantile(rows, n_rows, seed)
    if below is not None and below.count() >= n_rows:
        return _first_by_hash(below, n_rows, seed)
    return _first_by_hash(rows, n_rows, seed)


def _below_quantile(rows: DataFrame, n_rows: int, seed: int) -> DataFrame | None:
    """The rows whose hash lies below the quantile that keeps a little over ``n_rows`` of them; None to keep all."""
    # Six binomial standard deviations above the expected count, and 1% more.
    keep = (1.01 * n_rows + 6 * math.sqrt(n_rows) + 10) / max(rows.count(), 1)
    if keep >= 1.0:
        return None
    return rows.filter(_hash_order(seed) < F.lit(-(2**63) + int(keep * 2.0**64)))


def _first_by_hash(rows: DataFrame, n_rows: int, seed: int) -> DataFrame:
    return rows.orderBy(_hash_order(seed)).limit(n_rows)


def _hash_order(seed: int) -> Column:
    return F.xxhash64(F.col(ID_COL), F.lit(seed))


def rows_to_csr(rows: list[Row], column: str) -> sp.csr_matrix:
    vectors = [row[column] for row in rows]
    size = vectors[0].size if vectors else 0
    indices = [np.asarray(v.indices) for v in vectors]
    values = [np.asarray(v.values) for v in vectors]
    return spark_vectors_to_csr(pd.DataFrame({"indices": indices, "values": values}), size)

"""The neighbours stage: every embedded row's ``similar.k`` most similar rows, found on the executors.

The cells come from a sample on the driver (model/neighbour_search.py); a first pass sends each
row to its nearest cell, where it can be found, and to its ``similar.probes`` nearest cells,
where it is searched for; each cell is searched in one pandas group; a window keeps each row's
best ``k``. Only the centroids travel from the driver, inside the UDFs' closures (no broadcast,
as Spark Connect needs); nothing the size of the input comes back to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.core.columns import EMBEDDING_COL, ID_COL
from n2d_spark.core.config import SimilarConfig
from n2d_spark.model.neighbour_search import fit_cells, nearest_cells, top_k, unit_rows

NEIGHBOUR_COL = "neighbour_id"
RANK_COL = "rank"
SIMILARITY_COL = "similarity"
_CELL = "_cell"
_HOME = "_home"
# The sample the cells are fitted on, at most: k-means on more rows costs the driver more than the
# cells gain.
CELL_SAMPLE_ROWS = 50_000
# A cell needs this many sample rows to place its centroid.
_SAMPLE_ROWS_PER_CELL = 10


def cell_count(n_rows: int, n_sample: int, config: SimilarConfig) -> int:
    """How many cells: about ``similar.cell_rows`` rows each, as many as the sample can place."""
    return max(1, min(math.ceil(n_rows / config.cell_rows), n_sample // _SAMPLE_ROWS_PER_CELL))


@dataclass(frozen=True)
class Neighbours:
    # id, neighbour_id, rank (1..k), similarity: lazy.
    table: DataFrame
    cells: int
    probes: int


def neighbours(embedded: DataFrame, sample: np.ndarray, n_rows: int, config: SimilarConfig, seed: int) -> Neighbours:
    """Each row's ``config.k`` most similar rows: ``id``, ``neighbour_id``, ``rank`` (1..k), ``similarity`` (cosine of the embeddings).

    ``embedded`` has ``id`` and ``embedding`` (null for a row with none: left out); ``sample`` is
    embeddings of its rows on the driver, ``n_rows`` how many rows it has.
    """
    centroids = fit_cells(sample, cell_count(n_rows, len(sample), config), seed)
    probes = min(config.probes, len(centroids))
    id_type = embedded.schema[ID_COL].dataType
    vector_type = T.ArrayType(T.FloatType(), False)
    spread_schema = T.StructType(
        [
            T.StructField(_CELL, T.IntegerType(), False),
            T.StructField(_HOME, T.BooleanType(), False),
            T.StructField(ID_COL, id_type, False),
            T.StructField(EMBEDDING_COL, vector_type, False),
        ]
    )

    def to_cells(batches):
        for batch in batches:
            units = unit_rows(np.stack(batch[EMBEDDING_COL].to_numpy())) if len(batch) else np.zeros((0, centroids.shape[1]), np.float32)
            cells = nearest_cells(units, centroids, probes)
            for probe in range(probes):
                yield pd.DataFrame(
                    {_CELL: cells[:, probe].astype(np.int32), _HOME: probe == 0, ID_COL: batch[ID_COL], EMBEDDING_COL: list(units)}
                )

    found_schema = T.StructType(
        [
            T.StructField(ID_COL, id_type, False),
            T.StructField(NEIGHBOUR_COL, id_type, False),
            T.StructField(SIMILARITY_COL, T.FloatType(), False),
        ]
    )

    def search(cell: pd.DataFrame) -> pd.DataFrame:
        vectors = np.stack(cell[EMBEDDING_COL].to_numpy())
        home = cell[_HOME].to_numpy()
        ids = cell[ID_COL].to_numpy()
        query, neighbour, similarity = top_k(ids, vectors, ids[home], vectors[home], config.k)
        return pd.DataFrame({ID_COL: query, NEIGHBOUR_COL: neighbour, SIMILARITY_COL: similarity})

    rows = embedded.filter(F.col(EMBEDDING_COL).isNotNull()).select(ID_COL, EMBEDDING_COL)
    found = rows.mapInPandas(to_cells, spread_schema).groupBy(_CELL).applyInPandas(search, found_schema)
    best = Window.partitionBy(ID_COL).orderBy(F.col(SIMILARITY_COL).desc(), F.col(NEIGHBOUR_COL))
    table = (
        found.withColumn(RANK_COL, F.row_number().over(best))
        .filter(F.col(RANK_COL) <= config.k)
        .select(ID_COL, NEIGHBOUR_COL, RANK_COL, SIMILARITY_COL)
    )
    return Neighbours(table, len(centroids), probes)

"""The neighbours stage: every embedded row's ``similar.k`` most similar rows, found on the executors.

The cells come from a sample on the driver (model/neighbour_search.py); a first pass sends each
row to its nearest cell, its home, and as a candidate to its ``similar.probes`` nearest cells
(the home among them); each cell is searched in one pandas group, for the rows whose home it
is. A row is searched in one cell only, so that search ranks its neighbours: there is no second
shuffle of the ``k`` x rows results to rank them. Only the centroids travel from the driver,
inside the UDFs' closures (no broadcast, as Spark Connect needs); nothing the size of the input
comes back to it.

A group's memory and time go as its rows squared, so a cell of more than ``search_rows`` rows
(copies of one text all fall in one cell; above 10,000,000 rows every cell grows past
``similar.cell_rows``, as the sample places at most 5,000) is searched in pieces of at most that
many: its rows dealt out in the order of a hash of their ids, each piece searched on its own. A
row of a piece is searched among that piece's rows only, so a split cell finds fewer of its true
neighbours, but every row still gets ``k`` of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from n2d_spark.core.columns import EMBEDDING_COL, ID_COL
from n2d_spark.core.config import SimilarConfig
from n2d_spark.model.neighbour_search import fit_cells, nearest_cells, ranks, top_k, unit_rows

NEIGHBOUR_COL = "neighbour_id"
RANK_COL = "rank"
SIMILARITY_COL = "similarity"
_CELL = "_cell"
_PIECE = "_piece"
_HOME = "_home"
# The sample the cells are fitted on, at most: k-means on more rows costs the driver more than the
# cells gain.
CELL_SAMPLE_ROWS = 50_000
# A cell needs this many sample rows to place its centroid.
_SAMPLE_ROWS_PER_CELL = 10
# A cell is split when it holds more than this many times the mean (similar.probes x
# similar.cell_rows rows, each row a candidate in that many cells): k-means cells vary about
# the mean, and a split costs recall, so only the outsized ones are.
_MEAN_CELLS_PER_PIECE = 2


def cell_count(n_rows: int, n_sample: int, config: SimilarConfig) -> int:
    """How many cells: about ``similar.cell_rows`` rows each, as many as the sample can place."""
    return max(1, min(math.ceil(n_rows / config.cell_rows), n_sample // _SAMPLE_ROWS_PER_CELL))


def search_rows(config: SimilarConfig, probes: int) -> int:
    """The most rows one search holds: a cell with more is searched in pieces."""
    return _MEAN_CELLS_PER_PIECE * probes * config.cell_rows


@dataclass(frozen=True)
class Neighbours:
    # id, neighbour_id, rank (1..k), similarity: lazy.
    table: DataFrame
    cells: int
    probes: int


def rows_with_fewer_than_k(table: DataFrame, n_rows: int, k: int) -> int:
    """How many of the ``n_rows`` searched rows have fewer than ``k`` rows in ``table`` (a Neighbours table): those
    whose cell (or piece) holds ``k`` rows or fewer. Counted on the executors: the rows without a ``k``-th."""
    return n_rows - table.filter(F.col(RANK_COL) == k).count()


def neighbours(embedded: DataFrame, sample: np.ndarray, n_rows: int, config: SimilarConfig, seed: int) -> Neighbours:
    """Each row's ``config.k`` most similar rows: ``id``, ``neighbour_id``, ``rank`` (1..k), ``similarity`` (cosine of the embeddings).

    ``embedded`` has ``id`` and ``embedding`` (null for a row with none: left out); ``sample`` is
    embeddings of its rows on the driver, ``n_rows`` how many rows it has.
    """
    centroids = fit_cells(sample, cell_count(n_rows, len(sample), config), seed)
    probes = min(config.probes, len(centroids))
    found_schema = T.StructType(
        [
            T.StructField(ID_COL, embedded.schema[ID_COL].dataType, False),
            T.StructField(NEIGHBOUR_COL, embedded.schema[ID_COL].dataType, False),
            T.StructField(RANK_COL, T.IntegerType(), False),
            T.StructField(SIMILARITY_COL, T.FloatType(), False),
        ]
    )

    def search(cell: pd.DataFrame) -> pd.DataFrame:
        vectors = np.stack(cell[EMBEDDING_COL].to_numpy())
        home = cell[_HOME].to_numpy()
        ids = cell[ID_COL].to_numpy()
        query, neighbour, similarity = top_k(ids[home], vectors[home], ids, vectors, config.k)
        return pd.DataFrame({ID_COL: query, NEIGHBOUR_COL: neighbour, RANK_COL: ranks(query), SIMILARITY_COL: similarity})

    searched = in_cells(embedded, centroids, probes, search_rows(config, probes))
    table = searched.groupBy(_CELL, _PIECE).applyInPandas(search, found_schema)
    return Neighbours(table, len(centroids), probes)


def in_cells(embedded: DataFrame, centroids: np.ndarray, probes: int, most_rows: int) -> DataFrame:
    """The rows of ``embedded`` (id, embedding) as the searches take them: a row per row and cell it is a candidate in
    (its ``probes`` nearest ``centroids``), with ``_cell``, ``_piece`` (cell and piece: one search, of at most
    ``most_rows`` rows), ``_home`` (the row is searched there), id and its unit embedding. Lazy."""
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

    rows = embedded.filter(F.col(EMBEDDING_COL).isNotNull()).select(ID_COL, EMBEDDING_COL)
    # A fixed count of partitions: adaptive execution would merge the groups by their bytes, which
    # are few, into fewer tasks than cores, while the search's cost is in its arithmetic.
    parts = min(len(centroids), int(embedded.sparkSession.conf.get("spark.sql.shuffle.partitions")))
    spread = rows.mapInPandas(to_cells, spread_schema).repartition(parts, _CELL)
    # A cell's rows dealt out to as few pieces as keep each within most_rows, in the order of a hash of their ids (then
    # the ids): the same pieces on any partitioning, and copies of a text spread over them. Within the cell's partition.
    cell = Window.partitionBy(_CELL).orderBy(F.xxhash64(ID_COL), ID_COL)
    pieces = F.ceil(F.count(F.lit(1)).over(cell.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)) / most_rows)
    return spread.withColumn(_PIECE, F.pmod(F.row_number().over(cell), pieces).cast("int"))

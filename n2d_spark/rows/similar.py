"""The rows most similar to a few query embeddings, by an exact scan on the executors: what
``n2d-spark similar`` and ``N2DModel.similar`` answer (neighbours/ holds every row's, found by a
cell search: rows/neighbours.py). Similarity is the cosine of the autoencoder's embeddings."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from n2d_spark.core.columns import EMBEDDING_COL, quoted
from n2d_spark.core.errors import InputError
from n2d_spark.rows.neighbours import RANK_COL, SIMILARITY_COL

QUERY_COL = "query"
QUERY_EMBEDDING_COL = "_query_embedding"
# The most queries one scan takes: each is broadcast to every task and paired with every row (10,000
# queries over 10 million rows are 10^11 pairs). The neighbours of every row are neighbours/'s cell search.
MAX_QUERIES = 10_000


def check_query_count(queries: DataFrame) -> None:
    """Refuse more than ``MAX_QUERIES`` rows of ``queries`` in one line, before any is embedded."""
    if queries.limit(MAX_QUERIES + 1).count() > MAX_QUERIES:
        raise InputError(
            f"more than {MAX_QUERIES:,} queries: similar compares each with every row, so it takes at most "
            f"{MAX_QUERIES:,} (n2d_spark.rows.similar.MAX_QUERIES); for the neighbours of every row, run the job "
            "with similar.k set and read its neighbours/ (docs/similar.md)"
        )


def dot(a: Column, b: Column) -> Column:
    """The dot product of two array<float> columns, in double, in the JVM."""
    return F.aggregate(F.zip_with(a, b, lambda x, y: x.cast("double") * y.cast("double")), F.lit(0.0), lambda s, x: s + x)


def most_similar(rows: DataFrame, queries: DataFrame, k: int, ties: list[Column], exclude: Column | None = None) -> DataFrame:
    """For each query, the ``k`` rows of ``rows`` (with ``embedding``) most similar to it, best first.

    ``queries`` (a few rows, at most ``MAX_QUERIES``: broadcast to every task) has ``query`` and ``_query_embedding``.
    ``exclude``: a condition on the pair that keeps a row out (the query's own row). The result
    is ``rows``' columns, ``query``, ``rank`` (1..k) and ``similarity``; equal similarities are
    ranked by ``ties`` (columns that tell rows apart, such as their id).
    """
    pairs = rows.filter(F.col(EMBEDDING_COL).isNotNull()).crossJoin(F.broadcast(queries))
    if exclude is not None:
        pairs = pairs.filter(~exclude)
    norms = F.sqrt(dot(F.col(EMBEDDING_COL), F.col(EMBEDDING_COL)) * dot(F.col(QUERY_EMBEDDING_COL), F.col(QUERY_EMBEDDING_COL)))
    similarity = F.when(norms > 0, dot(F.col(EMBEDDING_COL), F.col(QUERY_EMBEDDING_COL)) / norms).otherwise(F.lit(0.0))
    best = Window.partitionBy(QUERY_COL).orderBy(F.col(SIMILARITY_COL).desc(), *ties)
    kept = [F.col(quoted(c)) for c in pairs.columns if c != QUERY_EMBEDDING_COL]
    return (
        pairs.withColumn(SIMILARITY_COL, similarity.cast("float"))
        .withColumn(RANK_COL, F.row_number().over(best))
        .filter(F.col(RANK_COL) <= k)
        .select(*kept, RANK_COL, SIMILARITY_COL)
    )

"""Downstream queries over the job's output, in SQL that Spark and DuckDB both run unchanged.

Two relations: ``labels`` (id bigint, cluster int, umap array<float>, confidence float,
second_cluster int, run_id string, model_id string, then the input's passthrough columns) and ``clusters`` (cluster int,
name string, size bigint, top_terms array<string>, coherence double, example_ids array<bigint>).
They can be catalog tables (``--table db.name`` writes ``db.name`` and ``db.name_clusters``),
temporary views, or the Parquet files themselves: ``spark_parquet`` and ``duckdb_parquet``
give the expression that reads a folder in each engine.

Portability: only standard SQL and functions both engines have under the same name and
meaning (``count``, ``sum`` over a window, ``array_contains``, ``array_position``). Arrays
are selected whole: slicing and indexing differ (Spark's ``slice`` and 0-based ``[i]``
against DuckDB's ``array_slice`` and 1-based ``[i]``). Identifiers are never quoted: Spark
quotes with backticks, DuckDB with double quotes; column names are therefore checked to be
plain identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Rows per cluster, the largest first (noise, cluster -1, included).
CLUSTER_SIZES = """
SELECT cluster, count(*) AS reviews
FROM {labels}
GROUP BY cluster
ORDER BY reviews DESC, cluster
"""

# Each cluster's mix of a label column's values (e.g. sentiment): counts, and shares within the cluster.
LABEL_MIX = """
SELECT cluster, {label_col}, count(*) AS reviews,
       CAST(count(*) AS DOUBLE) / sum(count(*)) OVER (PARTITION BY cluster) AS share
FROM {labels}
GROUP BY cluster, {label_col}
ORDER BY cluster, reviews DESC, {label_col} NULLS LAST
"""

# The top terms of the biggest clusters (noise left out), one row per example, in example order.
TOP_CLUSTERS_WITH_EXAMPLES = """
WITH biggest AS (
    SELECT cluster, size, top_terms, example_ids
    FROM {clusters}
    WHERE cluster <> -1
    ORDER BY size DESC, cluster
    LIMIT {top_n}
)
SELECT b.cluster, b.size, b.top_terms, l.id AS example_id{example_cols}
FROM biggest AS b
JOIN {labels} AS l ON array_contains(b.example_ids, l.id)
ORDER BY b.size DESC, b.cluster, array_position(b.example_ids, l.id)
"""

# Where topics blur: the rows each cluster holds least surely (confidence below {below}), counted by
# the cluster each would join next; noise left out. The float column is compared as a double in both engines.
BORDERS = """
SELECT cluster, second_cluster, count(*) AS reviews
FROM {labels}
WHERE cluster <> -1 AND confidence < CAST({below} AS DOUBLE)
GROUP BY cluster, second_cluster
ORDER BY reviews DESC, cluster, second_cluster
"""

QUERIES = {
    "cluster_sizes": CLUSTER_SIZES,
    "label_mix": LABEL_MIX,
    "top_clusters_with_examples": TOP_CLUSTERS_WITH_EXAMPLES,
    "borders": BORDERS,
}

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def render(
    name: str,
    *,
    labels: str = "labels",
    clusters: str = "clusters",
    label_col: str | None = None,
    top_n: int = 5,
    example_cols: Sequence[str] = (),
    below: float = 0.2,
) -> str:
    """The query ``name`` of ``QUERIES`` over the given relations (table names or read expressions).

    ``label_col``: the column ``label_mix`` breaks clusters down by (required there);
    ``top_n``: how many clusters ``top_clusters_with_examples`` lists; ``example_cols``:
    labels columns shown beside each example (e.g. ``sentiment``, or the text column when
    the output includes it); ``below``: the confidence under which ``borders`` counts a row (0-1].
    """
    if name not in QUERIES:
        raise KeyError(f"unknown query {name!r}; known: {', '.join(QUERIES)}")
    if name == "label_mix" and label_col is None:
        raise ValueError("label_mix needs label_col, the column to break each cluster down by")
    for column in ([label_col] if label_col is not None else []) + list(example_cols):
        if not _IDENTIFIER.fullmatch(column):
            raise ValueError(f"column {column!r} is not a plain identifier (letters, digits, _)")
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n <= 0:
        raise ValueError(f"top_n must be a positive int, got {top_n!r}")
    if isinstance(below, bool) or not isinstance(below, (int, float)) or not 0 < below <= 1:
        raise ValueError(f"below must be a number in (0, 1], got {below!r}")
    return QUERIES[name].format(
        labels=labels,
        clusters=clusters,
        label_col=label_col,
        top_n=top_n,
        example_cols="".join(f", l.{column}" for column in example_cols),
        below=float(below),
    ).strip()


def spark_parquet(folder: str) -> str:
    """Spark SQL's relation for the Parquet files of an output folder, e.g. parquet.`out/imdb/labels`."""
    return f"parquet.`{folder.rstrip('/')}`"


def duckdb_parquet(folder: str) -> str:
    """DuckDB's relation for the Parquet files Spark wrote in a folder (its _SUCCESS and .crc files left out)."""
    escaped = folder.rstrip("/").replace("'", "''")
    return f"read_parquet('{escaped}/*.parquet')"

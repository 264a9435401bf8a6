"""The queries of docs/output.md: right answers, and the same answers from Spark and from DuckDB on the Parquet files."""

from __future__ import annotations

import math

import duckdb
import pandas as pd
import pytest
from pyspark.sql import types as T

from n2d_spark.outputs.queries import QUERIES, duckdb_parquet, render, spark_parquet

LABELS_SCHEMA = T.StructType(
    [
        T.StructField("id", T.LongType(), False),
        T.StructField("cluster", T.IntegerType(), False),
        T.StructField("umap", T.ArrayType(T.FloatType(), False), False),
        T.StructField("confidence", T.FloatType(), False),
        T.StructField("second_cluster", T.IntegerType(), False),
        T.StructField("run_id", T.StringType(), False),
        T.StructField("model_id", T.StringType(), False),
        T.StructField("sentiment", T.StringType(), True),
        T.StructField("topic", T.StringType(), True),
    ]
)
CLUSTERS_SCHEMA = T.StructType(
    [
        T.StructField("cluster", T.IntegerType(), False),
        T.StructField("size", T.LongType(), False),
        T.StructField("top_terms", T.ArrayType(T.StringType(), False), False),
        T.StructField("coherence", T.DoubleType(), True),
        T.StructField("example_ids", T.ArrayType(T.LongType(), False), False),
    ]
)
# cluster -> sentiments of its rows, in id order; -1 is noise. Sizes differ, so every order is fixed.
SENTIMENTS = {
    0: ["positive"] * 9 + ["negative"] * 5 + [None],
    1: ["negative"] * 7 + ["positive"] * 3,
    2: ["positive"] * 4 + ["negative"] * 4 + [None],
    -1: ["negative"] * 6,
}
TERMS = {0: ["ghost", "house"], 1: ["alien", "ship", "planet"], 2: ["pasta"], -1: []}


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [(cluster, s) for cluster, sentiments in SENTIMENTS.items() for s in sentiments]
    labels = pd.DataFrame(
        {
            "id": range(100, 100 + len(rows)),
            "cluster": [c for c, _ in rows],
            "umap": [[float(i), 0.5] for i in range(len(rows))],
            "confidence": [(i % 10) / 10 for i in range(len(rows))],
            "second_cluster": [0 if c != 0 else 1 for c, _ in rows],
            "run_id": "r1",
            "model_id": "m1",
            "sentiment": [s for _, s in rows],
            "topic": [f"t{c}" for c, _ in rows],
        }
    )
    # Examples: three ids per cluster, deliberately not in id order.
    examples = {c: labels.loc[labels["cluster"] == c, "id"].tolist()[:3][::-1] for c in SENTIMENTS}
    clusters = pd.DataFrame(
        {
            "cluster": list(SENTIMENTS),
            "size": [len(s) for s in SENTIMENTS.values()],
            "top_terms": [TERMS[c] for c in SENTIMENTS],
            "coherence": [0.1, 0.2, None, None],
            "example_ids": [examples[c] for c in SENTIMENTS],
        }
    )
    return labels, clusters


@pytest.fixture(scope="module")
def output(spark, tmp_path_factory):
    """labels/ (two Parquet files) and clusters/ as the job writes them, through Spark."""
    folder = tmp_path_factory.mktemp("output")
    labels, clusters = _frames()
    spark.createDataFrame(labels, LABELS_SCHEMA).repartition(2).write.parquet(str(folder / "labels"))
    spark.createDataFrame(clusters, CLUSTERS_SCHEMA).coalesce(1).write.parquet(str(folder / "clusters"))
    return folder, labels, clusters


def _run_both(spark, folder, name, **params):
    """The query's rows from spark.sql over temporary views and from DuckDB over read_parquet, as tuples."""
    for relation in ("labels", "clusters"):
        spark.read.parquet(str(folder / relation)).createOrReplaceTempView(relation)
    from_spark = [tuple(row) for row in spark.sql(render(name, **params)).collect()]
    with duckdb.connect() as connection:
        for relation in ("labels", "clusters"):
            connection.execute(f"CREATE VIEW {relation} AS SELECT * FROM {duckdb_parquet(str(folder / relation))}")
        from_duckdb = connection.execute(render(name, **params)).fetchall()
    return from_spark, [tuple(row) for row in from_duckdb]


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_the_files_have_the_documented_types(output):
    folder, _, _ = output
    with duckdb.connect() as connection:
        labels = connection.execute(f"DESCRIBE SELECT * FROM {duckdb_parquet(str(folder / 'labels'))}").fetchall()
        clusters = connection.execute(f"DESCRIBE SELECT * FROM {duckdb_parquet(str(folder / 'clusters'))}").fetchall()
    assert [(r[0], r[1]) for r in labels] == [
        ("id", "BIGINT"), ("cluster", "INTEGER"), ("umap", "FLOAT[]"), ("confidence", "FLOAT"),
        ("second_cluster", "INTEGER"), ("run_id", "VARCHAR"),
        ("model_id", "VARCHAR"), ("sentiment", "VARCHAR"), ("topic", "VARCHAR"),
    ]
    assert [(r[0], r[1]) for r in clusters] == [
        ("cluster", "INTEGER"), ("size", "BIGINT"), ("top_terms", "VARCHAR[]"), ("coherence", "DOUBLE"),
        ("example_ids", "BIGINT[]"),
    ]


def test_cluster_sizes(spark, output):
    folder, labels, _ = output
    from_spark, from_duckdb = _run_both(spark, folder, "cluster_sizes")
    assert from_spark == from_duckdb == [(0, 15), (1, 10), (2, 9), (-1, 6)]
    assert dict(from_spark) == labels["cluster"].value_counts().to_dict()


def test_label_mix(spark, output):
    folder, labels, _ = output
    from_spark, from_duckdb = _run_both(spark, folder, "label_mix", label_col="sentiment")
    assert _same(from_spark, from_duckdb), (from_spark, from_duckdb)
    expected = []
    for cluster in sorted(SENTIMENTS):
        counts = pd.Series(SENTIMENTS[cluster]).value_counts(dropna=False)
        # Largest count first; ties by value, nulls last.
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] is None or pd.isna(kv[0]), str(kv[0])))
        expected += [(cluster, None if pd.isna(v) else v, n, n / len(SENTIMENTS[cluster])) for v, n in ordered]
    assert _same(from_spark, expected), from_spark
    assert from_spark[:3] == [(-1, "negative", 6, 1.0), (0, "positive", 9, 0.6), (0, "negative", 5, pytest.approx(1 / 3))]


def test_top_clusters_with_examples(spark, output):
    folder, labels, clusters = output
    from_spark, from_duckdb = _run_both(
        spark, folder, "top_clusters_with_examples", top_n=2, example_cols=["sentiment", "topic"]
    )
    assert _same(from_spark, from_duckdb), (from_spark, from_duckdb)
    by_id = labels.set_index("id")
    expected = [
        (c.cluster, c.size, TERMS[c.cluster], i, by_id.loc[i, "sentiment"], by_id.loc[i, "topic"])
        for c in clusters.sort_values("size", ascending=False).head(2).itertuples()
        for i in c.example_ids
    ]
    assert from_spark == expected
    assert [row[3] for row in from_spark[:3]] == [102, 101, 100]  # the clusters table's example order


def test_noise_is_never_among_the_biggest_clusters(spark, output):
    folder, _, _ = output
    from_spark, from_duckdb = _run_both(spark, folder, "top_clusters_with_examples", top_n=10)
    assert from_spark == from_duckdb
    assert sorted({row[0] for row in from_spark}) == [0, 1, 2]


def test_borders(spark, output):
    folder, labels, _ = output
    from_spark, from_duckdb = _run_both(spark, folder, "borders", below=0.35)
    assert from_spark == from_duckdb
    unsure = labels[(labels["cluster"] != -1) & (labels["confidence"].astype("float32") < 0.35)]
    counts = unsure.groupby(["cluster", "second_cluster"]).size()
    expected = sorted(((c, s, n) for (c, s), n in counts.items()), key=lambda row: (-row[2], row[0], row[1]))
    assert from_spark == expected and len(expected) > 1


def test_relations_can_be_the_parquet_folders(spark, output):
    folder, _, _ = output
    labels = str(folder / "labels")
    from_spark = [tuple(r) for r in spark.sql(render("cluster_sizes", labels=spark_parquet(labels))).collect()]
    from_duckdb = duckdb.sql(render("cluster_sizes", labels=duckdb_parquet(labels))).fetchall()
    assert from_spark == from_duckdb == [(0, 15), (1, 10), (2, 9), (-1, 6)]


def test_render_checks_its_parameters():
    assert set(QUERIES) == {"cluster_sizes", "label_mix", "top_clusters_with_examples", "borders"}
    with pytest.raises(ValueError, match="below must be a number in"):
        render("borders", below=0)
    with pytest.raises(ValueError, match="label_mix needs label_col"):
        render("label_mix")
    with pytest.raises(ValueError, match="not a plain identifier"):
        render("label_mix", label_col="sentiment; DROP TABLE labels")
    with pytest.raises(ValueError, match="top_n must be a positive int"):
        render("top_clusters_with_examples", top_n=0)
    with pytest.raises(KeyError, match="unknown query"):
        render("sizes")

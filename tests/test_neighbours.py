"""neighbours/: each row's most similar rows, searched cell by cell on the executors (rows/neighbours.py)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from n2d_spark.core.config import SimilarConfig
from n2d_spark.model.neighbour_search import ranks, top_k, unit_rows
from n2d_spark.rows.neighbours import neighbours

K = 10


def _exact(ids: np.ndarray, points: np.ndarray, k: int) -> dict:
    """Each id's k most similar other ids by brute force: similarity computed as top_k does, ties by id."""
    units = unit_rows(points).astype(np.float64)
    similarity = (units @ units.T).astype(np.float32)
    np.fill_diagonal(similarity, -np.inf)
    return {ids[i]: list(ids[np.lexsort((ids, -similarity[i]))[:k]]) for i in range(len(ids))}


def test_top_k_is_exact_with_ties_broken_by_id_in_any_row_order():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(1500, 6)).astype(np.float32)
    points[[3, 40, 41]] = points[7]  # four copies of one row: equal similarities
    ids = np.arange(1500) * 7 % 1501
    expected = _exact(ids, points, K)
    order = rng.permutation(len(ids))
    units = unit_rows(points)
    for rows in (np.arange(len(ids)), order):
        query, neighbour, similarity = top_k(ids[rows], units[rows], ids[rows], units[rows], K)
        found = {q: list(neighbour[query == q]) for q in ids}
        assert found == expected
        assert all(np.all(np.diff(similarity[query == q]) <= 0) for q in ids[:50])


def test_ranks_count_from_one_within_each_query():
    assert ranks(np.array([5, 5, 5, 2, 2, 9])).tolist() == [1, 2, 3, 1, 2, 1]
    assert ranks(np.array(["b", "a", "a"])).tolist() == [1, 1, 2]
    assert ranks(np.array([], dtype=np.int64)).tolist() == []


@pytest.fixture(scope="module")
def blobs(spark):
    """3,000 rows in 12 clusters of a 10-dimensional space, as the embed stage leaves them (id, embedding)."""
    points, _ = make_blobs(n_samples=3000, n_features=10, centers=12, cluster_std=2.0, random_state=0)
    points = points.astype(np.float32)
    ids = np.arange(len(points)) * 3 + 1
    frame = spark.createDataFrame([(int(i), p.tolist()) for i, p in zip(ids, points)], "id bigint, embedding array<float>")
    return frame, ids, points


def _table(frame, points, config: SimilarConfig):
    sample = points[::3]  # a driver-side sample, as tables.write_neighbours draws one
    return neighbours(frame, sample, len(points), config, seed=0)


def test_every_row_gets_k_others_ranked_with_falling_similarity(blobs):
    frame, ids, points = blobs
    found = _table(frame, points, SimilarConfig(k=K, cell_rows=300, probes=3))
    assert found.cells == 10 and found.probes == 3
    table = found.table.toPandas()
    assert list(table.columns) == ["id", "neighbour_id", "rank", "similarity"]
    assert len(table) == len(ids) * K and set(table["id"]) == set(ids)
    assert (table["id"] != table["neighbour_id"]).all()
    for _, rows in table.groupby("id"):
        assert sorted(rows["rank"]) == list(range(1, K + 1))
        ranked = rows.sort_values("rank")["similarity"].to_numpy()
        assert np.all(np.diff(ranked) <= 0) and np.all(ranked <= 1.0 + 1e-6)


def test_recall_against_exact_search_and_one_cell_is_exact(blobs):
    frame, ids, points = blobs
    expected = _exact(ids, points, K)

    def recall(config: SimilarConfig) -> float:
        table = _table(frame, points, config).table.toPandas()
        found = table.groupby("id")["neighbour_id"].apply(set).to_dict()
        return np.mean([len(found[i] & set(expected[i])) / K for i in ids])

    # Cells of about 300 rows, three of them searched for each row: a blob spans a cell or two.
    assert recall(SimilarConfig(k=K, cell_rows=300, probes=3)) >= 0.95
    assert recall(SimilarConfig(k=K, cell_rows=10_000, probes=3)) == 1.0


def test_the_same_table_on_any_partitioning(blobs):
    frame, _, points = blobs
    config = SimilarConfig(k=K, cell_rows=300, probes=2)

    def rows(df):
        return sorted(map(tuple, _table(df, points, config).table.collect()))

    assert rows(frame.repartition(7)) == rows(frame.coalesce(1))


def test_string_ids(spark):
    points = np.random.default_rng(1).normal(size=(200, 4)).astype(np.float32)
    ids = np.array([f"r{i:03d}" for i in range(200)])
    frame = spark.createDataFrame([(i, p.tolist()) for i, p in zip(ids, points)], "id string, embedding array<float>")
    table = _table(frame, points, SimilarConfig(k=3, cell_rows=10_000, probes=1)).table.toPandas()
    found = table.sort_values(["id", "rank"]).groupby("id")["neighbour_id"].apply(list).to_dict()
    assert found == _exact(ids, points, 3)


def test_a_cell_of_many_copies_is_searched_in_pieces_and_every_row_still_gets_k(spark):
    """Copies of one text are one point: they all fall in one cell, whose search would grow as their count squared.
    That cell (and the one they are candidates in) is searched in pieces of at most search_rows rows, and every
    row still gets k neighbours: a copy's are copies."""
    from n2d_spark.model.neighbour_search import fit_cells
    from n2d_spark.rows.neighbours import cell_count, in_cells, search_rows

    rng = np.random.default_rng(2)
    points = np.vstack([np.tile(rng.normal(size=8), (1200, 1)), rng.normal(size=(800, 8))]).astype(np.float32)
    ids = np.arange(len(points)) * 5 + 2
    frame = spark.createDataFrame([(int(i), p.tolist()) for i, p in zip(ids, points)], "id bigint, embedding array<float>")
    config = SimilarConfig(k=5, cell_rows=100, probes=2)
    most = search_rows(config, probes=2)
    centroids = fit_cells(points, cell_count(len(points), len(points), config), seed=0)
    searches = in_cells(frame, centroids, 2, most).groupBy("_cell", "_piece").count().toPandas()
    assert searches["count"].max() <= most < 1200
    assert searches.groupby("_cell").size().max() >= 3
    table = neighbours(frame, points, len(points), config, seed=0).table.toPandas()
    assert len(table) == len(ids) * 5 and set(table["id"]) == set(ids)
    copies = table[table["id"].isin(ids[:1200])]
    assert copies["neighbour_id"].isin(ids[:1200]).all() and (copies["id"] != copies["neighbour_id"]).all()


def test_the_rows_of_a_small_isolated_cell_get_fewer_than_k_and_are_counted(spark):
    """Three rows far from the others get a cell of their own; searched there alone (one probe), each finds two
    neighbours, not k, and rows_with_fewer_than_k counts them (run.json's neighbours.rows_with_fewer_than_k)."""
    from n2d_spark.rows.neighbours import rows_with_fewer_than_k

    rng = np.random.default_rng(3)
    points = np.vstack([rng.normal([10, 0, 0, 0], 1, (300, 4)), rng.normal([0, 10, 0, 0], 1, (300, 4)), rng.normal([0, 0, 10, 0], 1, (3, 4))])
    points = points.astype(np.float32)
    ids = np.arange(len(points)) + 1
    frame = spark.createDataFrame([(int(i), p.tolist()) for i, p in zip(ids, points)], "id bigint, embedding array<float>")
    found = neighbours(frame, points, len(points), SimilarConfig(k=5, cell_rows=100, probes=1), seed=0)
    counts = found.table.toPandas().groupby("id").size()
    assert counts.loc[ids[-3:]].tolist() == [2, 2, 2] and (counts.drop(ids[-3:]) == 5).all()
    assert rows_with_fewer_than_k(found.table, len(points), 5) == 3
    # A row with no neighbour at all (a run of one row) is counted too.
    alone = neighbours(frame.limit(1), points[:1], 1, SimilarConfig(k=5), seed=0).table
    assert rows_with_fewer_than_k(alone, 1, 5) == 1

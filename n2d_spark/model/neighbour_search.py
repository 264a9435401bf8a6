"""A row's most similar rows by cosine similarity, searched cell by cell: the arrays behind the
neighbours/ table (rows/neighbours.py runs them on the executors).

Comparing every row with every other does not scale, so the space is cut into cells: the
centroids of a spherical k-means of a sample. A row is a candidate in its ``probes`` nearest
cells and is searched, exactly, among the candidates of its nearest cell. A neighbour that is
not a candidate there is missed: the recall this costs is
measured against exact search in BENCHMARKS.md ("Similar rows").

Deterministic: a cell's rows are sorted by id before any arithmetic, so the similarities do not
depend on how the rows arrived, and equal similarities are ranked by id.
"""

from __future__ import annotations

import numpy as np

# Query rows compared with a cell at a time: bounds the similarity matrix to this many rows.
_CHUNK_ROWS = 1024


def unit_rows(points: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (float32), so that a dot product is the cosine; a zero row stays zero."""
    points = np.asarray(points, dtype=np.float32)
    norms = np.linalg.norm(points, axis=1, keepdims=True)
    return np.divide(points, norms, out=np.zeros_like(points), where=norms > 0)


def fit_cells(sample: np.ndarray, n_cells: int, seed: int) -> np.ndarray:
    """``n_cells`` unit centroids of a spherical k-means (k-means of the unit rows, centroids rescaled)."""
    from sklearn.cluster import KMeans

    units = unit_rows(sample)
    if len(units) == 0:
        return np.zeros((1, units.shape[1]), np.float32)
    n_cells = max(1, min(n_cells, len(np.unique(units, axis=0))))
    if n_cells == 1:
        return unit_rows(units.mean(axis=0, keepdims=True))
    centroids = KMeans(n_clusters=n_cells, n_init=1, random_state=seed).fit(units).cluster_centers_
    return unit_rows(centroids)


def nearest_cells(units: np.ndarray, centroids: np.ndarray, probes: int) -> np.ndarray:
    """Each row's ``probes`` most similar centroids, best first (ties: the lower cell)."""
    return _best_columns(_cosines(units, centroids), probes)


def top_k(query_ids: np.ndarray, queries: np.ndarray, ids: np.ndarray, points: np.ndarray, k: int):
    """For each query row, its ``k`` most similar rows of ``points`` other than itself.

    Rows are unit vectors; ids are comparable (integers or strings). Returns three arrays, a
    row per (query, neighbour): the query's id, the neighbour's id and their cosine similarity
    (float32), best first within a query, equal similarities by neighbour id.
    """
    by_id = np.argsort(ids, kind="stable")
    ids, points = ids[by_id], points[by_id]
    asked = np.argsort(query_ids, kind="stable")
    query_ids, queries = query_ids[asked], queries[asked]
    found_query, found_id, found_similarity = [], [], []
    for start in range(0, len(query_ids), _CHUNK_ROWS):
        chunk_ids = query_ids[start : start + _CHUNK_ROWS]
        similarity = _cosines(queries[start : start + _CHUNK_ROWS], points)
        # A query's own row, where the cell holds it, is no neighbour of its own.
        at = np.searchsorted(ids, chunk_ids)
        own = (at < len(ids)) & (ids[np.minimum(at, len(ids) - 1)] == chunk_ids)
        similarity[np.flatnonzero(own), at[own]] = -np.inf
        best = _best_columns(similarity, k)
        best_similarity = np.take_along_axis(similarity, best, axis=1)
        keep = np.isfinite(best_similarity)
        found_query.append(np.broadcast_to(chunk_ids[:, None], best.shape)[keep])
        found_id.append(ids[best[keep]])
        found_similarity.append(best_similarity[keep])
    if not found_query:
        return query_ids[:0], ids[:0], np.zeros(0, np.float32)
    return np.concatenate(found_query), np.concatenate(found_id), np.concatenate(found_similarity).astype(np.float32)


def ranks(query_ids: np.ndarray) -> np.ndarray:
    """Each row's place (1, 2, ...) among the rows of its query: ``top_k``'s output, whose rows come
    grouped by query, best first."""
    n = len(query_ids)
    starts = np.flatnonzero(np.r_[True, query_ids[1:] != query_ids[:-1]]) if n else np.zeros(0, np.int64)
    return (np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n])) + 1).astype(np.int32)


def _cosines(rows: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Each row's dot product with each of ``others`` (unit rows: the cosine), as float32.

    In float64, then rounded: BLAS sums a product by another path at another position in the
    matrix, and float32 kept the difference (two copies of a row scored 1 ulp apart), so a
    row's scores and the order of its ties would depend on the rows beside it.
    """
    return (rows.astype(np.float64) @ others.T.astype(np.float64)).astype(np.float32)


def _best_columns(similarity: np.ndarray, k: int) -> np.ndarray:
    """Each row's ``k`` columns of highest value, best first, equal values by column (ids are sorted)."""
    n = similarity.shape[1]
    columns = np.broadcast_to(np.arange(n), similarity.shape)
    if n <= k:
        return np.lexsort((columns, -similarity), axis=1)
    # The k largest are the last k of a partition at n - k (no negated copy of the matrix).
    part = np.argpartition(similarity, n - k, axis=1)[:, n - k :]
    kth = np.take_along_axis(similarity, part, axis=1).min(axis=1)
    # argpartition picks among values equal to the k-th at random: those rows are sorted whole.
    tied = np.flatnonzero((similarity >= kth[:, None]).sum(axis=1) > k)
    if len(tied):
        part[tied] = np.lexsort((columns[tied], -similarity[tied]), axis=1)[:, :k]
    part_similarity = np.take_along_axis(similarity, part, axis=1)
    return np.take_along_axis(part, np.lexsort((part, -part_similarity), axis=1), axis=1)

"""Could a tree, or a search among cells, find UMAP's transform neighbours faster than brute force (issue 29)?

    .venv/bin/python scripts/studies/exact_search.py --embeddings RUN_OUT/embeddings [--queries 5000]

On a job's embeddings (the autoencoder's output, as UMAP's transform searches them): a seeded
shuffle, the first ``--queries`` rows as new rows, 10,000 and 45,000 others as the fit sample.
Searches on one thread (as an executor's task runs them), 50 neighbours: scikit-learn's brute
force (the job's ``ExactNeighbors``), KD-tree and ball tree; and an approximate search among
cells (``CellSearch``, settings ``--cells``). Printed: µs a query (a cell search's k-means not counted: it is the fit's), the
share of neighbours brute force also finds, the share of distances equal to its in float32, and
the share of queries given brute force's list exactly (the same rows, order and distances: what
keeps UMAP's transform, and so the label, as it is).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

NEIGHBOURS = 50


class CellSearch:
    """Approximate neighbours among cells: the fit rows' k-means centroids, each fit row a candidate in
    its ``probes`` nearest cells, each query searched by brute force among the candidates of its
    nearest cell (among all fit rows where a cell has fewer than four times ``k``). ``query`` is
    shaped as UMAP's transform calls its search index (assign_profile.py swaps it in)."""

    _angular_trees = False

    def __init__(self, fit: np.ndarray, n_cells: int, probes: int):
        self.fit = fit
        self.centroids = KMeans(n_clusters=n_cells, n_init=1, random_state=0).fit(fit).cluster_centers_
        nearest = np.argsort(((fit[:, None, :] - self.centroids[None]) ** 2).sum(axis=2), axis=1, kind="stable")[:, :probes]
        self.candidates = [np.flatnonzero((nearest == cell).any(axis=1)) for cell in range(n_cells)]

    def query(self, queries: np.ndarray, k: int, epsilon: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        home = ((queries[:, None, :] - self.centroids[None]) ** 2).sum(axis=2).argmin(axis=1)
        indices = np.empty((len(queries), k), np.int32)
        distances = np.empty((len(queries), k), np.float32)
        for cell in np.unique(home):
            rows = np.flatnonzero(home == cell)
            members = self.candidates[cell] if len(self.candidates[cell]) >= 4 * k else np.arange(len(self.fit))
            found = NearestNeighbors(algorithm="brute").fit(self.fit[members]).kneighbors(queries[rows], n_neighbors=k)
            distances[rows], indices[rows] = found[0], members[found[1]]
        return indices, distances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", required=True)
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--cells", default="32:12,32:16,64:12", help="cells:probes, comma-separated")
    args = parser.parse_args()
    frame = pd.read_parquet(args.embeddings).sort_values("id")
    points = np.vstack(frame["embedding"].to_numpy()).astype(np.float32)
    points = points[np.random.default_rng(0).permutation(len(points))]
    queries = points[: args.queries]
    print(f"# {len(points):,} embeddings, {points.shape[1]} wide; one thread; {NEIGHBOURS} neighbours")
    print("| fit rows | search | leaf size, or cells : probes | us a query | neighbours as brute force | distances equal | "
          "queries with brute force's list |\n|---|---|---|---|---|---|---|")
    with threadpool_limits(1):
        for n_fit in (10_000, 45_000):
            fit = points[args.queries: args.queries + n_fit]
            results = []
            for algorithm, leaf_size in (("brute", 30), ("kd_tree", 20), ("kd_tree", 40), ("ball_tree", 40)):
                search = NearestNeighbors(algorithm=algorithm, leaf_size=leaf_size).fit(fit)
                started = time.perf_counter()
                found = search.kneighbors(queries, n_neighbors=NEIGHBOURS)
                results.append((algorithm, leaf_size, found, time.perf_counter() - started))
            for setting in args.cells.split(","):
                search = CellSearch(fit, *map(int, setting.split(":")))  # its k-means is the fit's cost: not timed
                started = time.perf_counter()
                indices, distances = search.query(queries, NEIGHBOURS)
                results.append(("cells", setting, (distances, indices), time.perf_counter() - started))
            reference = None
            for algorithm, setting, (distances, indices), seconds in results:
                distances = distances.astype(np.float32)
                reference = reference or (distances, indices)
                same = np.mean([len(np.intersect1d(a, b)) for a, b in zip(indices, reference[1])]) / NEIGHBOURS
                equal = np.mean(distances == reference[0])
                whole = np.mean((indices == reference[1]).all(axis=1) & (distances == reference[0]).all(axis=1))
                print(f"| {n_fit:,} | {algorithm} | {setting} | {seconds / len(queries) * 1e6:.1f} | {same:.4f} | {equal:.4f} | {whole:.4f} |")


if __name__ == "__main__":
    main()

"""Could a tree search find UMAP's transform neighbours faster than brute force (issue 29)?

    .venv/bin/python scripts/studies/exact_search.py --embeddings RUN_OUT/embeddings [--queries 5000]

On a job's embeddings (the autoencoder's output, as UMAP's transform searches them): a seeded
shuffle, the first ``--queries`` rows as new rows, 10,000 and 45,000 others as the fit sample.
scikit-learn's exact searches on one thread (as an executor's task runs them), 50 neighbours:
brute force (the job's ``ExactNeighbors``), KD-tree and ball tree. Printed: µs a query, the
share of neighbours brute force also finds, and the share of distances equal to its in float32.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", required=True)
    parser.add_argument("--queries", type=int, default=5000)
    args = parser.parse_args()
    frame = pd.read_parquet(args.embeddings).sort_values("id")
    points = np.vstack(frame["embedding"].to_numpy()).astype(np.float32)
    points = points[np.random.default_rng(0).permutation(len(points))]
    queries = points[: args.queries]
    print(f"# {len(points):,} embeddings, {points.shape[1]} wide; one thread; 50 neighbours")
    print("| fit rows | search | leaf size | us a query | neighbours as brute force | distances equal |\n|---|---|---|---|---|---|")
    with threadpool_limits(1):
        for n_fit in (10_000, 45_000):
            fit = points[args.queries: args.queries + n_fit]
            reference = None
            for algorithm, leaf_size in (("brute", 30), ("kd_tree", 20), ("kd_tree", 40), ("ball_tree", 40)):
                search = NearestNeighbors(algorithm=algorithm, leaf_size=leaf_size).fit(fit)
                started = time.perf_counter()
                distances, indices = search.kneighbors(queries, n_neighbors=50)
                seconds = time.perf_counter() - started
                distances = distances.astype(np.float32)
                reference = reference or (distances, indices)
                same = np.mean(np.sort(indices, axis=1) == np.sort(reference[1], axis=1))
                equal = np.mean(distances == reference[0])
                print(f"| {n_fit:,} | {algorithm} | {leaf_size} | {seconds / len(queries) * 1e6:.1f} | {same:.4f} | {equal:.4f} |")


if __name__ == "__main__":
    main()

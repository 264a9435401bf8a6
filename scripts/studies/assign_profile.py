"""Where the assign stage's time goes, and what cheaper placements would label (issue 29).

    .venv/bin/python scripts/studies/assign_profile.py --output RUN_OUT [--rows 20000]

RUN_OUT is a job's output with embeddings/ (similar.k above 0) and labels/. The rows outside the
manifold's fit sample (those whose embedding is not among the fitted UMAP's rows) are placed on
one thread, as an executor's task places them, in one batch of ``--rows`` rows (ordered by id):

1. umap-learn's ``transform``, profiled: the neighbour search, the starting positions
   (``init_graph_transform``, a Python loop over rows), the layout epochs, the rest;
   then the job's ``manifold.transform``: the same numbers, the starting positions vectorized.
2. Cheaper placements, each labelling every row outside the fit sample, against the labels the
   run wrote (labels/ ``cluster``): transform with fewer layout epochs; the starting position
   alone (the weighted mean of the nearest fit rows' coordinates); a vote of the nearest fit
   rows' labels. Beside them, the floor: transform itself on batches of other rows.
3. Transform with an approximate neighbour search (exact_search.py's ``CellSearch``) against
   transform with the exact one, on the same batch.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from bench import cpu_model  # noqa: E402

sys.path.insert(0, str(REPO / "scripts" / "studies"))
from exact_search import CellSearch  # noqa: E402


def timed(what, *args):
    started = time.perf_counter()
    result = what(*args)
    return result, time.perf_counter() - started


def profiled_parts(reducer, batch: np.ndarray) -> dict[str, float]:
    """Seconds of umap-learn's transform of ``batch`` in the neighbour search, starting positions and epochs."""
    profile = cProfile.Profile()
    profile.runcall(reducer.transform, batch)
    stats = pstats.Stats(profile).stats
    seconds = {"transform": max(cumulative for (_, _, name), (_, _, _, cumulative, _) in stats.items() if name == "transform")}
    for part, name in (("neighbour search", "kneighbors"), ("starting positions", "init_graph_transform"),
                       ("layout epochs", "optimize_layout_euclidean")):
        seconds[part] = sum(cumulative for (_, _, fn), (_, _, _, cumulative, _) in stats.items() if fn == name)
    return seconds


def neighbour_graph(reducer, points: np.ndarray):
    """transform's graph of new rows by fit rows (membership strengths), before any layout."""
    graph_mode = copy.copy(reducer)
    graph_mode.transform_mode, graph_mode._input_hash = "graph", None
    graph = graph_mode.transform(points).tocsr()
    graph.eliminate_zeros()
    return graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True)
    parser.add_argument("--rows", type=int, default=20_000, help="rows in the timed batch (manifold.batch_rows)")
    parser.add_argument("--cells", default="32:12,32:16,64:12", help="cell searches to compare, cells:probes (exact_search.py)")
    args = parser.parse_args()

    from pyspark.sql import SparkSession

    from n2d_spark.core.fs import FileSystem
    from n2d_spark.model.bundle import load_bundle
    from n2d_spark.model.manifold import graph_transform_init, import_umap_without_tensorflow, transform

    import_umap_without_tensorflow()
    spark = SparkSession.builder.master("local[1]").getOrCreate()
    bundle = load_bundle(spark, FileSystem(spark, args.output), f"{args.output}/model")
    spark.stop()
    reducer, clusters = bundle.assigner.reducer, bundle.assigner.clusters
    rows = pd.read_parquet(f"{args.output}/embeddings").merge(
        pd.read_parquet(f"{args.output}/labels", columns=["id", "cluster"]), on="id"
    ).sort_values("id")
    points = np.vstack(rows["embedding"].to_numpy()).astype(np.float32)
    fitted = {row.tobytes() for row in np.asarray(reducer._raw_data, np.float32)}
    outside = np.array([row.tobytes() not in fitted for row in points])
    points, written = points[outside], rows["cluster"].to_numpy()[outside]
    fit_labels = clusters.predict(np.asarray(reducer.embedding_, np.float32))
    print(f"# {cpu_model()}; {len(reducer._raw_data):,} fit rows, {len(points):,} rows outside them;"
          f" n_neighbors {reducer.n_neighbors}, metric {reducer.metric}; one thread")

    batch = points[: args.rows]
    with threadpool_limits(1):
        reducer.transform(batch[:100])  # numba's compilation, outside the timings
        parts = profiled_parts(reducer, batch)
        _, whole = timed(reducer.transform, batch)
        vectorized, ours = timed(transform, reducer, batch)
        identical = np.array_equal(vectorized, reducer.transform(batch))
        print(f"\n| step ({len(batch):,} rows, one thread) | s | us per row |\n|---|---|---|")
        rest = parts["transform"] - sum(v for k, v in parts.items() if k != "transform")
        for step, seconds in (("umap-learn's transform (profiled)", parts["transform"]),
                              *((f"  {k}", v) for k, v in parts.items() if k != "transform"), ("  the rest", rest),
                              ("umap-learn's transform (not profiled)", whole),
                              (f"manifold.transform, starting positions vectorized (identical: {identical})", ours)):
            print(f"| {step} | {seconds:.2f} | {seconds / len(batch) * 1e6:.0f} |")

        print("\n| placement | agreement with labels/ (rows outside the fit sample) |\n|---|---|")
        for start in (1, 2):
            other = np.sort(np.random.default_rng(start).permutation(len(points))[: args.rows])
            agreement = np.mean(clusters.predict(transform(reducer, points[other])) == written[other])
            print(f"| transform, a batch of {args.rows:,} other rows (seed {start}) | {agreement:.4f} |")
        epochs_before = reducer.n_epochs
        for epochs in (10, 3):
            reducer.n_epochs = 3 * epochs  # transform runs n_epochs // 3
            print(f"| transform, {epochs} epochs | {np.mean(clusters.predict(transform(reducer, batch)) == written[: args.rows]):.4f} |")
        reducer.n_epochs = epochs_before
        graph = neighbour_graph(reducer, batch)
        start_labels = clusters.predict(graph_transform_init(graph, reducer.embedding_))
        print(f"| the starting position alone | {np.mean(start_labels == written[: args.rows]):.4f} |")
        votes = np.zeros((len(batch), fit_labels.max() + 2))
        np.add.at(votes, (np.repeat(np.arange(len(batch)), np.diff(graph.indptr)), fit_labels[graph.indices] + 1), graph.data)
        print(f"| a vote of the nearest fit rows' labels | {np.mean(votes.argmax(axis=1) - 1 == written[: args.rows]):.4f} |")

        # An approximate neighbour search instead of the exact one, against the exact transform of the same batch.
        exact_search, exact_labels = reducer._knn_search_index, clusters.predict(transform(reducer, batch))
        print(f"\n| neighbour search (exact_search.py) | agreement with exact search's transform, the same {len(batch):,} rows |\n|---|---|")
        for setting in args.cells.split(","):
            reducer._knn_search_index = CellSearch(np.asarray(reducer._raw_data, np.float32), *map(int, setting.split(":")))
            print(f"| cells {setting} | {np.mean(clusters.predict(transform(reducer, batch)) == exact_labels):.4f} |")
        reducer._knn_search_index = exact_search


if __name__ == "__main__":
    main()

"""UMAP's neighbours: pynndescent's approximate search against the job's exact one, on real embeddings.

    .venv/bin/python scripts/studies/neighbors_study.py --model OUTPUT/model --input ../shared/data/imdb_reviews.csv.gz

Embeds every row of ``--input`` with a training run's model bundle (its vocabulary and
encoder, on the driver), then prints, for ``manifold.n_neighbors`` and ``manifold.n_components``
of that run's config:

- the neighbour search's seconds: pynndescent the first time in this process (its JIT
  compilation included), pynndescent again, and the job's exact search (``ExactNeighbors``);
- the share of the exact neighbours that pynndescent found;
- the whole UMAP fit's seconds and pickled size, with the exact graph (the job's way) and with
  UMAP's own pynndescent search;
- how far the two spaces agree: KMeans (k = 8) and DBSCAN (the study's eps 1.0, min_samples 50)
  on each, ARI between them, beside the ARI between pynndescent UMAPs seeded 0 and 1.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/, for bench.py
from bench import cpu_model  # noqa: E402

from n2d_spark.cli import build_local_session  # noqa: E402
from n2d_spark.core.config import load_config  # noqa: E402
from n2d_spark.core.fs import FileSystem  # noqa: E402
from n2d_spark.model.bundle import load_bundle  # noqa: E402
from n2d_spark.model.manifold import ExactNeighbors, import_umap_without_tensorflow, seeded_umap  # noqa: E402
from n2d_spark.rows.read import read_rows  # noqa: E402
from n2d_spark.rows.sampling import collect_sample  # noqa: E402
from n2d_spark.rows.text import COUNTS_COL, vectorize  # noqa: E402


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def embeddings_of(model_path: str, input_path: str) -> tuple[np.ndarray, object]:
    spark = build_local_session(load_config(None, ["spark.master=local[2]"]))
    spark.sparkContext.setLogLevel("ERROR")
    bundle = load_bundle(spark, FileSystem(spark, model_path), model_path)
    reviews = read_rows(spark, input_path, bundle.config.input)
    vectors = vectorize(bundle.text_model, reviews)
    _, counts = collect_sample(vectors, COUNTS_COL, vectors.count(), seed=0)
    spark.stop()
    # As the job does: a row without any vocabulary term has nothing to embed.
    counts = counts[np.diff(counts.indptr) > 0]
    return bundle.embedding_model.embed(counts).astype(np.float32), bundle.config


def cluster_agreement(exact: np.ndarray, approximate: np.ndarray) -> dict[str, float]:
    from sklearn.cluster import DBSCAN, KMeans
    from sklearn.metrics import adjusted_rand_score

    def both(cluster):
        return adjusted_rand_score(cluster(exact), cluster(approximate))

    return {
        "kmeans_ari": both(lambda x: KMeans(n_clusters=8, n_init=10, random_state=0).fit_predict(x)),
        "dbscan_ari": both(lambda x: DBSCAN(eps=1.0, min_samples=50).fit_predict(x)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a training run's OUTPUT/model")
    parser.add_argument("--input", required=True)
    args = parser.parse_args()
    x, config = embeddings_of(args.model, args.input)
    k, components = config.manifold.n_neighbors, config.manifold.n_components
    print(f"{x.shape[0]} embeddings of width {x.shape[1]}, n_neighbors {k}, n_components {components}; CPU {cpu_model()}")

    import_umap_without_tensorflow()
    import umap
    from pynndescent import NNDescent

    def approximate_search():
        return NNDescent(x, n_neighbors=k, random_state=0, n_jobs=1).neighbor_graph[0]

    approximate, first_seconds = timed(approximate_search)
    _, again_seconds = timed(approximate_search)
    (exact, _), exact_seconds = timed(ExactNeighbors(x, "euclidean").query, x, k)
    found = np.mean([len(np.intersect1d(a, e)) / k for a, e in zip(approximate, exact)])
    print(f"neighbour search s: pynndescent {first_seconds:.1f} (first, JIT included), {again_seconds:.1f} (again); "
          f"exact {exact_seconds:.1f}; pynndescent found {found:.2%} of the exact neighbours")

    (exact_umap, exact_space), exact_fit = timed(seeded_umap, x, components, k, config.manifold.min_dist, "euclidean", seed=0)

    def pynndescent_umap(seed: int):
        reducer = umap.UMAP(n_components=components, n_neighbors=k, min_dist=config.manifold.min_dist, random_state=seed)
        return reducer, reducer.fit_transform(x)

    (approximate_umap, approximate_space), approximate_fit = timed(pynndescent_umap, 0)
    _, reseeded_space = pynndescent_umap(1)
    print(f"UMAP fit s: exact graph {exact_fit:.1f}, pynndescent {approximate_fit:.1f}; pickled MB: exact "
          f"{len(pickle.dumps(exact_umap)) / 1e6:.1f}, pynndescent {len(pickle.dumps(approximate_umap)) / 1e6:.1f}")
    exact_vs_approximate = cluster_agreement(exact_space, approximate_space)
    seed_vs_seed = cluster_agreement(approximate_space, reseeded_space)
    print(f"ARI exact vs pynndescent UMAP: KMeans {exact_vs_approximate['kmeans_ari']:.3f}, DBSCAN {exact_vs_approximate['dbscan_ari']:.3f}; "
          f"pynndescent seed 0 vs 1: KMeans {seed_vs_seed['kmeans_ari']:.3f}, DBSCAN {seed_vs_seed['dbscan_ari']:.3f}")


if __name__ == "__main__":
    main()

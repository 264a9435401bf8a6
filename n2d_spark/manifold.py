"""Manifold stage: UMAP learns the local structure of the embedding (arrays in, fitted UMAP out)."""

from __future__ import annotations

import logging
import sys
import warnings

import numpy as np

from n2d_spark.config import ManifoldConfig
from n2d_spark.progress import umap_progress

log = logging.getLogger(__name__)


def import_umap_without_tensorflow() -> None:
    """Import umap-learn without TensorFlow, where nothing has imported TensorFlow yet.

    umap's package init tries to import its parametric variant, which imports TensorFlow:
    seconds and about half a GiB in every executor's Python worker that unpickles a UMAP
    model, for code the job never runs there. A None entry in sys.modules makes that
    import fail, and umap carries on without the parametric variant.
    """
    if "umap" in sys.modules or "tensorflow" in sys.modules:
        return
    sys.modules["tensorflow"] = None
    try:
        import umap  # noqa: F401  (imported for its side effect: the module cached without TensorFlow)
    finally:
        del sys.modules["tensorflow"]


def fit_manifold(embeddings: np.ndarray, config: ManifoldConfig, stage: str = "manifold"):
    """Returns the fitted ``umap.UMAP`` and the rows' coordinates (float32, n_components wide);
    the layout's progress is logged under ``stage``."""
    n_neighbors = config.n_neighbors
    if n_neighbors >= len(embeddings):
        n_neighbors = max(2, len(embeddings) - 1)
        log.warning("manifold.n_neighbors=%d exceeds the %d rows; using %d", config.n_neighbors, len(embeddings), n_neighbors)
    return seeded_umap(
        embeddings,
        n_components=config.n_components,
        n_neighbors=n_neighbors,
        min_dist=config.min_dist,
        metric=config.metric,
        seed=config.seed,
        stage=stage,
    )


def seeded_umap(
    embeddings: np.ndarray, n_components: int, n_neighbors: int, min_dist: float, metric: str, seed: int, stage: str = "manifold"
):
    """A seeded ``umap.UMAP`` fitted on ``embeddings`` and their coordinates (float32).

    The neighbour graph comes from ``ExactNeighbors`` where the metric allows; UMAP's own
    approximate search (pynndescent) is left for any other metric.
    """
    import umap

    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    precomputed_knn = (None, None, None)
    if metric in EXACT_METRICS:
        index = ExactNeighbors(x, metric)
        precomputed_knn = (*index.query(x, n_neighbors), index)
    reducer = umap.UMAP(
        n_components=n_components,
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        metric=metric,
        precomputed_knn=precomputed_knn,
        # A seed makes UMAP single-threaded; the job promises the same labels for the same input.
        random_state=seed,
        # The layout's epochs are most of a large fit: logged, so that minutes are not silent.
        tqdm_kwds=umap_progress(stage),
    )
    with warnings.catch_warnings():
        # UMAP warns that a seed makes it single-threaded (the point), and that a search index
        # that is not pynndescent's leaves it unable to transform (ExactNeighbors can).
        warnings.filterwarnings("ignore", message=r"n_jobs value .* overridden to 1 by setting random_state")
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\] \(knn_search_index\) is not an NNDescent object")
        coordinates = reducer.fit_transform(x).astype(np.float32)
    # transform, on the executors, stays silent (and pickles no logger).
    reducer.tqdm_kwds = None
    return reducer, coordinates


# Metrics that scikit-learn's exact search computes the way UMAP's named metrics do.
EXACT_METRICS = frozenset({"euclidean", "manhattan", "chebyshev", "cosine", "correlation", "canberra", "braycurtis"})


class ExactNeighbors:
    """UMAP's neighbour search done exactly: the fit rows' k nearest neighbours, and ``query`` for ``transform``.

    The embedding is low-dimensional (the bottleneck, 10 wide by default) and the fit sample
    at most ``manifold.fit_rows`` rows, so scikit-learn's brute-force search, on every core
    and deterministic, finds all neighbours in seconds. pynndescent's approximate search,
    which UMAP uses by default, first JIT-compiles for about 30 s in every new process and
    runs on one thread when UMAP is seeded; its index also pickles to tens of MB, where
    this one holds only the fit rows. UMAP's ``transform`` calls ``query`` and reads
    ``_angular_trees``.
    """

    # UMAP's transform picks the approximate search's epsilon from this; an exact search ignores it.
    _angular_trees = False

    def __init__(self, data: np.ndarray, metric: str):
        from sklearn.neighbors import NearestNeighbors

        self.search = NearestNeighbors(algorithm="brute", metric=metric).fit(data)

    def query(self, points: np.ndarray, k: int, epsilon: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest fit rows of each point (a point among them is its own first neighbour): indices, distances."""
        distances, indices = self.search.kneighbors(points, n_neighbors=k)
        return indices.astype(np.int32), distances.astype(np.float32)

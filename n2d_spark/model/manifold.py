"""Manifold stage: UMAP learns the local structure of the embedding (arrays in, fitted UMAP out).

``umap_to_arrays`` and ``umap_from_arrays`` turn a fitted UMAP into plain arrays and JSON
scalars and back, for the model bundle: everything ``UMAP.transform`` reads is kept or
rebuilt, so the rebuilt UMAP transforms new points exactly as the fitted one does.
"""

from __future__ import annotations

import logging
import sys
import warnings

import numpy as np

from n2d_spark.core.config import ManifoldConfig
from n2d_spark.core.progress import umap_progress

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


def umap_to_arrays(reducer) -> tuple[dict[str, np.ndarray], dict] | None:
    """What ``UMAP.transform`` reads, as arrays (the fit rows, their coordinates) and JSON scalars; None where that is not enough.

    transform finds each new point's neighbours among the fit rows, either by ``ExactNeighbors``
    (rebuilt from the fit rows and the metric) or, below 4,096 fit rows with another metric, by
    computing every distance; it then lays the point out against the fitted coordinates with the
    fitted curve (a, b) and the constructor's parameters. The fuzzy graph, sigmas and rhos of the
    fit are not read. None when transform would query pynndescent's index (another metric on
    4,096 fit rows or more): that index is a neighbour graph, a forest of search trees and
    numba-compiled search code, which only a pickle keeps as it was.
    """
    exact_search = isinstance(getattr(reducer, "_knn_search_index", None), ExactNeighbors)
    small_data = bool(getattr(reducer, "_small_data", False))
    if not (exact_search or small_data) or not isinstance(reducer._raw_data, np.ndarray):
        return None
    # precomputed_knn holds the fit's neighbour arrays and index, which transform does not read;
    # tqdm_kwds is None once fitted (seeded_umap).
    params = {name: value for name, value in reducer.get_params().items() if name not in ("precomputed_knn", "tqdm_kwds")}
    fitted = {
        "a": float(reducer._a),
        "b": float(reducer._b),
        # n_neighbors, or fewer where the fit had fewer rows.
        "n_neighbors": int(reducer._n_neighbors),
        "small_data": small_data,
        "exact_search": exact_search,
    }
    return {"raw_data": reducer._raw_data, "embedding": reducer.embedding_}, {"params": params, "fitted": fitted}


def umap_from_arrays(arrays: dict[str, np.ndarray], scalars: dict):
    """The ``umap.UMAP`` that ``umap_to_arrays`` described, rebuilt to transform as the fitted one did."""
    import joblib
    import umap

    raw_data, embedding, fitted = arrays["raw_data"], arrays["embedding"], scalars["fitted"]
    if raw_data.ndim != 2 or embedding.ndim != 2 or len(raw_data) != len(embedding):
        raise ValueError(f"fit rows {raw_data.shape} and their coordinates {embedding.shape} do not match")
    reducer = umap.UMAP(**scalars["params"])
    # The fitted attributes, named as UMAP.fit names them.
    reducer._raw_data = raw_data
    reducer.embedding_ = embedding
    reducer._a, reducer._b = fitted["a"], fitted["b"]
    reducer._n_neighbors = fitted["n_neighbors"]
    reducer._small_data = fitted["small_data"]
    reducer._initial_alpha = reducer.learning_rate
    with warnings.catch_warnings():
        # fit derives the metric's distance function, its keywords and the disconnection
        # distance in this method, from the fit rows and the parameters; so does the rebuild.
        # It warns that metrics without a gradient cannot inverse_transform, which the job never does.
        warnings.filterwarnings("ignore", message=r"gradient function is not yet implemented")
        reducer._validate_parameters()
    if fitted["exact_search"]:
        reducer._knn_search_index = ExactNeighbors(raw_data, reducer.metric)
    # transform returns embedding_ itself for the fit rows, recognised by this hash.
    reducer._input_hash = joblib.hash(raw_data)
    reducer.tqdm_kwds = None
    return reducer


def transform(reducer, points: np.ndarray) -> np.ndarray:
    """``reducer.transform(points)`` as float32, with umap-learn's starting positions computed by
    ``graph_transform_init``: the same numbers, without its Python loop over rows.

    That loop (``umap.umap_.init_graph_transform``) was 69% of a 20,000-row transform on IMDB,
    more than the neighbour search and the layout epochs together (BENCHMARKS.md, "Placing the
    rows outside the fit sample"). It is swapped for the duration of the call only; an executor's
    Python worker runs one task at a time.
    """
    import umap.umap_ as umap_module

    looped = umap_module.init_graph_transform
    umap_module.init_graph_transform = graph_transform_init
    try:
        return reducer.transform(points).astype(np.float32)
    finally:
        umap_module.init_graph_transform = looped


def graph_transform_init(graph, embedding: np.ndarray) -> np.ndarray:
    """umap-learn's ``init_graph_transform``, vectorized, bit for bit: each new row at the weighted
    mean of its fit rows' coordinates (weights: its row of ``graph``, a CSR matrix of new rows by fit
    rows, over their sum), summed in float32 in column order; a row with weight 1 for a fit row (the
    first such) takes that row's coordinates; a row with no fit row gets NaN.
    """
    embedding = np.asarray(embedding)
    # umap-learn reads a row as scipy slices it: its fit rows in column order.
    graph = graph if graph.has_sorted_indices else graph.sorted_indices()
    result = np.zeros((graph.shape[0], embedding.shape[1]), dtype=np.float32)
    degrees = np.diff(graph.indptr)
    result[degrees == 0] = np.nan
    # Rows of one degree at a time: numpy sums a row's weights pairwise, in blocks set by its length.
    for degree in np.unique(degrees[degrees > 0]):
        rows = np.flatnonzero(degrees == degree)
        entries = graph.indptr[rows][:, None] + np.arange(degree)
        weights, columns = graph.data[entries], graph.indices[entries]
        totals = weights.sum(axis=1)
        placed = np.zeros((len(rows), embedding.shape[1]), dtype=np.float32)
        for j in range(degree):
            placed += (weights[:, j] / totals)[:, None] * embedding[columns[:, j]]
        at_one = weights == 1
        hit = np.flatnonzero(at_one.any(axis=1))
        placed[hit] = embedding[columns[hit, at_one[hit].argmax(axis=1)]]
        result[rows] = placed
    return result

"""Manifold stage: UMAP learns the local structure of the embedding (arrays in, fitted UMAP out)."""

from __future__ import annotations

import logging
import sys

import numpy as np

from n2d_spark.config import ManifoldConfig

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


def fit_manifold(embeddings: np.ndarray, config: ManifoldConfig):
    """Returns the fitted ``umap.UMAP`` and the rows' coordinates (float32, n_components wide)."""
    import umap

    n_neighbors = config.n_neighbors
    if n_neighbors >= len(embeddings):
        n_neighbors = max(2, len(embeddings) - 1)
        log.warning("manifold.n_neighbors=%d exceeds the %d rows; using %d", config.n_neighbors, len(embeddings), n_neighbors)
    reducer = umap.UMAP(
        n_components=config.n_components,
        n_neighbors=n_neighbors,
        min_dist=config.min_dist,
        metric=config.metric,
        # A seed makes UMAP single-threaded; the job promises the same labels for the same input.
        random_state=config.seed,
    )
    coordinates = reducer.fit_transform(embeddings).astype(np.float32)
    return reducer, coordinates

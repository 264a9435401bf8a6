"""Manifold stage: UMAP learns the local structure of the embedding (arrays in, fitted UMAP out)."""

from __future__ import annotations

import logging

import numpy as np

from n2d_spark.config import ManifoldConfig

log = logging.getLogger(__name__)


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

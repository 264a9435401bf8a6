"""Cluster stage: a shallow clusterer on the manifold coordinates. Noise is label -1."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import DBSCAN, HDBSCAN, KMeans
from sklearn.mixture import GaussianMixture

from n2d_spark.config import ClusterConfig
from n2d_spark.errors import InputError

NOISE = -1


def make_clusterer(config: ClusterConfig):
    """A scikit-learn estimator for ``cluster.algorithm``, configured but not fitted."""
    if config.algorithm == "dbscan":
        return DBSCAN(eps=config.eps, min_samples=config.min_samples)
    if config.algorithm == "kmeans":
        return KMeans(n_clusters=config.k, n_init=10, random_state=config.seed)
    if config.algorithm == "gmm":
        # As in the N2D paper: one full-covariance Gaussian per cluster.
        return GaussianMixture(n_components=config.k, covariance_type="full", random_state=config.seed)
    if config.algorithm == "hdbscan":
        return HDBSCAN(min_cluster_size=config.min_samples, copy=True)
    raise ValueError(f"unknown cluster.algorithm {config.algorithm!r}")


def fit_clusters(points: np.ndarray, config: ClusterConfig):
    """Returns the fitted estimator and one int32 label per row."""
    needed = config.k if config.algorithm in ("kmeans", "gmm") else config.min_samples
    if len(points) < needed:
        raise InputError(
            f"{len(points)} rows are too few for {config.algorithm} "
            f"({'cluster.k' if config.algorithm in ('kmeans', 'gmm') else 'cluster.min_samples'}={needed})"
        )
    clusterer = make_clusterer(config)
    labels = clusterer.fit_predict(points).astype(np.int32)
    return clusterer, labels

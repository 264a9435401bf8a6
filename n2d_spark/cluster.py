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


def check_enough_rows(n_rows: int, config: ClusterConfig) -> None:
    """A clusterer needs at least k rows (kmeans, gmm) or min_samples rows (dbscan, hdbscan)."""
    key = "k" if config.algorithm in ("kmeans", "gmm") else "min_samples"
    needed = getattr(config, key)
    if n_rows < needed:
        raise InputError(f"{n_rows} usable rows are too few for {config.algorithm} (cluster.{key}={needed})")


def fit_clusters(points: np.ndarray, config: ClusterConfig):
    """Returns the fitted estimator and one int32 label per row."""
    check_enough_rows(len(points), config)
    clusterer = make_clusterer(config)
    labels = clusterer.fit_predict(points).astype(np.int32)
    return clusterer, labels

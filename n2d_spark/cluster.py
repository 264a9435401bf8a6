"""Cluster stage: a shallow clusterer on the manifold coordinates. Noise is label -1.

``fit_clusters`` fits on the fit sample; the ``FittedClusters`` it returns assigns any
other point the way its algorithm would: KMeans and the Gaussian mixture by their own
predict, DBSCAN by the nearest core sample within eps, HDBSCAN by its approximate
prediction over the condensed tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.cluster import DBSCAN, KMeans
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors

from n2d_spark.config import ClusterConfig
from n2d_spark.errors import InputError

NOISE = -1


def make_clusterer(config: ClusterConfig):
    """An estimator for ``cluster.algorithm``, configured but not fitted."""
    if config.algorithm == "dbscan":
        return DBSCAN(eps=config.eps, min_samples=config.min_samples)
    if config.algorithm == "kmeans":
        return KMeans(n_clusters=config.k, n_init=10, random_state=config.seed)
    if config.algorithm == "gmm":
        # As in the N2D paper: one full-covariance Gaussian per cluster.
        return GaussianMixture(n_components=config.k, covariance_type="full", random_state=config.seed)
    if config.algorithm == "hdbscan":
        # The hdbscan package rather than scikit-learn's: only it predicts for new points
        # (approximate_predict), from the prediction data it keeps when asked.
        import hdbscan

        return hdbscan.HDBSCAN(min_cluster_size=config.min_samples, prediction_data=True)
    raise ValueError(f"unknown cluster.algorithm {config.algorithm!r}")


def check_enough_rows(n_rows: int, config: ClusterConfig) -> None:
    """A clusterer needs at least k rows (kmeans, gmm) or min_samples rows (dbscan, hdbscan)."""
    key = "k" if config.algorithm in ("kmeans", "gmm") else "min_samples"
    needed = getattr(config, key)
    if n_rows < needed:
        raise InputError(f"{n_rows} usable rows are too few for {config.algorithm} (cluster.{key}={needed})")


@dataclass
class FittedClusters:
    """A fitted clusterer and what assigning new points needs; picklable, for broadcasting."""

    algorithm: str
    estimator: Any
    # DBSCAN only: an index over the core samples, their labels, and the radius.
    core_index: NearestNeighbors | None = None
    core_labels: np.ndarray | None = None
    eps: float | None = None

    def predict(self, points: np.ndarray) -> np.ndarray:
        """One int32 label per point; -1 where the point belongs to no cluster."""
        if len(points) == 0:
            return np.zeros(0, dtype=np.int32)
        if self.algorithm == "dbscan":
            if self.core_index is None:
                return np.full(len(points), NOISE, dtype=np.int32)
            distance, nearest = self.core_index.kneighbors(points, n_neighbors=1)
            labels = self.core_labels[nearest[:, 0]].astype(np.int32)
            labels[distance[:, 0] > self.eps] = NOISE
            return labels
        if self.algorithm == "hdbscan":
            import hdbscan

            labels, _strength = hdbscan.approximate_predict(self.estimator, points)
            return labels.astype(np.int32)
        return self.estimator.predict(points).astype(np.int32)


def fit_clusters(points: np.ndarray, config: ClusterConfig) -> tuple[FittedClusters, np.ndarray]:
    """Returns the fitted clusters and one int32 label per row of ``points``."""
    check_enough_rows(len(points), config)
    estimator = make_clusterer(config)
    labels = estimator.fit_predict(points).astype(np.int32)
    fitted = FittedClusters(algorithm=config.algorithm, estimator=estimator)
    if config.algorithm == "dbscan" and len(estimator.core_sample_indices_):
        fitted.core_index = NearestNeighbors(n_neighbors=1).fit(estimator.components_)
        fitted.core_labels = labels[estimator.core_sample_indices_]
        fitted.eps = config.eps
    return fitted, labels

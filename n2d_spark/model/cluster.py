"""Cluster stage: a shallow clusterer on the manifold coordinates (noise is label -1) and the topic tree.

``fit_clusters`` fits on the fit sample; the ``FittedClusters`` it returns assigns any
other point the way its algorithm would: KMeans and the Gaussian mixture by their own
predict, DBSCAN by the nearest core sample within eps, HDBSCAN by its approximate
prediction over the condensed tree. With ``cluster.reduce_outliers`` a point the
algorithm calls noise then joins the cluster whose centroid (on the fit sample, in the
manifold's coordinates) is nearest, on the driver and on the executors alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import DBSCAN, KMeans
from sklearn.metrics import silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors

from n2d_spark.core.columns import NOISE
from n2d_spark.core.config import ClusterConfig
from n2d_spark.core.errors import InputError


# HDBSCAN's smallest cluster when cluster.min_cluster_size is null: this share of the fit rows,
# at least _SMALLEST_CLUSTER rows (docs/choices.md, chosen on the labelled corpora).
MIN_CLUSTER_SHARE = 0.005
_SMALLEST_CLUSTER = 10


def min_cluster_size(config: ClusterConfig, n_rows: int) -> int:
    """HDBSCAN's smallest cluster: ``cluster.min_cluster_size``, or a share of the rows it is fitted on."""
    if config.min_cluster_size is not None:
        return config.min_cluster_size
    return max(_SMALLEST_CLUSTER, round(MIN_CLUSTER_SHARE * n_rows))


def make_clusterer(config: ClusterConfig, n_rows: int, k: int | None = None):
    """An estimator for ``cluster.algorithm`` to fit on ``n_rows`` points (``k`` clusters for kmeans and gmm), not fitted."""
    if config.algorithm == "dbscan":
        return DBSCAN(eps=config.eps, min_samples=config.min_samples)
    if config.algorithm == "kmeans":
        return kmeans(k, config.seed)
    if config.algorithm == "gmm":
        # As in the N2D paper: one full-covariance Gaussian per cluster.
        return GaussianMixture(n_components=k, covariance_type="full", random_state=config.seed)
    if config.algorithm == "hdbscan":
        # The hdbscan package rather than scikit-learn's: only it predicts for new points
        # (approximate_predict), from the prediction data it keeps when asked.
        import hdbscan

        return hdbscan.HDBSCAN(
            min_cluster_size=min_cluster_size(config, n_rows), min_samples=config.min_samples, prediction_data=True
        )
    raise ValueError(f"unknown cluster.algorithm {config.algorithm!r}")


def kmeans(k: int, seed: int, n_init: int = 10) -> KMeans:
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed)


# cluster.k: auto scores each candidate k on a seeded sample of this many fit rows.
_SILHOUETTE_ROWS = 5000


def choose_k(points: np.ndarray, config: ClusterConfig) -> dict[int, float]:
    """The silhouette of a KMeans partition of a sample of ``points`` for each k in [k_min, k_max].

    A seeded sample of 5,000 rows is partitioned (3 initialisations) and scored for every k from
    k_min to 20, then every fifth: the silhouette changes slowly past 20. None when too few rows.
    """
    rng = np.random.default_rng(config.seed)
    sample = points[np.sort(rng.permutation(len(points))[:_SILHOUETTE_ROWS])]
    candidates = [k for k in range(config.k_min, config.k_max + 1) if k <= 20 or k % 5 == 0]
    scores = {}
    for k in candidates:
        if k >= len(sample):
            break
        labels = kmeans(k, config.seed, n_init=3).fit_predict(sample)
        if len(np.unique(labels)) > 1:
            scores[k] = float(silhouette_score(sample, labels))
    return scores


def check_enough_rows(n_rows: int, config: ClusterConfig) -> None:
    """A clusterer needs at least k rows (kmeans, gmm), min_samples rows (dbscan) or its smallest cluster (hdbscan)."""
    key = {"kmeans": "k", "gmm": "k", "dbscan": "min_samples"}.get(config.algorithm, "min_cluster_size")
    needed = getattr(config, key) or _SMALLEST_CLUSTER
    if needed == "auto":
        key, needed = "k_min", config.k_min
    if n_rows < needed:
        raise InputError(f"{n_rows} usable rows are too few for {config.algorithm} (cluster.{key}={needed})")


@dataclass
class FittedClusters:
    """A fitted clusterer and what assigning new points needs; picklable, for broadcasting.

    The model bundle stores it as arrays (n2d_spark/model/cluster_arrays.py).
    """

    algorithm: str
    estimator: Any
    # DBSCAN only: an index over the core samples, their labels, and the radius.
    core_index: NearestNeighbors | None = None
    core_labels: np.ndarray | None = None
    eps: float | None = None
    # cluster.reduce_outliers: each cluster's centroid on the fit sample (rows) and its label.
    centroids: np.ndarray | None = None
    centroid_labels: np.ndarray | None = None
    # The share of the fit sample the algorithm called noise, before outliers were reduced.
    fit_noise_share: float = 0.0
    # cluster.k: auto: the silhouette of each candidate k.
    k_scores: dict[int, float] | None = None
    # cluster.n_topics: the topic of each of the algorithm's clusters (indexed by cluster).
    topic_of: np.ndarray | None = None
    # The final topics (after outliers and merges) and each one's centroid on the fit sample, in
    # the manifold: what a label's confidence and second topic are measured against.
    topic_ids: np.ndarray | None = None
    topic_centroids: np.ndarray | None = None

    def predict(self, points: np.ndarray) -> np.ndarray:
        """One int32 label per point; -1 where the point belongs to no cluster."""
        return self.merge(self.reduce_outliers(points, self.predict_raw(points)))

    def confidence(self, points: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """How clearly each point belongs to its topic (float32, 0-1), and its second topic (int32, -1: none).

        Confidence is 1 - d(own topic's centroid) / d(nearest other topic's centroid), at least 0:
        1 at a topic's centre, 0 where another topic's centroid is as near. On AG News and BBC News
        the least sure tenth of rows is the least accurate (BENCHMARKS.md, "How sure each label is"). A point
        without a topic (noise) has confidence 0 and its nearest topic as second; with one topic
        only, every point has confidence 1 and no second topic.
        """
        sure, second = np.zeros(len(points), np.float32), np.full(len(points), NOISE, np.int32)
        if self.topic_ids is None or not len(self.topic_ids) or not len(points):
            return sure, second
        distances = np.sqrt(squared_distances(np.asarray(points, np.float64), self.topic_centroids.astype(np.float64)))
        rows = np.arange(len(points))
        own = np.minimum(np.searchsorted(self.topic_ids, labels), len(self.topic_ids) - 1)
        in_topic = self.topic_ids[own] == labels
        own_distance = distances[rows, own]
        distances[rows[in_topic], own[in_topic]] = np.inf
        other = distances.argmin(axis=1)
        other_distance = distances[rows, other]
        has_other = np.isfinite(other_distance)
        second[has_other] = self.topic_ids[other[has_other]]
        ratio = np.divide(own_distance, other_distance, out=np.ones_like(own_distance), where=other_distance > 0)
        sure[in_topic] = np.clip(1 - ratio[in_topic], 0, 1)
        return sure, second

    def merge(self, labels: np.ndarray) -> np.ndarray:
        """``labels`` with each cluster replaced by the topic it was merged into (cluster.n_topics)."""
        if self.topic_of is None:
            return labels
        merged = labels.copy()
        clustered = labels != NOISE
        merged[clustered] = self.topic_of[labels[clustered]]
        return merged

    def reduce_outliers(self, points: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """``labels`` with each noise point given the cluster of its nearest centroid (without centroids: as they are)."""
        noise = labels == NOISE
        if self.centroids is None or not noise.any():
            return labels
        labels = labels.copy()
        distances = squared_distances(points[noise], self.centroids)
        labels[noise] = self.centroid_labels[distances.argmin(axis=1)]
        return labels

    def predict_raw(self, points: np.ndarray) -> np.ndarray:
        """The algorithm's own labels, noise left as -1."""
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
    k, k_scores = config.k, None
    if config.algorithm in ("kmeans", "gmm") and k == "auto":
        k_scores = choose_k(points, config)
        k = max(k_scores, key=k_scores.get) if k_scores else config.k_min
    estimator = make_clusterer(config, len(points), k)
    labels = estimator.fit_predict(points).astype(np.int32)
    fitted = FittedClusters(algorithm=config.algorithm, estimator=estimator, k_scores=k_scores)
    if config.algorithm == "dbscan" and len(estimator.core_sample_indices_):
        fitted.core_index = core_sample_index(estimator.components_)
        fitted.core_labels = labels[estimator.core_sample_indices_]
        fitted.eps = config.eps
    fitted.fit_noise_share = float(np.mean(labels == NOISE))
    clustered = np.unique(labels[labels != NOISE])
    if config.reduce_outliers and len(clustered):
        clusters, means = centroids(points, labels)
        fitted.centroid_labels, fitted.centroids = clusters.astype(np.int32), means.astype(points.dtype)
        labels = fitted.reduce_outliers(points, labels)
    if config.n_topics is not None and len(clustered) > config.n_topics:
        fitted.topic_of = merge_topics(points, labels, config.n_topics)
        labels = fitted.merge(labels)
    fitted.topic_ids, fitted.topic_centroids = topic_centroids(points, labels)
    return fitted, labels


def squared_distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Each point's squared Euclidean distance to each centre (points by centres), in their dtype."""
    return ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)


def topic_centroids(points: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The topics of ``labels`` (noise left out; int32) and each one's centroid in ``points``' space and dtype."""
    if not (labels != NOISE).any():
        return np.zeros(0, np.int32), np.zeros((0, points.shape[1]), points.dtype)
    topics, means = centroids(points, labels)
    return topics.astype(np.int32), means.astype(points.dtype)


def core_sample_index(core_samples: np.ndarray) -> NearestNeighbors:
    """DBSCAN's core samples indexed for the nearest one to each new point."""
    return NearestNeighbors(n_neighbors=1).fit(core_samples)


def centroids(points: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The clusters (noise left out) and the mean of each one's points."""
    clusters = np.unique(labels[labels != NOISE])
    return clusters, np.vstack([points[labels == c].mean(axis=0) for c in clusters])


def topic_linkage(points: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The clusters and SciPy's Ward linkage of their centroids: the order in which they merge, most similar first."""
    clusters, means = centroids(points, labels)
    return clusters, linkage(means.astype(np.float64), method="ward")


def merge_topics(points: np.ndarray, labels: np.ndarray, n_topics: int) -> np.ndarray:
    """For each cluster id, the topic (0 .. n_topics-1) it joins when the most similar clusters merge until n_topics remain.

    Topics are numbered by their smallest cluster id, so a cluster that merges with none keeps its rank.
    """
    clusters, tree = topic_linkage(points, labels)
    groups = fcluster(tree, t=n_topics, criterion="maxclust")
    first_cluster = {g: clusters[groups == g].min() for g in np.unique(groups)}
    topic_by_group = {g: i for i, g in enumerate(sorted(first_cluster, key=first_cluster.get))}
    topic_of = np.full(clusters.max() + 1, NOISE, dtype=np.int32)
    topic_of[clusters] = [topic_by_group[g] for g in groups]
    return topic_of


def topic_tree(points: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """The hierarchy of the final clusters: a row per merge of two nodes, as SciPy numbers them.

    Nodes 0 .. n-1 are the clusters, in id order; each row makes node n + i from ``left`` and
    ``right`` at Ward ``distance``; ``clusters`` lists the cluster ids under the new node.
    """
    clusters, tree = topic_linkage(points, labels)
    members = {i: [int(c)] for i, c in enumerate(clusters)}
    rows = []
    for i, (left, right, distance, _count) in enumerate(tree):
        node = len(clusters) + i
        members[node] = sorted(members[int(left)] + members[int(right)])
        rows.append({"node": node, "left": int(left), "right": int(right), "distance": float(distance), "clusters": members[node]})
    return pd.DataFrame(rows, columns=["node", "left", "right", "distance", "clusters"])

import dataclasses

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from n2d_spark.core.columns import NOISE
from n2d_spark.core.config import ClusterConfig
from n2d_spark.core.errors import InputError
from n2d_spark.model.cluster import MIN_CLUSTER_SHARE, fit_clusters, min_cluster_size, topic_tree

POINTS, TRUTH, CENTERS = make_blobs(n_samples=600, centers=4, cluster_std=0.3, random_state=0, return_centers=True)
# Outliers stay noise here: each algorithm's own labels (reduce_outliers has tests of its own).
EVERY_ALGORITHM = [
    ClusterConfig(algorithm="dbscan", eps=0.8, min_samples=10, reduce_outliers=False),
    ClusterConfig(algorithm="kmeans", k=4, reduce_outliers=False),
    ClusterConfig(algorithm="gmm", k=4, reduce_outliers=False),
    ClusterConfig(algorithm="hdbscan", min_cluster_size=20, min_samples=20, reduce_outliers=False),
]


@pytest.mark.parametrize("config", EVERY_ALGORITHM, ids=lambda c: c.algorithm)
def test_each_algorithm_recovers_blobs(config):
    _, labels = fit_clusters(POINTS, config)
    assert labels.dtype == np.int32 and labels.shape == (600,)
    assert adjusted_rand_score(TRUTH, labels) > 0.95


def test_dbscan_marks_outliers_as_noise():
    points = np.vstack([POINTS, [[100.0, 100.0]]])
    _, labels = fit_clusters(points, ClusterConfig(algorithm="dbscan", eps=0.8, min_samples=10, reduce_outliers=False))
    assert labels[-1] == NOISE


def test_too_few_rows():
    with pytest.raises(InputError, match="3 usable rows are too few for kmeans"):
        fit_clusters(POINTS[:3], ClusterConfig(algorithm="kmeans", k=4))


@pytest.mark.parametrize("config", EVERY_ALGORITHM, ids=lambda c: c.algorithm)
def test_predict_agrees_with_the_fit_on_new_points(config):
    """New points from the same blobs land in their blob's cluster; the fitted points keep their labels."""
    new_points, new_truth = make_blobs(n_samples=300, centers=CENTERS, cluster_std=0.3, random_state=1)
    fitted, labels = fit_clusters(POINTS, config)
    predicted = fitted.predict(new_points)
    assert predicted.dtype == np.int32
    assert adjusted_rand_score(new_truth, predicted) > 0.95
    if config.algorithm != "hdbscan":  # approximate_predict is approximate on its own training points too
        assert (fitted.predict(POINTS) == labels).mean() > 0.99
    far = fitted.predict(np.array([[100.0, 100.0]]))
    if config.algorithm in ("dbscan", "hdbscan"):
        assert far[0] == NOISE


def test_dbscan_assigns_the_nearest_core_within_eps():
    core = np.array([[0.0, 0.0]] * 5 + [[10.0, 0.0]] * 5)
    fitted, labels = fit_clusters(core, ClusterConfig(algorithm="dbscan", eps=1.0, min_samples=3, reduce_outliers=False))
    predicted = fitted.predict(np.array([[0.9, 0.0], [9.5, 0.0], [5.0, 0.0], [1.1, 0.0]]))
    assert predicted.tolist() == [labels[0], labels[5], NOISE, NOISE]
    assert labels[0] != labels[5]


@pytest.mark.parametrize("true_k", [5, 9, 14])
def test_auto_k_finds_the_number_of_blobs(true_k):
    points, truth = make_blobs(n_samples=3000, n_features=5, centers=true_k, cluster_std=0.6, center_box=(-20, 20), random_state=true_k)
    fitted, labels = fit_clusters(points, ClusterConfig(algorithm="kmeans", k="auto", k_min=5, k_max=30))
    assert max(fitted.k_scores, key=fitted.k_scores.get) == true_k
    assert len(np.unique(labels)) == true_k
    assert adjusted_rand_score(truth, labels) > 0.95
    # Every k from k_min to 20 was scored, then every fifth.
    assert sorted(fitted.k_scores) == list(range(5, 21)) + [25, 30]


def test_auto_k_for_the_gaussian_mixture_and_the_smallest_input():
    fitted, labels = fit_clusters(POINTS, ClusterConfig(algorithm="gmm", k="auto", k_min=2, k_max=8))
    assert len(np.unique(labels)) == 4 and adjusted_rand_score(TRUTH, labels) > 0.95
    with pytest.raises(InputError, match="3 usable rows are too few for kmeans \\(cluster.k_min=5\\)"):
        fit_clusters(POINTS[:3], ClusterConfig(algorithm="kmeans", k="auto"))


@pytest.mark.parametrize("algorithm", ["dbscan", "hdbscan"])
def test_reduce_outliers_gives_every_noise_row_its_nearest_cluster(algorithm):
    rng = np.random.default_rng(0)
    # Four blobs and 60 points scattered between them, which the density clusterers call noise.
    scattered = rng.uniform(POINTS.min(axis=0), POINTS.max(axis=0), size=(60, 2))
    points = np.vstack([POINTS, scattered])
    config = ClusterConfig(algorithm=algorithm, eps=0.5, min_samples=10, min_cluster_size=20)
    raw_fitted, raw = fit_clusters(points, dataclasses.replace(config, reduce_outliers=False))
    fitted, reduced = fit_clusters(points, config)
    assert (raw == NOISE).sum() >= 20
    assert fitted.fit_noise_share == pytest.approx((raw == NOISE).mean())
    # Each row keeps exactly one label: the clustered ones as they were, the noise rows the
    # cluster of the nearest centroid, and the counts add up.
    assert (reduced != NOISE).all()
    np.testing.assert_array_equal(reduced[raw != NOISE], raw[raw != NOISE])
    clusters = np.unique(raw[raw != NOISE])
    centroids = np.vstack([points[raw == c].mean(axis=0) for c in clusters])
    noise = np.flatnonzero(raw == NOISE)
    nearest = clusters[((points[noise, None, :] - centroids[None]) ** 2).sum(axis=2).argmin(axis=1)]
    np.testing.assert_array_equal(reduced[noise], nearest)
    assert sum((reduced == c).sum() for c in clusters) == len(points)
    # New points: a far point joins the nearest cluster instead of the noise.
    far = np.array([[100.0, 100.0]])
    assert raw_fitted.predict(far)[0] == NOISE
    assert fitted.predict(far)[0] == clusters[((far - centroids) ** 2).sum(axis=1).argmin()]


def test_hdbscan_smallest_cluster_scales_with_the_rows():
    config = ClusterConfig(algorithm="hdbscan")
    assert min_cluster_size(config, 500) == 10
    assert min_cluster_size(config, 50_000) == round(MIN_CLUSTER_SHARE * 50_000)
    assert min_cluster_size(dataclasses.replace(config, min_cluster_size=7), 50_000) == 7


def test_n_topics_merges_the_nearest_clusters_and_relabels_every_row():
    # Six blobs in two well-separated groups of three: merging to 2 topics must join each group.
    centers = np.array([[0, 0], [3, 0], [0, 3], [40, 40], [43, 40], [40, 43]], dtype=float)
    points, blob = make_blobs(n_samples=1200, centers=centers, cluster_std=0.3, random_state=2)
    base = ClusterConfig(algorithm="kmeans", k=6)
    fitted6, six = fit_clusters(points, base)
    fitted, two = fit_clusters(points, dataclasses.replace(base, n_topics=2))
    assert sorted(np.unique(two).tolist()) == [0, 1]
    group = (blob >= 3).astype(int)
    assert adjusted_rand_score(group, two) == 1.0
    # Every row keeps exactly one label, the one its cluster merged into; the counts add up.
    np.testing.assert_array_equal(two, fitted.topic_of[six])
    assert np.bincount(two).sum() == len(points)
    # Topics are numbered by their smallest cluster: the group holding cluster 0 is topic 0.
    assert two[six == 0][0] == 0
    # New points get the merged topic too.
    np.testing.assert_array_equal(fitted.predict(centers), [0, 0, 0, 1, 1, 1] if two[blob == 0][0] == 0 else [1, 1, 1, 0, 0, 0])
    # Asking for as many topics as there are clusters merges nothing.
    unmerged, same = fit_clusters(points, dataclasses.replace(base, n_topics=6))
    assert unmerged.topic_of is None and (same == six).all()


def test_topic_tree_is_a_consistent_binary_hierarchy():
    centers = np.array([[0, 0], [3, 0], [40, 40], [43, 40], [80, 0]], dtype=float)
    points, _ = make_blobs(n_samples=500, centers=centers, cluster_std=0.3, random_state=3)
    _, labels = fit_clusters(points, ClusterConfig(algorithm="kmeans", k=5))
    tree = topic_tree(points, labels)
    n = 5
    assert len(tree) == n - 1 and tree["node"].tolist() == list(range(n, 2 * n - 1))
    # Each node is used once as a child, the root holds every cluster, distances never fall.
    children = tree["left"].tolist() + tree["right"].tolist()
    assert sorted(children) == list(range(2 * n - 2))
    assert tree["clusters"].iloc[-1] == list(range(n))
    assert tree["distance"].is_monotonic_increasing
    # The two pairs of close blobs merge first.
    first_two = [sorted(c) for c in tree["clusters"].iloc[:2]]
    pairs = [sorted(np.unique(labels[np.linalg.norm(points - centers[i], axis=1) < 2]).tolist() + np.unique(labels[np.linalg.norm(points - centers[i + 1], axis=1) < 2]).tolist()) for i in (0, 2)]
    assert sorted(first_two) == sorted(pairs)


def test_confidence_falls_from_a_topics_centre_to_its_border():
    clusters, _ = fit_clusters(np.array([[0.0, 0.0], [0.2, 0.0], [10.0, 0.0], [10.2, 0.0], [5.0, 8.0], [5.2, 8.0]]),
                               ClusterConfig(algorithm="kmeans", k=3, seed=0))
    centres = clusters.topic_centroids[np.argsort(clusters.topic_ids)]
    a, b = clusters.predict(centres[:2])
    points = np.array([centres[0], (3 * centres[0] + centres[1]) / 4, (centres[0] + centres[1]) / 2])
    sure, second = clusters.confidence(points, np.array([a, a, a]))
    np.testing.assert_allclose(sure, [1.0, 2 / 3, 0.0], atol=1e-5)
    assert second.tolist() == [b, b, b]
    # A point with no topic (noise) has confidence 0 and its nearest topic as second.
    sure, second = clusters.confidence(centres[1:2], np.array([NOISE]))
    assert sure.tolist() == [0.0] and second.tolist() == [b]


def test_one_topic_is_sure_of_every_row_and_has_no_second():
    points, _ = make_blobs(200, centers=1, random_state=0)
    clusters, labels = fit_clusters(points, ClusterConfig(algorithm="kmeans", k=1, k_min=1))
    sure, second = clusters.confidence(points, labels)
    assert (sure == 1).all() and (second == NOISE).all()

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from n2d_spark.cluster import NOISE, fit_clusters
from n2d_spark.config import ClusterConfig
from n2d_spark.errors import InputError

POINTS, TRUTH, CENTERS = make_blobs(n_samples=600, centers=4, cluster_std=0.3, random_state=0, return_centers=True)
EVERY_ALGORITHM = [
    ClusterConfig(algorithm="dbscan", eps=0.8, min_samples=10),
    ClusterConfig(algorithm="kmeans", k=4),
    ClusterConfig(algorithm="gmm", k=4),
    ClusterConfig(algorithm="hdbscan", min_samples=20),
]


@pytest.mark.parametrize("config", EVERY_ALGORITHM, ids=lambda c: c.algorithm)
def test_each_algorithm_recovers_blobs(config):
    _, labels = fit_clusters(POINTS, config)
    assert labels.dtype == np.int32 and labels.shape == (600,)
    assert adjusted_rand_score(TRUTH, labels) > 0.95


def test_dbscan_marks_outliers_as_noise():
    points = np.vstack([POINTS, [[100.0, 100.0]]])
    _, labels = fit_clusters(points, ClusterConfig(algorithm="dbscan", eps=0.8, min_samples=10))
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
    fitted, labels = fit_clusters(core, ClusterConfig(algorithm="dbscan", eps=1.0, min_samples=3))
    predicted = fitted.predict(np.array([[0.9, 0.0], [9.5, 0.0], [5.0, 0.0], [1.1, 0.0]]))
    assert predicted.tolist() == [labels[0], labels[5], NOISE, NOISE]
    assert labels[0] != labels[5]

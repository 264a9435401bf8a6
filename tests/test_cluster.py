import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from n2d_spark.cluster import NOISE, fit_clusters
from n2d_spark.config import ClusterConfig
from n2d_spark.errors import InputError

POINTS, TRUTH = make_blobs(n_samples=600, centers=4, cluster_std=0.3, random_state=0)


@pytest.mark.parametrize(
    "config",
    [
        ClusterConfig(algorithm="dbscan", eps=0.8, min_samples=10),
        ClusterConfig(algorithm="kmeans", k=4),
        ClusterConfig(algorithm="gmm", k=4),
        ClusterConfig(algorithm="hdbscan", min_samples=20),
    ],
    ids=lambda c: c.algorithm,
)
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

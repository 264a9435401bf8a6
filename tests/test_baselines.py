"""Baselines and stability: the study's comparison and a second seed, on arrays."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from n2d_spark.core.config import load_config
from n2d_spark.evaluation.baselines import compare_baselines, stability
from n2d_spark.model.autoencoder import train_autoencoder
from n2d_spark.model.encoder import DenseScaler, EmbeddingModel

POINTS, CLASSES = make_blobs(n_samples=400, n_features=12, centers=3, cluster_std=0.5, random_state=0)
CONFIG = load_config(None, [
    "input.features_col=x", "autoencoder.hidden=[16]", "autoencoder.bottleneck=3", "autoencoder.epochs=20", "autoencoder.min_steps=0",
    "autoencoder.batch_size=32", "manifold.n_components=2", "manifold.n_neighbors=10",
    "cluster.algorithm=kmeans", "cluster.k=3",
])


def test_baselines_score_each_way_of_clustering_the_same_rows():
    n2d_labels = np.where(CLASSES == 2, -1, CLASSES)  # a labelling with a noise cluster
    result = compare_baselines(POINTS, POINTS[:, :3], n2d_labels, CLASSES.astype(str), CONFIG)
    assert list(result.scores) == ["kmeans_raw", "kmeans_embedding", "n2d"]
    assert result.scores["kmeans_raw"]["n_clusters"] == 3 and result.scores["kmeans_raw"]["nmi"] == pytest.approx(1.0)
    assert result.scores["n2d"] == {
        "n_clusters": 2, "noise_share": pytest.approx(np.mean(CLASSES == 2)), "accuracy": 1.0, "ari": 1.0, "nmi": 1.0
    }
    assert result.raw_labels.shape == (400,)
    without_classes = compare_baselines(POINTS, POINTS[:, :3], n2d_labels, None, CONFIG)
    assert set(without_classes.scores["n2d"]) == {"n_clusters", "noise_share"}


def test_stability_refits_with_the_next_seeds():
    scaler = DenseScaler.fit(POINTS, "minmax")
    trained = train_autoencoder(scaler.transform(POINTS), CONFIG.autoencoder)
    model = EmbeddingModel(scaler=scaler, encoder=trained.encoder)
    labels = np.asarray(CLASSES, dtype=np.int32)
    result = stability(POINTS, POINTS, labels, model, CONFIG)
    assert result["seeds"] == [0, 1]
    # Three well-separated blobs: any seed finds them.
    assert result["ari"] > 0.95

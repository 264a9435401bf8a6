import pickle

import numpy as np
import pytest

from n2d_spark.core.config import ManifoldConfig
from n2d_spark.model.manifold import ExactNeighbors, fit_manifold, import_umap_without_tensorflow, seeded_umap


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=8.0, size=(3, 6))
    return np.vstack([c + rng.normal(size=(300, 6)) for c in centres]).astype(np.float32)


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "manhattan"])
def test_exact_neighbors_are_the_true_nearest(blobs, metric):
    from scipy.spatial.distance import cdist

    index = ExactNeighbors(blobs, metric)
    indices, distances = index.query(blobs[:50], 10)
    assert indices.dtype == np.int32 and distances.dtype == np.float32
    truth = cdist(blobs[:50], blobs, metric="cityblock" if metric == "manhattan" else metric)
    np.testing.assert_allclose(distances, np.sort(truth, axis=1)[:, :10], rtol=1e-4, atol=1e-4)
    # Each fit row is its own first neighbour, as in UMAP's graph.
    np.testing.assert_array_equal(indices[:, 0], np.arange(50))


def test_umap_uses_the_exact_index_and_transforms_through_it(blobs):
    reducer, coordinates = fit_manifold(blobs, ManifoldConfig(n_components=2, n_neighbors=15))
    assert isinstance(reducer._knn_search_index, ExactNeighbors)
    assert coordinates.shape == (len(blobs), 2) and coordinates.dtype == np.float32
    # New points near a blob land among that blob's fitted coordinates, also after a pickle round trip.
    moved = pickle.loads(pickle.dumps(reducer)).transform(blobs[:20] + 0.01)
    blob_centre = coordinates[:300].mean(axis=0)
    other_centres = [coordinates[300:600].mean(axis=0), coordinates[600:].mean(axis=0)]
    for point in moved:
        assert np.linalg.norm(point - blob_centre) < min(np.linalg.norm(point - c) for c in other_centres)


def test_same_seed_same_coordinates(blobs):
    _, first = seeded_umap(blobs, 2, 15, 0.1, "euclidean", seed=3)
    _, second = seeded_umap(blobs, 2, 15, 0.1, "euclidean", seed=3)
    np.testing.assert_array_equal(first, second)


def test_other_metrics_are_left_to_umap(blobs):
    import_umap_without_tensorflow()
    positive = np.abs(blobs)
    reducer, coordinates = seeded_umap(positive, 2, 15, 0.1, "hellinger", seed=0)
    assert not isinstance(getattr(reducer, "_knn_search_index", None), ExactNeighbors)
    assert coordinates.shape == (len(blobs), 2)

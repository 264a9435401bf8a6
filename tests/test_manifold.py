import pickle

import numpy as np
import pytest

from n2d_spark.core.config import ManifoldConfig
from n2d_spark.model.manifold import (
    ExactNeighbors,
    fit_manifold,
    graph_transform_init,
    import_umap_without_tensorflow,
    seeded_umap,
    transform,
)


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


def test_starting_positions_are_umaps_own_bit_for_bit(blobs):
    """graph_transform_init against umap-learn's loop, on a graph whose rows hold 3 or 11 fit rows out of
    column order (numpy sums 8 or more pairwise), a row at a fit row (weight 1) and a row with none."""
    import scipy.sparse
    import umap.umap_

    rng = np.random.default_rng(1)
    rows = [3] * 40 + [11] * 40 + [0]
    data = [rng.uniform(0.01, 0.99, n).astype(np.float32) for n in rows]
    data[5][1] = 1.0
    indices = [rng.choice(len(blobs), n, replace=False) for n in rows]
    graph = scipy.sparse.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), np.concatenate([[0], np.cumsum(rows)])), shape=(len(rows), len(blobs))
    )
    embedding = rng.normal(size=(len(blobs), 2)).astype(np.float32)
    ours = graph_transform_init(graph, embedding)
    np.testing.assert_array_equal(ours, umap.umap_.init_graph_transform(graph, embedding))
    np.testing.assert_array_equal(ours[5], embedding[indices[5][1]])
    assert np.isnan(ours[-1]).all() and not np.isnan(ours[:-1]).any()


def test_transform_gives_umaps_coordinates_and_leaves_umap_as_it_was(blobs):
    import umap.umap_

    looped = umap.umap_.init_graph_transform
    reducer, _ = fit_manifold(blobs[::2], ManifoldConfig(n_components=2, n_neighbors=15))
    ours = transform(reducer, blobs[1::2])
    assert ours.dtype == np.float32 and umap.umap_.init_graph_transform is looped
    np.testing.assert_array_equal(ours, reducer.transform(blobs[1::2]))

"""The assign stage: rows outside the fit sample placed and labelled on the executors."""

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import types as T
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from n2d_spark.core.columns import EMBEDDING_COL
from n2d_spark.core.config import ClusterConfig, ManifoldConfig
from n2d_spark.model.assigner import Assignment, ClusterAssigner
from n2d_spark.model.cluster import fit_clusters
from n2d_spark.model.manifold import fit_manifold
from n2d_spark.model.placement import fit_placement
from n2d_spark.rows.assign import assign, fitted_assignments
from n2d_spark.rows.sampling import collect_sample

N_ROWS = 3000


@pytest.fixture(scope="module")
def embeddings(spark):
    points, truth = make_blobs(n_samples=N_ROWS, n_features=10, centers=4, cluster_std=1.0, random_state=3)
    frame = pd.DataFrame({"id": np.arange(N_ROWS, dtype=np.int64), EMBEDDING_COL: list(points.astype(np.float32))})
    schema = T.StructType(
        [T.StructField("id", T.LongType(), False), T.StructField(EMBEDDING_COL, T.ArrayType(T.FloatType()), False)]
    )
    return spark.createDataFrame(frame, schema), truth


@pytest.fixture(scope="module")
def fitted_transform(embeddings):
    """A model that places rows with UMAP's transform (manifold.placement: transform)."""
    rows, _ = embeddings
    ids, sample = collect_sample(rows, EMBEDDING_COL, 1000, seed=0)
    reducer, coordinates = fit_manifold(sample, ManifoldConfig(n_neighbors=15))
    clusters, labels = fit_clusters(coordinates, ClusterConfig(algorithm="kmeans", k=4))
    return ids, coordinates, labels, ClusterAssigner(reducer=reducer, clusters=clusters), sample


@pytest.fixture(scope="module", params=["learned", "transform"])
def fitted(request, fitted_transform):
    ids, coordinates, labels, assigner, sample = fitted_transform
    if request.param == "learned":
        assigner = ClusterAssigner(reducer=assigner.reducer, clusters=assigner.clusters, placement=fit_placement(sample, coordinates, seed=0))
    return ids, coordinates, labels, assigner


def _assign_outside(rows, fitted, batch_rows):
    ids, _, _, assigner = fitted
    outside = rows.filter(~rows["id"].isin([int(i) for i in ids]))
    return assign(outside, assigner, N_ROWS - len(ids), batch_rows, seed=0).toPandas().sort_values("id")


def test_every_row_outside_the_sample_gets_its_blob(embeddings, fitted):
    rows, truth = embeddings
    ids, _, _, _ = fitted
    assigned = _assign_outside(rows, fitted, batch_rows=700)
    assert len(assigned) == N_ROWS - len(ids)
    assert assigned["id"].is_unique and not assigned["id"].isin(ids).any()
    assert adjusted_rand_score(truth[assigned["id"].to_numpy()], assigned["cluster"]) > 0.95
    assert {len(u) for u in assigned["umap"]} == {5}


def test_assignment_does_not_depend_on_the_partitioning(embeddings, fitted):
    rows, _ = embeddings
    one = _assign_outside(rows.repartition(1), fitted, batch_rows=700).reset_index(drop=True)
    five = _assign_outside(rows.repartition(5, "id"), fitted, batch_rows=700).reset_index(drop=True)
    pd.testing.assert_frame_equal(one, five)


def test_fit_sample_keeps_the_labels_of_the_fit(spark, embeddings, fitted):
    ids, coordinates, labels, assigner = fitted
    confidence, second = assigner.clusters.confidence(coordinates, labels)
    frame = fitted_assignments(spark, ids, Assignment(coordinates, labels, confidence, second), T.LongType()).toPandas()
    assert frame["id"].tolist() == ids.tolist() and frame["cluster"].tolist() == labels.tolist()
    assert frame["confidence"].tolist() == confidence.tolist() and frame["second_cluster"].tolist() == second.tolist()
    # Transforming the fit rows again gives nearly, not exactly, the fit's labels: the job keeps the fit's own.
    relabelled = assigner.assign(np.vstack(collect_sample(embeddings[0], EMBEDDING_COL, 1000, seed=0)[1])).labels
    assert adjusted_rand_score(labels, relabelled) > 0.95


def test_a_learned_placement_places_a_row_alike_in_any_batch(embeddings, fitted_transform):
    """The learned placement maps each row on its own: alone, or among 2,000 others, its coordinates
    are the same to the bit; so its label, confidence and second topic are too."""
    ids, coordinates, _, assigner, sample = fitted_transform
    learned = ClusterAssigner(reducer=assigner.reducer, clusters=assigner.clusters, placement=fit_placement(sample, coordinates, seed=0))
    points = np.vstack(embeddings[0].toPandas()[EMBEDDING_COL].to_numpy()).astype(np.float32)
    together = learned.assign(points)
    assert not learned.places_by_batch and assigner.places_by_batch
    for row in (0, 17, 1999):
        alone = learned.assign(points[row : row + 1])
        for field in ("coordinates", "labels", "confidence", "second"):
            np.testing.assert_array_equal(getattr(alone, field)[0], getattr(together, field)[row])


def test_the_learned_placement_puts_the_fit_rows_where_umap_did(fitted_transform):
    """Trained on the fit rows' coordinates, the map labels them as the fit did (4 well separated blobs)."""
    _, coordinates, labels, assigner, sample = fitted_transform
    placement = fit_placement(sample, coordinates, seed=0)
    placed = placement(sample)
    assert placed.shape == coordinates.shape and placed.dtype == np.float32
    assert (assigner.clusters.predict(placed) == labels).mean() > 0.99


def test_executors_do_not_import_tensorflow(embeddings, fitted):
    rows, _ = embeddings

    def modules(batches):
        import sys

        from n2d_spark.model.manifold import import_umap_without_tensorflow

        import_umap_without_tensorflow()
        for batch in batches:
            yield pd.DataFrame({"umap": ["umap" in sys.modules] * len(batch), "tf": ["tensorflow" in sys.modules] * len(batch)})

    seen = rows.limit(10).mapInPandas(modules, "umap boolean, tf boolean").distinct().collect()
    assert [(r["umap"], r["tf"]) for r in seen] == [(True, False)]

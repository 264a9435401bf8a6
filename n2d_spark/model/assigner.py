"""``ClusterAssigner``: the fitted UMAP and clusterer that place and label new embeddings, on the
driver and on the executors (rows/assign.py broadcasts it), and the ``Assignment`` it returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from n2d_spark.model.cluster import FittedClusters
from n2d_spark.model.manifold import transform


@dataclass
class ClusterAssigner:
    """The fitted UMAP and clusterer: embeddings in, manifold coordinates and cluster labels out."""

    reducer: object
    clusters: FittedClusters

    def assign(self, embeddings: np.ndarray) -> Assignment:
        coordinates = transform(self.reducer, embeddings)
        labels = self.clusters.predict(coordinates)
        return Assignment(coordinates, labels, *self.clusters.confidence(coordinates, labels))


@dataclass
class Assignment:
    """Rows placed and labelled: manifold coordinates, topic, confidence (``FittedClusters.confidence``) and second topic."""

    coordinates: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    second: np.ndarray

    @classmethod
    def of_no_rows(cls) -> Assignment:
        return cls(np.zeros((0, 0), np.float32), np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, np.int32))

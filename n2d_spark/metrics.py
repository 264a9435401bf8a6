"""Agreement of cluster labels with known classes, and the shape of a labelling.

Noise (-1) counts as one more cluster in every agreement score; its share is reported
beside them, so that a run that calls half its rows noise cannot look better than it is.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from n2d_spark.cluster import NOISE


def label_shape(labels: np.ndarray) -> dict:
    """Number of clusters (noise excluded), noise share and cluster sizes, largest first."""
    clusters, sizes = np.unique(labels[labels != NOISE], return_counts=True)
    return {
        "n_clusters": int(len(clusters)),
        "noise_share": float(np.mean(labels == NOISE)) if len(labels) else 0.0,
        "sizes": {int(c): int(s) for c, s in sorted(zip(clusters, sizes), key=lambda cs: -cs[1])},
    }


def clustering_accuracy(classes: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose cluster maps to their class under the best one-to-one matching.

    The matching is the Hungarian assignment on the contingency table; clusters left
    without a class (more clusters than classes) count as wrong for all their rows.
    """
    table = contingency_matrix(classes, labels)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def agreement(labels: np.ndarray, classes: np.ndarray) -> dict:
    """Accuracy (best matching), ARI and NMI (arithmetic mean) against known classes, and the noise share."""
    return {
        "accuracy": clustering_accuracy(classes, labels),
        "ari": float(adjusted_rand_score(classes, labels)),
        "nmi": float(normalized_mutual_info_score(classes, labels)),
        "noise_share": float(np.mean(labels == NOISE)) if len(labels) else 0.0,
    }

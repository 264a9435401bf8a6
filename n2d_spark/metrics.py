"""Agreement of cluster labels with known classes, and the shape of a labelling."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from n2d_spark.cluster import NOISE


def label_shape(labels: np.ndarray) -> dict:
    """Number of clusters (noise excluded), noise share and cluster sizes, largest first."""
    clusters, sizes = np.unique(labels[labels != NOISE], return_counts=True)
    return {
        "n_clusters": int(len(clusters)),
        "noise_share": float(np.mean(labels == NOISE)) if len(labels) else 0.0,
        "sizes": {int(c): int(s) for c, s in sorted(zip(clusters, sizes), key=lambda cs: -cs[1])},
    }


def agreement(labels: np.ndarray, classes: np.ndarray) -> dict:
    """ARI and NMI against known classes; noise counts as one more cluster."""
    return {
        "ari": float(adjusted_rand_score(classes, labels)),
        "nmi": float(normalized_mutual_info_score(classes, labels)),
    }

"""Agreement of cluster labels with known classes, and the shape of a labelling.

Noise (-1) counts as one more cluster in every agreement score; its share is reported
beside them, so that a run that calls half its rows noise cannot look better than it is.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.metrics.cluster import contingency_matrix

from n2d_spark.cluster import NOISE


def noise_share(labels: np.ndarray) -> float:
    return float(np.mean(labels == NOISE)) if len(labels) else 0.0


def label_shape(labels: np.ndarray) -> dict:
    """Number of clusters (noise excluded), noise share and cluster sizes, largest first."""
    clusters, sizes = np.unique(labels[labels != NOISE], return_counts=True)
    return {
        "n_clusters": int(len(clusters)),
        "noise_share": noise_share(labels),
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
        "noise_share": noise_share(labels),
    }


def silhouette_on_sample(points: np.ndarray, labels: np.ndarray, sample_rows: int, seed: int) -> float | None:
    """Silhouette of the clustered (non-noise) rows on a seeded sample; None with fewer than 2 clusters."""
    clustered = labels != NOISE
    if len(np.unique(labels[clustered])) < 2:
        return None
    sample = min(sample_rows, int(clustered.sum()))
    return float(silhouette_score(points[clustered], labels[clustered], sample_size=sample, random_state=seed))


def npmi_coherence(documents: sp.csr_matrix, term_ids: list[int]) -> float | None:
    """Mean normalized PMI over the pairs of ``term_ids``, from document co-occurrence in ``documents``.

    NPMI(a, b) = log(p(a, b) / (p(a) p(b))) / -log p(a, b), with p the share of documents
    holding the term(s); a pair that never co-occurs scores -1. None with fewer than 2 terms.
    """
    if len(term_ids) < 2 or documents.shape[0] == 0:
        return None
    present = (documents[:, term_ids] > 0).astype(np.float64)
    n_documents = documents.shape[0]
    together = (present.T @ present).toarray() / n_documents
    alone = np.diag(together)
    scores = []
    for a in range(len(term_ids)):
        for b in range(a + 1, len(term_ids)):
            joint = together[a, b]
            if joint == 0:
                scores.append(-1.0)
            elif joint == 1:
                scores.append(1.0)
            else:
                scores.append(np.log(joint / (alone[a] * alone[b])) / -np.log(joint))
    return float(np.mean(scores))

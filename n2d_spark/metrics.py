"""Agreement of cluster labels with known classes, and the shape of a labelling.

Noise (-1) counts as one more cluster in every agreement score; its share is reported
beside them, so that a run that calls half its rows noise cannot look better than it is.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import silhouette_score
from sklearn.metrics.cluster import contingency_matrix

from n2d_spark.cluster import NOISE


def noise_share(labels: np.ndarray) -> float:
    return float(np.mean(labels == NOISE)) if len(labels) else 0.0


def label_shape(labels: np.ndarray) -> dict:
    """Number of clusters (noise excluded), noise share and cluster sizes, largest first."""
    clusters, sizes = np.unique(labels, return_counts=True)
    return sizes_shape(dict(zip(clusters.tolist(), sizes.tolist())))


def sizes_shape(sizes: dict[int, int]) -> dict:
    """``label_shape`` from the size of each label (noise included as -1)."""
    total = sum(sizes.values())
    clustered = {int(c): int(s) for c, s in sizes.items() if c != NOISE}
    return {
        "n_clusters": len(clustered),
        "noise_share": sizes.get(NOISE, 0) / total if total else 0.0,
        "sizes": dict(sorted(clustered.items(), key=lambda cs: -cs[1])),
    }


def agreement(labels: np.ndarray, classes: np.ndarray) -> dict:
    """Accuracy (best matching), ARI and NMI (arithmetic mean) against known classes, and the noise share."""
    return table_agreement(contingency_matrix(classes, labels), noise_share(labels))


def table_agreement(table: np.ndarray, noise: float) -> dict:
    """``agreement`` from a contingency table (classes by clusters, noise a column of its own).

    The job counts the table with Spark, so that scoring millions of rows needs no labels on
    the driver; the formulas are scikit-learn's, limit cases included.
    """
    table = np.asarray(table, dtype=np.int64)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return {
        "accuracy": float(table[rows, cols].sum() / table.sum()),
        "ari": _adjusted_rand(table),
        "nmi": _normalized_mutual_info(table),
        "noise_share": noise,
    }


def _adjusted_rand(table: np.ndarray) -> float:
    # The pair confusion matrix, in Python ints: its products overflow int64 past ~100,000 rows.
    n = int(table.sum())
    sum_squares = int((table.astype(object) ** 2).sum())
    by_class, by_cluster = table.sum(axis=1).astype(object), table.sum(axis=0).astype(object)
    together_in_class_only = int((by_class**2).sum()) - sum_squares
    together_in_cluster_only = int((by_cluster**2).sum()) - sum_squares
    together_in_both = sum_squares - n
    apart_in_both = n * n - together_in_class_only - together_in_cluster_only - sum_squares
    if together_in_class_only == 0 and together_in_cluster_only == 0:
        return 1.0
    numerator = 2 * (together_in_both * apart_in_both - together_in_class_only * together_in_cluster_only)
    denominator = (together_in_both + together_in_class_only) * (together_in_class_only + apart_in_both) + (
        together_in_both + together_in_cluster_only
    ) * (together_in_cluster_only + apart_in_both)
    return float(numerator / denominator)


def _normalized_mutual_info(table: np.ndarray) -> float:
    by_class, by_cluster = table.sum(axis=1), table.sum(axis=0)
    n_classes, n_clusters = int((by_class > 0).sum()), int((by_cluster > 0).sum())
    # Neither labelling splits the data: a perfect match.
    if n_classes == n_clusters and n_classes <= 1:
        return 1.0
    n = table.sum()
    joint = table[table > 0] / n
    outer = np.outer(by_class, by_cluster)[table > 0] / (n * n)
    mutual_info = float(np.sum(joint * np.log(joint / outer)))
    if mutual_info <= 0:
        return 0.0
    entropy_class, entropy_cluster = (-np.sum(p * np.log(p)) for p in (by_class[by_class > 0] / n, by_cluster[by_cluster > 0] / n))
    return float(mutual_info / ((entropy_class + entropy_cluster) / 2))


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

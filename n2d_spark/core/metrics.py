"""Label metrics on arrays: agreement with known classes, a labelling's shape, silhouette, and topic
coherence (NPMI) and diversity.

Noise (-1) counts as one more cluster in every agreement score; its share is reported
beside them, so that a run that calls half its rows noise cannot look better than it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import silhouette_score
from sklearn.metrics.cluster import contingency_matrix

from n2d_spark.core.columns import NOISE


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


# Topic coherence as gensim's ``c_npmi`` computes it, the measure OCTIS and the BERTopic paper
# report, so that the numbers compare: each document's token sequence is cut into sliding
# windows of 10 tokens (a shorter document is one window), p(w) is the share of windows holding w, and a pair's NPMI is
# log((p(a, b) + eps) / (p(a) p(b))) / -log(p(a, b) + eps). A topic's coherence is the mean
# over its term pairs; a run's, the mean over its topics (noise left out).
NPMI_WINDOW = 10
_NPMI_EPSILON = 1e-12


@dataclass
class WindowCounts:
    """Sliding-window counts of a fixed list of terms over ``n_documents`` documents: ``together[i, j]``
    windows hold both terms i and j (the diagonal: windows holding term i), out of ``n_windows``.
    Counts of two sets of documents add up, so partitions can count apart."""

    terms: list[str]
    together: np.ndarray
    n_windows: int
    n_documents: int

    @classmethod
    def empty(cls, terms: list[str]) -> WindowCounts:
        return cls(list(terms), np.zeros((len(terms), len(terms)), dtype=np.int64), 0, 0)

    def __add__(self, other: WindowCounts) -> WindowCounts:
        if other.terms != self.terms:
            raise ValueError("window counts over different terms cannot be added")
        return WindowCounts(
            self.terms, self.together + other.together, self.n_windows + other.n_windows, self.n_documents + other.n_documents
        )


def count_windows(documents: Iterable[list[str]], terms: list[str], window: int = NPMI_WINDOW) -> WindowCounts:
    """Count ``terms`` in gensim's boolean sliding windows of ``window`` tokens over ``documents``."""
    lengths, tokens = [], []
    for document in documents:
        lengths.append(len(document))
        tokens.extend(document)
    ids = pd.Index(terms).get_indexer(pd.Index(tokens, dtype=object))
    return count_term_ids(ids, np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]), terms, window)


def count_term_ids(ids: np.ndarray, offsets: np.ndarray, terms: list[str], window: int = NPMI_WINDOW) -> WindowCounts:
    """``count_windows`` over documents given as term indices (-1: a token that is no term), document
    d being ``ids[offsets[d]:offsets[d + 1]]``: what the executors count, with no string in Python."""
    together = np.zeros((len(terms), len(terms)), dtype=np.int64)
    n_windows = _count_windows(np.asarray(ids, dtype=np.int64), np.asarray(offsets, dtype=np.int64), window, together)
    return WindowCounts(list(terms), together, int(n_windows), len(offsets) - 1)


@numba.njit(cache=True, nogil=True)
def _count_windows(ids: np.ndarray, offsets: np.ndarray, window: int, together: np.ndarray) -> int:
    """Add each window's co-occurring terms to ``together``; the number of windows.

    Replays gensim's sliding window: each document starts with its first window's terms; at each
    step the token that left the window is marked absent and the one that entered present (an
    entry after a departure wins), so a term repeated within a window counts as absent from the
    step its first occurrence leaves until it enters again. Every document's windows count, an
    empty one as one window. A present term sits in the window, so each window's terms are found
    among its own tokens.
    """
    n_terms = together.shape[0]
    present = np.zeros(n_terms, dtype=np.bool_)
    seen_at = np.full(n_terms, -1, dtype=np.int64)
    found = np.empty(window, dtype=np.int64)
    n_windows = 0
    for document in range(len(offsets) - 1):
        start, end = offsets[document], offsets[document + 1]
        starts = max(1, end - start - window + 1)
        for position in range(start, min(end, start + window)):
            if ids[position] >= 0:
                present[ids[position]] = True
        for step in range(starts):
            if step > 0:
                if ids[start + step - 1] >= 0:
                    present[ids[start + step - 1]] = False
                if ids[start + step + window - 1] >= 0:
                    present[ids[start + step + window - 1]] = True
            n_found = 0
            for position in range(start + step, min(end, start + step + window)):
                term = ids[position]
                if term >= 0 and present[term] and seen_at[term] != n_windows:
                    seen_at[term] = n_windows
                    found[n_found] = term
                    n_found += 1
            for i in range(n_found):
                for j in range(n_found):
                    together[found[i], found[j]] += 1
            n_windows += 1
        for position in range(start, end):
            if ids[position] >= 0:
                present[ids[position]] = False
    return n_windows


def topic_terms(topics: list[list[str]]) -> list[str]:
    """Every term of the topics once, sorted: the terms ``count_windows`` needs for ``npmi_from_counts``."""
    return sorted({term for terms in topics for term in terms})


def npmi_from_counts(counts: WindowCounts, topics: list[list[str]]) -> list[float | None]:
    """Each topic's mean NPMI over its term pairs, from window counts; None for a topic of < 2 terms."""
    index = {term: i for i, term in enumerate(counts.terms)}
    together, n_windows = counts.together, counts.n_windows
    scores = []
    for terms in topics:
        ids = [index[t] for t in terms]
        if len(ids) < 2 or n_windows == 0:
            scores.append(None)
            continue
        pair_scores = []
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                joint = together[a, b] / n_windows + _NPMI_EPSILON
                # A term in no window leaves the pair undefined (gensim divides by zero): it scores 0.
                alone = (together[a, a] / n_windows) * (together[b, b] / n_windows) or joint
                pair_scores.append(float(np.log(joint / alone) / -np.log(joint)))
        scores.append(float(np.mean(pair_scores)))
    return scores


def npmi_coherence(documents: list[list[str]], topics: list[list[str]], window: int = NPMI_WINDOW) -> list[float | None]:
    """Sliding-window NPMI of each topic's terms over ``documents`` (token lists); None for a topic of < 2 terms.

    Equal to gensim's CoherenceModel(coherence="c_npmi") over the same topics (a test checks it).
    """
    return npmi_from_counts(count_windows(documents, topic_terms(topics), window), topics)


def topic_diversity(topics: list[list[str]], n_terms: int = 10) -> float | None:
    """Unique terms among every topic's top ``n_terms``, over ``n_terms`` x topics (1: no term shared)."""
    tops = [terms[:n_terms] for terms in topics if terms]
    if not tops:
        return None
    return len({term for terms in tops for term in terms}) / (n_terms * len(tops))

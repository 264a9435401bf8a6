"""Which rows of new data a model does not describe: a density contrast, calibrated on the training rows.

A row of new data is *new* when it lies farther from the rows the model knows than the new
data's own density predicts. For each row x, with d_k(x, S) its distance to its k-th nearest
row of S (itself left out):

    ratio(x) = d_k(x, known rows) / d_k(x, a sample of the new rows of the same size)

A row of a topic the model knows has about as many known rows as new rows around it; a row of a
subject the training data lacked has new rows near it and known rows only far away. Ratios are
divided by their median over the new sample, which removes what every new row shares (a new
half of the same source reads a little further from the known rows than they do from each
other). The median assumes that fewer than half of the new rows are new.

Where the distance is measured (``space``):

- **embedding**: the distance of ``manifold.metric`` between embeddings. The autoencoder pulls
  rows it never saw toward the middle (on 2,771 AG News rows, their embeddings' norms were 73
  against 97 for rows it trained on), so a subject the training data lacked can sit among
  known rows there.
- **terms** (text mode, bundles of format 5): cosine distance between rows' term counts weighted
  by the training sample's IDF, with one more column: the row's words outside the vocabulary,
  each weighing 1 (``UNKNOWN_WORD_WEIGHT``). A new subject brings words the frozen vocabulary
  lacks; without that column a row made of them looks like a short row of any topic. But rows
  of the same source differ in their terms for reasons no topic explains (on IMDB, each film's
  names): alone, this space called 10.7% of IMDB's second half new.

The threshold of each space comes from the training run: a sample of its rows (the manifold's fit
rows in the embedding space, at most ``MAX_HALF_ROWS`` a half of the autoencoder's in the terms
space) is cut in two seeded halves, and the normalised ratio of the second half's rows against the
first half (the known rows) and against their own half is the ratio of rows of known topics. Its
quantiles are stored in the bundle; ``update.novelty_quantile`` picks one. A row's novelty in a
space is its normalised ratio over that threshold; its ``novelty`` is the geometric mean over the
model's spaces (``NoveltySignals``): above 1, the row is new. The two spaces err on different
rows (on IMDB their log-novelties correlate at 0.05), so together they call fewer known rows new
than either alone, and a new subject that stands out in either moves the mean (BENCHMARKS.md,
"Keeping a model current"). In the terms space the known half is stored too; in the embedding
space it is cut again from the bundle's fit rows.

Plain distances, the distance to a topic's centroid in UMAP space, the confidence and the
autoencoder's reconstruction error separated new rows less well (scripts/studies/novelty_study.py;
BENCHMARKS.md, "Keeping a model current").
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

# k of the k-th nearest row: on AG News and the synthetic corpus 15 separated as well as 50, and
# its threshold held closer to its quantile (BENCHMARKS.md).
NOVELTY_NEIGHBOURS = 15
# The quantiles stored: 0, 0.001, ..., 1.
_QUANTILE_GRID = np.linspace(0.0, 1.0, 1001)
# Rows in each half of the terms space, at most. An update compares every row with twice this many rows,
# and the known half is kept in the bundle: on IMDB, 12,500 rows a half took 11 s to calibrate and
# 566 µs a row to score (one thread); the 0.92 and 0.98 quantiles of 5,000 ratios are sharp enough.
MAX_HALF_ROWS = 5_000
TERMS, EMBEDDING = "terms", "embedding"
# A word outside the vocabulary weighs as much as a term of IDF 1 (one in e - 1 rows). Chosen on
# AG News, the synthetic corpus and IMDB (BENCHMARKS.md): at 0.5 AG News's withheld class was
# flagged less (0.54 against 0.62 at the 0.98 quantile), at 2 AG News's other rows were flagged
# more (0.24 against 0.09).
UNKNOWN_WORD_WEIGHT = 1.0


@dataclass(frozen=True)
class NoveltyCalibration:
    """The normalised ratio of rows of known topics (module docstring), from the training run's fit rows."""

    neighbours: int
    # Rows in each half: the known rows and the new sample of an update are this many too.
    sample_rows: int
    seed: int
    metric: str
    # The normalised ratio's quantiles at _QUANTILE_GRID.
    quantiles: np.ndarray
    space: str = EMBEDDING
    # The terms space's: each term's weight, and the known rows (term_points of the first half).
    idf: np.ndarray | None = None
    known: sp.csr_matrix | None = None
    # How many of the terms space's known rows are the training run's: updates append their new topics' rows
    # after them. None in bundles saved before it was counted.
    training_known_rows: int | None = None

    def threshold(self, quantile: float) -> float:
        return float(np.interp(quantile, _QUANTILE_GRID, self.quantiles))

    def known_rows(self, fit_embeddings: np.ndarray, n_rows: int) -> sp.csr_matrix | np.ndarray:
        """``n_rows`` known rows for an update's rows to be compared with, drawn with the seed: from the stored known
        rows in the terms space; else from the first half of ``fit_embeddings`` (the fit rows and the rows of topics
        updates added, ``ClusterAssigner.known_rows``)."""
        if self.space == TERMS:
            return self.known[np.random.default_rng(self.seed).permutation(self.known.shape[0])[:n_rows]]
        return split_halves(fit_embeddings, self.seed)[0][:n_rows]

    def with_known(self, rows: sp.csr_matrix | None, share: float, topics: np.ndarray | None = None) -> NoveltyCalibration:
        """This calibration with a seeded ``share`` of ``rows`` known too: the rows of the topics an update added,
        in the terms space (the embedding space finds them in the model's added topics). Where each row's topic
        is given, that share of each topic's rows and at least one, so that a small topic keeps rows to vote for it."""
        if self.space != TERMS or rows is None or rows.shape[0] == 0:
            return self
        rng = np.random.default_rng(self.seed)
        topics = np.zeros(rows.shape[0], np.int32) if topics is None else np.asarray(topics)
        picked = []
        for topic in np.unique(topics):
            members = np.flatnonzero(topics == topic)
            picked.append(rng.permutation(members)[: max(1, int(round(len(members) * share)))])
        picked = np.sort(np.concatenate(picked))
        return replace(self, known=sp.vstack([self.known, rows[picked]], format="csr", dtype=np.float32))

    def added_neighbour_share(self, points: sp.csr_matrix, neighbours: int) -> np.ndarray:
        """In the terms space: for each of ``points``, the share of rows of topics updates added among its
        ``neighbours`` nearest known rows."""
        from sklearn.neighbors import NearestNeighbors

        k = min(neighbours, self.known.shape[0])
        _, nearest = NearestNeighbors(algorithm="brute", metric=self.metric).fit(self.known).kneighbors(points, n_neighbors=k)
        return (nearest >= self.training_known_rows).mean(axis=1)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {"quantiles": self.quantiles}
        if self.space == TERMS:
            arrays.update(idf=self.idf, known_data=self.known.data, known_indices=self.known.indices, known_indptr=self.known.indptr)
        scalars = {"neighbours": self.neighbours, "sample_rows": self.sample_rows, "seed": self.seed, "metric": self.metric, "space": self.space}
        if self.space == TERMS:
            scalars["training_known_rows"] = self.training_known_rows
        return arrays, scalars

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], scalars: dict) -> NoveltyCalibration:
        quantiles = np.asarray(arrays["quantiles"], np.float64)
        if quantiles.shape != _QUANTILE_GRID.shape or not np.all(np.isfinite(quantiles)) or np.any(np.diff(quantiles) < 0):
            raise ValueError(f"novelty quantiles: expected {len(_QUANTILE_GRID)} finite ascending values, got shape {quantiles.shape}")
        # Format 4 measured in the embedding space only, and did not say so.
        space = str(scalars.get("space", EMBEDDING))
        if space not in (TERMS, EMBEDDING):
            raise ValueError(f"novelty space: expected {TERMS!r} or {EMBEDDING!r}, got {space!r}")
        idf = known = training_known_rows = None
        if space == TERMS:
            idf = np.asarray(arrays["idf"], np.float32)
            indptr = np.asarray(arrays["known_indptr"])
            known = sp.csr_matrix(
                (np.asarray(arrays["known_data"], np.float32), np.asarray(arrays["known_indices"]), indptr),
                shape=(len(indptr) - 1, len(idf) + 1),
            )
            # None in a bundle saved before updates counted them: its added rows, if any, cannot be told.
            if scalars.get("training_known_rows") is not None:
                training_known_rows = int(scalars["training_known_rows"])
                if not 0 < training_known_rows <= known.shape[0]:
                    raise ValueError(f"novelty training_known_rows: expected 1 to {known.shape[0]}, got {training_known_rows}")
        return cls(
            neighbours=int(scalars["neighbours"]), sample_rows=int(scalars["sample_rows"]), seed=int(scalars["seed"]),
            metric=str(scalars["metric"]), quantiles=quantiles, space=space, idf=idf, known=known,
            training_known_rows=training_known_rows,
        )


@dataclass(frozen=True)
class NoveltySignals:
    """What tells a model's new rows: the calibration in the embedding space, and a text model's in its terms
    (module docstring). A row's novelty is the geometric mean of its novelty in each."""

    embedding: NoveltyCalibration
    # None in vector mode, in bundles of format 4, and where the autoencoder's sample was too small.
    terms: NoveltyCalibration | None = None

    def __post_init__(self):
        if self.embedding.space != EMBEDDING or (self.terms is not None and self.terms.space != TERMS):
            raise ValueError(f"novelty: expected the {EMBEDDING} space's calibration, then the {TERMS} space's")

    @property
    def calibrations(self) -> tuple[NoveltyCalibration, ...]:
        return (self.embedding,) if self.terms is None else (self.embedding, self.terms)

    def with_known(self, rows: sp.csr_matrix | None, n_embedding_known: int, topics: np.ndarray | None = None) -> NoveltySignals:
        """These signals with ``rows`` (an update's new topics' sampled rows, in the terms space; ``topics``: theirs) known too.

        The embedding space finds them among the model's ``n_embedding_known`` known rows (its fit rows
        and the rows of added topics, before these); the terms space keeps as many of them as keeps
        their share of its known rows the same, so that neither space's known rows are mostly new
        topics' after an update.
        """
        if self.terms is None:
            return self
        return replace(self, terms=self.terms.with_known(rows, self.terms.known.shape[0] / max(n_embedding_known, 1), topics))


def calibrate(
    rows: sp.csr_matrix | np.ndarray, metric: str, seed: int, idf: np.ndarray | None = None, neighbours: int = NOVELTY_NEIGHBOURS,
) -> NoveltyCalibration | None:
    """The calibration from a sample of the training rows; None when they are too few to cut in two halves of more than k rows.

    ``idf`` given: ``rows`` are term_points with those weights (the terms space, halves of at most
    ``MAX_HALF_ROWS``); else embeddings (the fit rows, cut in two whole halves).
    """
    half = rows.shape[0] // 2 if idf is None else min(rows.shape[0] // 2, MAX_HALF_ROWS)
    if half <= neighbours:
        return None
    known, held = (part[:half] for part in split_halves(rows, seed))
    ratios = density_ratios(held, known, held, np.ones(half, bool), neighbours, metric)
    median = np.median(ratios)
    if not median > 0:
        # More than half of the rows repeat k times or more: no ratio to scale by.
        return None
    quantiles = np.quantile(ratios / median, _QUANTILE_GRID)
    if idf is None:
        return NoveltyCalibration(neighbours, half, seed, metric, quantiles)
    return NoveltyCalibration(neighbours, half, seed, metric, quantiles, TERMS, idf, sp.csr_matrix(known), half)


def term_points(counts: sp.csr_matrix, words: np.ndarray, idf: np.ndarray) -> sp.csr_matrix:
    """Rows in the terms space: each term's count times its IDF, then the row's ``words`` the counts lack, each weighing
    ``UNKNOWN_WORD_WEIGHT`` (``words``: the row's words after cleaning and stop words, in the vocabulary or not)."""
    counts = sp.csr_matrix(counts, dtype=np.float32)
    unknown = np.maximum(np.asarray(words, np.float32) - np.asarray(counts.sum(axis=1), np.float32).ravel(), 0)
    weighted = counts.multiply(idf[np.newaxis, :])
    return sp.hstack([weighted, sp.csr_matrix(UNKNOWN_WORD_WEIGHT * unknown[:, np.newaxis])], format="csr", dtype=np.float32)


def split_halves(rows: sp.csr_matrix | np.ndarray, seed: int) -> tuple[sp.csr_matrix | np.ndarray, sp.csr_matrix | np.ndarray]:
    """Two seeded halves of ``rows``: the known rows, and the rows compared with them."""
    order = np.random.default_rng(seed).permutation(rows.shape[0])
    half = rows.shape[0] // 2
    return rows[order[:half]], rows[order[half:2 * half]]


def density_ratios(
    points: np.ndarray, known: np.ndarray, sample: np.ndarray, in_sample: np.ndarray, neighbours: int, metric: str
) -> np.ndarray:
    """Each point's distance to its k-th nearest known row over that to its k-th nearest row of ``sample``.

    ``in_sample`` marks the points that are rows of ``sample``: their own row is left out.
    """
    n_points = points.shape[0]
    if not n_points:
        return np.zeros(0)
    to_known = kth_distances(known, points, neighbours, np.zeros(n_points, bool), metric)
    to_sample = kth_distances(sample, points, neighbours, in_sample, metric)
    # Two rows with the same text have distance 0: such a row is not new.
    return np.divide(to_known, to_sample, out=np.zeros(n_points), where=to_sample > 0)


def kth_distances(reference, points, k: int, skip_first: np.ndarray, metric: str) -> np.ndarray:
    """Each point's distance to its k-th nearest reference row; the (k+1)-th where ``skip_first`` (the point is a reference row).

    ``reference`` and ``points``: dense arrays, or CSR matrices (the terms space).
    """
    from sklearn.neighbors import NearestNeighbors

    k = min(k, reference.shape[0] - 1)
    distances, _ = NearestNeighbors(algorithm="brute", metric=metric).fit(reference).kneighbors(points, n_neighbors=k + 1)
    return np.where(skip_first, distances[:, k], distances[:, k - 1])

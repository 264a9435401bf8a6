"""Which new rows a model does not describe: a density contrast in the embedding space, calibrated on the training rows.

A row of new data is *new* when it lies farther from the rows the model knows than the new
data's own density predicts. For each row x, with d_k(x, S) its distance to its k-th nearest
row of S (itself left out):

    ratio(x) = d_k(x, known rows) / d_k(x, a sample of the new rows of the same size)

A row of a topic the model knows has about as many known rows as new rows around it; a row of a
subject the training data lacked has new rows near it and known rows only far away. Ratios are
divided by their median over the new sample, which removes what every new row shares: the
autoencoder places rows it trained on farther apart than rows it never saw (on 2,771 AG News
rows, their embeddings' norms were 97 against 73), so unnormalised, nearly every new row of a
known topic looked new. The median assumes that fewer than half of the new rows are new.

The threshold comes from the training run: its fit rows are cut in two seeded halves, and the
normalised ratio of the second half's rows against the first half (the known rows) and against
their own half is the ratio of rows of known topics. Its quantiles are stored in the bundle;
``update.novelty_quantile`` picks one. A row's ``novelty`` is its normalised ratio over that
threshold: above 1, the row is new.

Plain distances, the distance to a topic's centroid in UMAP space, the confidence and the
autoencoder's reconstruction error separated new rows less well (scripts/studies/novelty_study.py;
BENCHMARKS.md, "Keeping a model current").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# k of the k-th nearest row: on AG News and the synthetic corpus 15 separated as well as 50, and
# its threshold held closer to its quantile (BENCHMARKS.md).
NOVELTY_NEIGHBOURS = 15
# The quantiles stored: 0, 0.001, ..., 1.
_QUANTILE_GRID = np.linspace(0.0, 1.0, 1001)


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

    def threshold(self, quantile: float) -> float:
        return float(np.interp(quantile, _QUANTILE_GRID, self.quantiles))

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        return {"quantiles": self.quantiles}, {
            "neighbours": self.neighbours, "sample_rows": self.sample_rows, "seed": self.seed, "metric": self.metric,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], scalars: dict) -> NoveltyCalibration:
        quantiles = np.asarray(arrays["quantiles"], np.float64)
        if quantiles.shape != _QUANTILE_GRID.shape or np.any(np.diff(quantiles) < 0):
            raise ValueError(f"novelty quantiles: expected {len(_QUANTILE_GRID)} ascending values, got shape {quantiles.shape}")
        return cls(
            neighbours=int(scalars["neighbours"]), sample_rows=int(scalars["sample_rows"]), seed=int(scalars["seed"]),
            metric=str(scalars["metric"]), quantiles=quantiles,
        )


def calibrate(fit_rows: np.ndarray, metric: str, seed: int, neighbours: int = NOVELTY_NEIGHBOURS) -> NoveltyCalibration | None:
    """The calibration from the fit rows' embeddings; None when they are too few to cut in two halves of more than k rows."""
    half = len(fit_rows) // 2
    if half <= neighbours:
        return None
    known, held = split_halves(fit_rows, seed)
    ratios = density_ratios(held, known, held, np.ones(len(held), bool), neighbours, metric)
    normalised = ratios / np.median(ratios)
    return NoveltyCalibration(neighbours, half, seed, metric, np.quantile(normalised, _QUANTILE_GRID))


def split_halves(rows: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two seeded halves of ``rows``: the known rows, and the rows compared with them."""
    order = np.random.default_rng(seed).permutation(len(rows))
    half = len(rows) // 2
    return rows[order[:half]], rows[order[half:2 * half]]


def density_ratios(
    points: np.ndarray, known: np.ndarray, sample: np.ndarray, in_sample: np.ndarray, neighbours: int, metric: str
) -> np.ndarray:
    """Each point's distance to its k-th nearest known row over that to its k-th nearest row of ``sample``.

    ``in_sample`` marks the points that are rows of ``sample``: their own row is left out.
    """
    if not len(points):
        return np.zeros(0)
    to_known = kth_distances(known, points, neighbours, np.zeros(len(points), bool), metric)
    to_sample = kth_distances(sample, points, neighbours, in_sample, metric)
    # Two rows with the same text have distance 0: such a row is not new.
    return np.divide(to_known, to_sample, out=np.zeros(len(points)), where=to_sample > 0)


def kth_distances(reference: np.ndarray, points: np.ndarray, k: int, skip_first: np.ndarray, metric: str) -> np.ndarray:
    """Each point's distance to its k-th nearest reference row; the (k+1)-th where ``skip_first`` (the point is a reference row)."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(reference) - 1)
    distances, _ = NearestNeighbors(algorithm="brute", metric=metric).fit(reference).kneighbors(points, n_neighbors=k + 1)
    return np.where(skip_first, distances[:, k], distances[:, k - 1])

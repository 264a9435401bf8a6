"""Placement: the manifold coordinates of a row outside the fit sample, from a map learned on the fit.

UMAP's ``transform`` lays every new row out against the fit rows: a 50-neighbour search among
up to 50,000 of them and 30 epochs of layout, about 250 µs a row on one core, and a row's
result moves with the batch it arrives in (BENCHMARKS.md, "Placing the rows outside the fit
sample"). Instead a small dense network learns, on the driver, the map from the fit rows'
embeddings to their UMAP coordinates (parametric UMAP's idea, trained as a regression on the
fitted layout); the executors run it with the encoder's layers (model/encoder.py), so a row's
coordinates are bitwise the same in any batch, and the clusterer labels them as it labels the
fit rows. ``manifold.placement: transform`` keeps UMAP's own transform.

The network is scikit-learn's ``MLPRegressor`` (seeded, no TensorFlow), on standardized inputs
and outputs; the standardizations are folded into its first and last layers, so what is saved
and run is a plain stack of dense layers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from n2d_spark.model.encoder import Encoder

# Hidden layers and training, chosen on the labelled corpora and IMDB (BENCHMARKS.md, "Placing the
# rows outside the fit sample"): wider or longer training did not place the held-out rows better.
HIDDEN_LAYERS = (128, 128)
_BATCH_ROWS = 256
# About this many mini-batch updates, in whole epochs between these bounds: a small fit sample
# trains for more epochs, and 50,000 fit rows for about 50 (seconds on the driver).
_UPDATES = 10_000
_EPOCHS = (20, 200)


def fit_placement(embeddings: np.ndarray, coordinates: np.ndarray, seed: int) -> Encoder:
    """A dense network from ``embeddings`` (fit rows) to their manifold ``coordinates``, as an ``Encoder``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    x, y = np.asarray(embeddings, np.float64), np.asarray(coordinates, np.float64)
    x_mean, x_scale = _standardization(x)
    y_mean, y_scale = _standardization(y)
    batch_rows = min(_BATCH_ROWS, len(x))
    epochs = int(np.clip(math.ceil(_UPDATES / math.ceil(len(x) / batch_rows)), *_EPOCHS))
    network = MLPRegressor(hidden_layer_sizes=HIDDEN_LAYERS, max_iter=epochs, batch_size=batch_rows, random_state=seed)
    with warnings.catch_warnings():
        # The epochs are capped on purpose: the fixed cost of a run.
        warnings.simplefilter("ignore", ConvergenceWarning)
        network.fit((x - x_mean) / x_scale, (y - y_mean) / y_scale)
    weights = [np.asarray(w, np.float64) for w in network.coefs_]
    biases = [np.asarray(b, np.float64) for b in network.intercepts_]
    # (x - mean) / scale @ W + b  ==  x @ (W / scale[:, None]) + (b - (mean / scale) @ W)
    biases[0] = biases[0] - (x_mean / x_scale) @ weights[0]
    weights[0] = weights[0] / x_scale[:, None]
    # (h @ W + b) * scale + mean  ==  h @ (W * scale) + (b * scale + mean)
    weights[-1] = weights[-1] * y_scale[None, :]
    biases[-1] = biases[-1] * y_scale + y_mean
    return Encoder(layers=tuple((w.astype(np.float32), b.astype(np.float32)) for w, b in zip(weights, biases)))


def _standardization(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and standard deviation (1 for a constant column)."""
    spread = values.std(axis=0)
    return values.mean(axis=0), np.where(spread > 0, spread, 1.0)

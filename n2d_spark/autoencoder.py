"""Autoencoder stage: trains on the driver (TensorFlow / Keras), returns a NumPy encoder.

Architecture as in the study the project follows: Dense hidden layers with ReLU, a
linear bottleneck, the mirrored decoder, a linear output, MSE loss and Adam.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

# TensorFlow logs its CPU feature detection at import; keep warnings and errors only.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from n2d_spark.config import AutoencoderConfig
from n2d_spark.encoder import Encoder


@dataclass(frozen=True)
class TrainedAutoencoder:
    encoder: Encoder
    # Per epoch: "loss", "val_loss" (with a validation slice) and "epoch_seconds".
    history: dict[str, list[float]] = field(default_factory=dict)


def train_autoencoder(x: sp.csr_matrix | np.ndarray, config: AutoencoderConfig) -> TrainedAutoencoder:
    """Fit on the rows of ``x`` (already scaled), holding out ``validation_fraction`` of them."""
    keras.utils.set_random_seed(config.seed)
    # Same config, same weights: deterministic kernels cost little on CPU.
    tf.config.experimental.enable_op_determinism()

    n_rows, input_dim = x.shape
    order = np.random.default_rng(config.seed).permutation(n_rows)
    n_val = int(round(n_rows * config.validation_fraction)) if n_rows > 1 else 0
    val_rows, train_rows = order[:n_val], order[n_val:]
    dense = x.toarray() if sp.issparse(x) else np.asarray(x, dtype=np.float32)
    x_train = dense[train_rows]
    x_val = dense[val_rows] if n_val else None

    model, encoder_layers = _build(input_dim, config)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate), loss="mse")
    epoch_timer = _EpochTimer()
    fit = model.fit(
        x_train,
        x_train,
        validation_data=(x_val, x_val) if n_val else None,
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        # One line per epoch when the log is a file; a progress bar only on a terminal.
        verbose=1 if sys.stderr.isatty() else 2,
        callbacks=[epoch_timer],
    )
    history = {name: [float(v) for v in values] for name, values in fit.history.items()}
    history["epoch_seconds"] = epoch_timer.seconds
    encoder = Encoder(
        layers=tuple(
            (layer.kernel.numpy().astype(np.float32), layer.bias.numpy().astype(np.float32))
            for layer in encoder_layers
        )
    )
    return TrainedAutoencoder(encoder=encoder, history=history)


class _EpochTimer(keras.callbacks.Callback):
    """Wall seconds of each epoch, so that loss can be read against time spent."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(round(time.perf_counter() - self._start, 3))


def _build(input_dim: int, config: AutoencoderConfig):
    inputs = keras.Input(shape=(input_dim,))
    encoder_layers = [keras.layers.Dense(width, activation="relu") for width in config.hidden]
    encoder_layers.append(keras.layers.Dense(config.bottleneck, name="bottleneck"))
    decoder_layers = [keras.layers.Dense(width, activation="relu") for width in reversed(config.hidden)]
    decoder_layers.append(keras.layers.Dense(input_dim))
    h = inputs
    for layer in encoder_layers + decoder_layers:
        h = layer(h)
    return keras.Model(inputs, h), encoder_layers

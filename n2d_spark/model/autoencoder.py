"""Autoencoder stage: trains on the driver (TensorFlow / Keras), returns a NumPy encoder.

Architecture as in the study the project follows: Dense hidden layers with ReLU, a
linear bottleneck, the mirrored decoder, a linear output, MSE loss and Adam. On a CPU with
native bfloat16 arithmetic the layers train in mixed precision (``autoencoder.precision``).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

# Lines TensorFlow's C++ core writes straight to the process's stderr, whatever
# TF_CPP_MIN_LOG_LEVEL says, on every machine without a GPU: they say nothing about the run.
_NATIVE_NOISE = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "Could not find cuda drivers on your machine",
    "failed call to cuInit",
)


@contextmanager
def _without_native_noise():
    """Run the block with file descriptor 2 captured; pass on every line but ``_NATIVE_NOISE``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not any(noise in line for noise in _NATIVE_NOISE):
                    sys.stderr.write(line)


# TensorFlow logs its CPU feature detection at import; keep warnings and errors only.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
with _without_native_noise():
    import keras
    import tensorflow as tf

    # The device probe (CUDA's cuInit) runs once, here, so its messages are filtered too.
    _GPUS = tf.config.list_physical_devices("GPU")

from n2d_spark.core.config import AutoencoderConfig, JobConfig
from n2d_spark.model.encoder import DenseScaler, EmbeddingModel, Encoder, InputScaler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainedAutoencoder:
    encoder: Encoder
    # The arithmetic it trained in: "float32" or "bfloat16" (``autoencoder.precision`` resolved).
    precision: str = "float32"
    # Per epoch run: "loss", "val_loss" (with a validation slice) and "epoch_seconds".
    history: dict[str, list[float]] = field(default_factory=dict)
    # The epochs training was given; fewer ran where early stopping ended it.
    epochs_planned: int = 0
    # Early stopping: the epoch (1-based) whose weights the encoder has, else None.
    best_epoch: int | None = None


def fit_embedding_model(sample: sp.csr_matrix | np.ndarray, config: JobConfig) -> tuple[EmbeddingModel, TrainedAutoencoder]:
    """The input scaling fitted on ``sample`` (count vectors in text mode, feature rows in vector mode),
    then the autoencoder trained on the scaled sample: the embedding model the executors run."""
    if config.input.features_col is not None:
        scaler = DenseScaler.fit(sample, config.features.scaling)
    else:
        scaler = InputScaler.fit(sample, config.text.scaling, config.text.l2_normalize)
    trained = train_autoencoder(scaler.transform(sample), config.autoencoder)
    return EmbeddingModel(scaler=scaler, encoder=trained.encoder), trained


def train_autoencoder(x: sp.csr_matrix | np.ndarray, config: AutoencoderConfig) -> TrainedAutoencoder:
    """Fit on the rows of ``x`` (already scaled), holding out ``validation_fraction`` of them."""
    keras.utils.set_random_seed(config.seed)
    # Same config, same weights: deterministic kernels cost little on CPU.
    tf.config.experimental.enable_op_determinism()

    n_rows, input_dim = x.shape
    order = np.random.default_rng(config.seed).permutation(n_rows)
    n_val = int(round(n_rows * config.validation_fraction)) if n_rows > 1 else 0
    val_rows, train_rows = order[:n_val], order[n_val:]

    precision = resolve_precision(config.precision, input_dim)
    model, encoder_layers = _build(input_dim, config, precision)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate), loss="mse")
    n_epochs = epochs_for(len(train_rows), config)
    epoch_timer = _EpochTimer(n_epochs)
    callbacks = [epoch_timer]
    stopper = None
    if config.early_stopping > 0 and n_val:
        stopper = _StopOnPlateau(config.early_stopping)
        callbacks.append(stopper)
    fit = model.fit(
        _batches(x[train_rows], config.batch_size, config.seed),
        validation_data=_batches(x[val_rows], config.batch_size, seed=None) if n_val else None,
        epochs=n_epochs,
        shuffle=False,  # _batches shuffles, seeded
        verbose=0,
        callbacks=callbacks,
    )
    history = {name: [float(v) for v in values] for name, values in fit.history.items()}
    history["epoch_seconds"] = epoch_timer.seconds
    encoder = Encoder(
        layers=tuple(
            (layer.kernel.numpy().astype(np.float32), layer.bias.numpy().astype(np.float32))
            for layer in encoder_layers
        )
    )
    best_epoch = stopper.stopped_at_best() if stopper is not None else None
    if best_epoch is not None:
        log.info("autoencoder: validation loss flat, stopped after %d of %d epochs; kept epoch %d's weights",
                 len(history["epoch_seconds"]), n_epochs, best_epoch)
    return TrainedAutoencoder(
        encoder=encoder, history=history, precision=precision, epochs_planned=n_epochs, best_epoch=best_epoch
    )


def epochs_for(n_train_rows: int, config: AutoencoderConfig) -> int:
    """``autoencoder.epochs``, or more where a small sample would otherwise get fewer than ``min_steps`` updates.

    Ten epochs of 512-row batches are 440 updates on the 25,000-row IMDB sample but 40 on BBC
    News's 2,000 training rows, which stopped far from converged (validation loss 0.937, where
    40 epochs reached 0.830 and raised KMeans's NMI on the N2D space from 0.769 to 0.867).
    """
    steps_per_epoch = max(1, -(-n_train_rows // config.batch_size))
    return max(config.epochs, -(-config.min_steps // steps_per_epoch))


# CPU flags (Linux /proc/cpuinfo) of native bfloat16 matrix arithmetic, which oneDNN uses.
_BFLOAT16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
# Narrower inputs make products too small to gain from bfloat16, and its 8-bit mantissa cost
# accuracy there: a 6-wide vector-mode test fell from ARI > 0.9 to 0.61, the 64-wide digits
# from accuracy >= 0.85 to 0.80.
_BFLOAT16_MIN_INPUT_DIM = 1024


def resolve_precision(precision: str, input_dim: int, cpuinfo: str = "/proc/cpuinfo") -> str:
    """``autoencoder.precision`` made concrete: "auto" is "bfloat16" for an input at least
    ``_BFLOAT16_MIN_INPUT_DIM`` wide on a CPU with native bfloat16, else "float32".

    Emulated bfloat16 is slower than float32, and a GPU is left to float32 unless asked.
    """
    if precision != "auto":
        return precision
    if input_dim < _BFLOAT16_MIN_INPUT_DIM:
        return "float32"
    if _GPUS:
        return "float32"
    try:
        with open(cpuinfo) as info:
            flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    except OSError:
        return "float32"
    return "bfloat16" if _BFLOAT16_CPU_FLAGS.intersection(flags) else "float32"


def _batches(rows: sp.csr_matrix | np.ndarray, batch_size: int, seed: int | None) -> tf.data.Dataset:
    """Mini-batches (x, x) of ``rows`` in a seeded order reshuffled each epoch (``seed`` None: in order).

    Count vectors stay sparse until a batch is made dense, inside TensorFlow: a dense copy of the
    whole sample would be rows x vocabulary float32s (450 MB at 22,500 x 5,000).

    tf.data's autotuning is off: its background thread makes every epoch's iterator wait for
    its next wake-up when the epoch ends, which left both cores idle for up to 5 s in every
    other 5-s epoch on IMDB (BENCHMARKS.md, "Autoencoder in float32"). Nothing here needs
    tuning: the batches are made in C++, one ahead.
    """
    if sp.issparse(rows):
        coo = rows.tocsr().sorted_indices().tocoo()
        slices = tf.SparseTensor(
            indices=np.stack([coo.row, coo.col], axis=1).astype(np.int64),
            values=coo.data.astype(np.float32),
            dense_shape=coo.shape,
        )
        make_dense = tf.sparse.to_dense
    else:
        slices = np.asarray(rows, dtype=np.float32)
        make_dense = tf.identity
    batches = tf.data.Dataset.from_tensor_slices(slices)
    if seed is not None:
        batches = batches.shuffle(rows.shape[0], seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.autotune.enabled = False
    return (
        batches.batch(batch_size)
        .map(lambda batch: (make_dense(batch),) * 2)
        .prefetch(1)
        .with_options(options)
    )


class _EpochTimer(keras.callbacks.Callback):
    """Wall seconds of each epoch, so that loss can be read against time spent; each epoch is
    logged in the job's format (Keras's own progress lines would go to stdout, with the summary)."""

    def __init__(self, n_epochs: int):
        super().__init__()
        self.n_epochs = n_epochs
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(round(time.perf_counter() - self._start, 3))
        losses = ", ".join(f"{name} {value:.4f}" for name, value in (logs or {}).items())
        log.info("autoencoder: epoch %d of %d in %.1f s, %s", epoch + 1, self.n_epochs, self.seconds[-1], losses)


class _StopOnPlateau(keras.callbacks.Callback):
    """Stops training once the validation loss has improved on its best by less than
    ``min_improvement`` (a fraction of the best) for ``PATIENCE`` epochs in a row, and puts the
    best epoch's weights back.

    Relative, not Keras's absolute ``min_delta``: the loss's scale depends on the input's
    scaling and width. Two epochs, because the validation loss moves up and down by a few
    tenths of a percent between epochs once it flattens (BBC News: 0.8305, 0.8328, 0.8321).
    """

    PATIENCE = 2

    def __init__(self, min_improvement: float):
        super().__init__()
        self.min_improvement = min_improvement
        self.best, self.best_epoch, self.best_weights = float("inf"), None, None
        self.flat_epochs = 0
        self.stopped = False

    def on_epoch_end(self, epoch, logs=None):
        loss = float((logs or {})["val_loss"])
        if loss < self.best * (1 - self.min_improvement):
            self.flat_epochs = 0
        else:
            self.flat_epochs += 1
        if loss < self.best:
            self.best, self.best_epoch = loss, epoch + 1
            self.best_weights = self.model.get_weights() if self.model is not None else None
        if self.flat_epochs >= self.PATIENCE:
            self.stopped = True
            if self.model is not None:
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped and self.best_weights is not None:
            self.model.set_weights(self.best_weights)

    def stopped_at_best(self) -> int | None:
        """The epoch whose weights the model holds if training stopped early, else None."""
        return self.best_epoch if self.stopped else None


def _build(input_dim: int, config: AutoencoderConfig, precision: str):
    # Mixed precision: bfloat16 arithmetic (the 1024 x vocabulary output layer included, the
    # largest product of all), float32 weights; the output is cast to float32, so that the
    # loss is computed in float32.
    dtype = "mixed_bfloat16" if precision == "bfloat16" else "float32"
    inputs = keras.Input(shape=(input_dim,))
    encoder_layers = [keras.layers.Dense(width, activation="relu", dtype=dtype) for width in config.hidden]
    encoder_layers.append(keras.layers.Dense(config.bottleneck, name="bottleneck", dtype=dtype))
    decoder_layers = [keras.layers.Dense(width, activation="relu", dtype=dtype) for width in reversed(config.hidden)]
    decoder_layers.append(keras.layers.Dense(input_dim, dtype=dtype))
    if precision == "bfloat16":
        decoder_layers.append(keras.layers.Activation("linear", dtype="float32"))
    h = inputs
    for layer in encoder_layers + decoder_layers:
        h = layer(h)
    return keras.Model(inputs, h), encoder_layers

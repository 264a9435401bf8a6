import dataclasses
import logging

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from n2d_spark.core.config import AutoencoderConfig
from n2d_spark.model.autoencoder import _StopOnPlateau, resolve_precision, train_autoencoder
from n2d_spark.model.encoder import Encoder, EmbeddingModel, InputScaler, spark_vectors_to_csr

COUNTS = sp.csr_matrix(np.array([[2.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 3.0, 0.0]], dtype=np.float32))


@pytest.mark.parametrize(
    "scaling, expected",
    [
        ("counts", [[2, 0, 1], [0, 0, 0], [1, 3, 0]]),
        ("binary", [[1, 0, 1], [0, 0, 0], [1, 1, 0]]),
        ("log1p", [[np.log(3), 0, np.log(2)], [0, 0, 0], [np.log(2), np.log(4), 0]]),
        # idf = log(4 / (df + 1)): df = 2, 1, 1
        ("tfidf", [[2 * np.log(4 / 3), 0, np.log(2)], [0, 0, 0], [np.log(4 / 3), 3 * np.log(2), 0]]),
    ],
)
def test_scalings(scaling, expected):
    scaled = InputScaler.fit(COUNTS, scaling, l2_normalize=False).transform(COUNTS).toarray()
    np.testing.assert_allclose(scaled, np.array(expected), rtol=1e-6)


def test_l2_normalization_to_root_vocabulary_size_keeps_empty_rows_zero():
    scaled = InputScaler.fit(COUNTS, "counts", l2_normalize=True).transform(COUNTS).toarray()
    np.testing.assert_allclose(np.linalg.norm(scaled, axis=1), [np.sqrt(3), 0.0, np.sqrt(3)], rtol=1e-6)
    np.testing.assert_allclose(scaled[0], np.array([2, 0, 1]) * np.sqrt(3 / 5), rtol=1e-6)


def test_transform_leaves_its_input_alone():
    counts = COUNTS.copy()
    InputScaler.fit(counts, "log1p", l2_normalize=True).transform(counts)
    np.testing.assert_array_equal(counts.toarray(), COUNTS.toarray())


def test_spark_vector_batch_to_csr():
    batch = pd.DataFrame(
        {
            "type": [0, 0, 0],
            "size": [4, 4, 4],
            "indices": [np.array([0, 3], np.int32), np.array([], np.int32), np.array([2], np.int32)],
            "values": [np.array([1.0, 2.0]), np.array([]), np.array([5.0])],
        }
    )
    np.testing.assert_array_equal(
        spark_vectors_to_csr(batch, 4).toarray(), [[1, 0, 0, 2], [0, 0, 0, 0], [0, 0, 5, 0]]
    )


def test_encoder_forward_pass():
    encoder = Encoder(
        layers=(
            (np.array([[1.0, -1.0], [0.5, 2.0]], np.float32), np.array([0.0, -1.0], np.float32)),
            (np.array([[1.0], [1.0]], np.float32), np.array([0.5], np.float32)),
        )
    )
    # Row 1: [1, 2] -> relu([2, 2]) = [2, 2] -> 4.5. Row 2: [1, 0] -> relu([1, -2]) = [1, 0] -> 1.5.
    out = encoder(sp.csr_matrix(np.array([[1.0, 2.0], [1.0, 0.0]], np.float32)))
    np.testing.assert_allclose(out, [[4.5], [1.5]])
    assert out.dtype == np.float32


def _random_counts(rows, cols, seed):
    rng = np.random.default_rng(seed)
    dense = rng.poisson(0.3, size=(rows, cols)).astype(np.float32)
    return sp.csr_matrix(dense)


def test_numpy_encoder_matches_keras(caplog, capsys):
    import keras

    counts = _random_counts(300, 40, seed=1)
    config = AutoencoderConfig(hidden=[16, 8], bottleneck=3, epochs=2, min_steps=0, batch_size=32, seed=3)
    scaler = InputScaler.fit(counts, "log1p", l2_normalize=True)
    with caplog.at_level(logging.INFO, logger="n2d_spark.model.autoencoder"):
        trained = train_autoencoder(scaler.transform(counts), config)
    # Each epoch is a log line in the job's format; nothing of Keras's on stdout, where the summary goes.
    epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("autoencoder: epoch ")]
    assert [line.split(" in ")[0] for line in epochs] == ["autoencoder: epoch 1 of 2", "autoencoder: epoch 2 of 2"]
    assert "loss " in epochs[-1] and "val_loss " in epochs[-1]
    assert capsys.readouterr().out == ""
    x = scaler.transform(counts).toarray()
    # Rebuild the encoder half in Keras from the extracted weights and compare.
    inputs = keras.Input(shape=(40,))
    h = inputs
    for i, (w, b) in enumerate(trained.encoder.layers):
        layer = keras.layers.Dense(w.shape[1], activation="relu" if i < len(trained.encoder.layers) - 1 else None)
        h = layer(h)
        layer.set_weights([w, b])
    expected = keras.Model(inputs, h).predict(x, verbose=0)
    np.testing.assert_allclose(EmbeddingModel(scaler, trained.encoder).embed(counts), expected, rtol=1e-4, atol=1e-5)
    assert trained.encoder.output_dim == 3


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_training_is_deterministic_and_learns(precision):
    counts = _random_counts(400, 30, seed=2)
    config = AutoencoderConfig(
        hidden=[32], bottleneck=4, epochs=8, min_steps=0, batch_size=32, seed=5, validation_fraction=0.25, precision=precision,
        early_stopping=0.0,
    )
    x = InputScaler.fit(counts, "log1p", l2_normalize=False).transform(counts)
    first = train_autoencoder(x, config)
    second = train_autoencoder(x, config)
    assert first.precision == precision
    for (w1, b1), (w2, b2) in zip(first.encoder.layers, second.encoder.layers):
        # Mixed precision keeps the weights in float32; the executors' encoder runs in float32.
        assert w1.dtype == b1.dtype == np.float32
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(b1, b2)
    assert len(first.history["loss"]) == len(first.history["val_loss"]) == 8
    assert first.history["loss"][-1] < first.history["loss"][0]


def test_sparse_input_trains_like_the_same_rows_dense():
    """Count vectors are fed sparse and made dense a batch at a time, inside TensorFlow: the same
    loss trajectory and weights as training on the dense rows."""
    counts = _random_counts(400, 30, seed=3)
    x = InputScaler.fit(counts, "log1p", l2_normalize=False).transform(counts)
    config = AutoencoderConfig(
        hidden=[32], bottleneck=4, epochs=6, min_steps=0, batch_size=32, seed=5, validation_fraction=0.25, precision="float32",
    )
    sparse = train_autoencoder(x, config)
    dense = train_autoencoder(x.toarray(), config)
    for key in ("loss", "val_loss"):
        assert len(sparse.history[key]) == 6
        np.testing.assert_allclose(sparse.history[key], dense.history[key], rtol=1e-5)
    assert sparse.history["val_loss"][-1] < 0.9 * sparse.history["val_loss"][0]
    for (w_sparse, _), (w_dense, _) in zip(sparse.encoder.layers, dense.encoder.layers):
        np.testing.assert_allclose(w_sparse, w_dense, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "flags, expected",
    [
        ("fpu sse avx2 avx512f amx_bf16 amx_tile", "bfloat16"),
        ("fpu sse avx2 avx512f avx512_bf16", "bfloat16"),
        ("fpu sse avx2 avx512f", "float32"),
    ],
)
def test_auto_precision_follows_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    assert resolve_precision("auto", 5000, cpuinfo=str(cpuinfo)) == expected
    # Narrow inputs train in float32 whatever the CPU.
    assert resolve_precision("auto", 64, cpuinfo=str(cpuinfo)) == "float32"


def test_auto_precision_without_cpuinfo_and_explicit_precisions(tmp_path):
    assert resolve_precision("auto", 5000, cpuinfo=str(tmp_path / "absent")) == "float32"
    assert resolve_precision("float32", 5000, cpuinfo="/nonexistent") == "float32"
    assert resolve_precision("bfloat16", 64, cpuinfo="/nonexistent") == "bfloat16"


def test_early_stopping_waits_for_two_flat_epochs_and_remembers_the_best():
    stopper = _StopOnPlateau(min_improvement=0.01)
    # Better by 50% and 20%; then 0.5% (flat), 30% (a real improvement resets the count),
    # then worse and 0.2% better: two flat epochs in a row.
    losses = [1.0, 0.5, 0.4, 0.398, 0.28, 0.29, 0.2794]
    for epoch, loss in enumerate(losses):
        assert not stopper.stopped, epoch
        stopper.on_epoch_end(epoch, {"val_loss": loss})
    assert stopper.stopped and stopper.stopped_at_best() == 7
    fresh = _StopOnPlateau(min_improvement=0.01)
    for epoch, loss in enumerate([1.0, 0.5, 0.4, 0.398, 0.28, 0.29]):
        fresh.on_epoch_end(epoch, {"val_loss": loss})
    assert not fresh.stopped and fresh.stopped_at_best() is None


def test_training_stops_on_a_plateau_and_keeps_the_best_epochs_weights():
    counts = _random_counts(400, 30, seed=2)
    x = InputScaler.fit(counts, "log1p", l2_normalize=False).transform(counts)
    config = AutoencoderConfig(
        hidden=[32], bottleneck=4, epochs=300, min_steps=0, batch_size=32, seed=5, validation_fraction=0.25,
        precision="float32", early_stopping=0.01,
    )
    stopped = train_autoencoder(x, config)
    run = len(stopped.history["val_loss"])
    # Random counts: the validation loss flattens long before 300 epochs.
    assert stopped.epochs_planned == 300 and run < 300 and len(stopped.history["epoch_seconds"]) == run
    assert 1 <= stopped.best_epoch <= run
    assert stopped.history["val_loss"][stopped.best_epoch - 1] == min(stopped.history["val_loss"])
    # The encoder is the best epoch's: trained for exactly that many epochs without stopping, it is the same.
    exact = train_autoencoder(x, dataclasses.replace(config, epochs=stopped.best_epoch, early_stopping=0.0))
    assert exact.best_epoch is None and len(exact.history["loss"]) == stopped.best_epoch
    for (w1, b1), (w2, b2) in zip(stopped.encoder.layers, exact.encoder.layers):
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(b1, b2)

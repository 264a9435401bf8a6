"""The input scaling and the encoder as plain arrays, and back: the model bundle's encoder.npz (and, for the
learned placement's layers, placement.npz)."""

from __future__ import annotations

import io

import numpy as np

from n2d_spark.core.fs import FileSystem
from n2d_spark.model.encoder import DenseScaler, EmbeddingModel, Encoder, InputScaler


def save_embedding_model(fs: FileSystem, folder: str, model: EmbeddingModel) -> bytes:
    """The input scaling and the encoder's weights as one .npz (no pickle); returns the bytes written."""
    arrays = layer_arrays(model.encoder)
    arrays.update({f"scaler_{name}": value for name, value in model.scaler.to_arrays().items()})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    fs.write_bytes(f"{folder}/encoder.npz", data)
    return data


def load_embedding_model(fs: FileSystem, folder: str) -> EmbeddingModel:
    """The scaler and encoder that ``save_embedding_model`` wrote (plain arrays: no pickle is loaded)."""
    with np.load(io.BytesIO(fs.read_bytes(f"{folder}/encoder.npz")), allow_pickle=False) as arrays:
        encoder = encoder_of_arrays(arrays)
        scaling = str(arrays["scaler_scaling"])
        if "scaler_offset" in arrays.files:
            scaler = DenseScaler(scaling=scaling, offset=arrays["scaler_offset"], scale=arrays["scaler_scale"])
        else:
            idf = arrays["scaler_idf"] if "scaler_idf" in arrays.files else None
            scaler = InputScaler(scaling=scaling, l2_normalize=bool(arrays["scaler_l2_normalize"]), idf=idf)
    return EmbeddingModel(scaler=scaler, encoder=encoder)


def layer_arrays(encoder: Encoder) -> dict[str, np.ndarray]:
    """Dense layers as arrays ``w0``, ``b0``, ``w1``, ...: layer i's weights and bias."""
    arrays = {f"w{i}": w for i, (w, _) in enumerate(encoder.layers)}
    arrays.update({f"b{i}": b for i, (_, b) in enumerate(encoder.layers)})
    return arrays


def encoder_of_arrays(arrays) -> Encoder:
    """The dense layers ``layer_arrays`` wrote (a mapping or an open .npz), checked to chain: each layer's
    weights 2-D, float32, as wide as its bias and as deep as the layer before it is wide."""
    n_layers = sum(1 for name in arrays if name.startswith("w") and name[1:].isdigit())
    layers = tuple((arrays[f"w{i}"], arrays[f"b{i}"]) for i in range(n_layers))
    for i, (weights, bias) in enumerate(layers):
        chained = i == 0 or weights.shape[0] == layers[i - 1][0].shape[1]
        if weights.ndim != 2 or bias.shape != weights.shape[1:] or not chained or weights.dtype != np.float32 or bias.dtype != np.float32:
            raise ValueError(f"layer {i}: weights {weights.shape} {weights.dtype} and bias {bias.shape} {bias.dtype} do not chain")
    if not layers:
        raise ValueError("no layers")
    return Encoder(layers=layers)

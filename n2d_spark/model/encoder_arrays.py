"""The input scaling and the encoder as plain arrays, and back: the model bundle's encoder.npz."""

from __future__ import annotations

import io

import numpy as np

from n2d_spark.core.fs import FileSystem
from n2d_spark.model.encoder import DenseScaler, EmbeddingModel, Encoder, InputScaler


def save_embedding_model(fs: FileSystem, folder: str, model: EmbeddingModel) -> bytes:
    """The input scaling and the encoder's weights as one .npz (no pickle); returns the bytes written."""
    arrays = {f"w{i}": w for i, (w, _) in enumerate(model.encoder.layers)}
    arrays.update({f"b{i}": b for i, (_, b) in enumerate(model.encoder.layers)})
    arrays.update({f"scaler_{name}": value for name, value in model.scaler.to_arrays().items()})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    fs.write_bytes(f"{folder}/encoder.npz", data)
    return data


def load_embedding_model(fs: FileSystem, folder: str) -> EmbeddingModel:
    """The scaler and encoder that ``save_embedding_model`` wrote (plain arrays: no pickle is loaded)."""
    with np.load(io.BytesIO(fs.read_bytes(f"{folder}/encoder.npz")), allow_pickle=False) as arrays:
        n_layers = sum(1 for name in arrays.files if name.startswith("w"))
        encoder = Encoder(layers=tuple((arrays[f"w{i}"], arrays[f"b{i}"]) for i in range(n_layers)))
        scaling = str(arrays["scaler_scaling"])
        if "scaler_offset" in arrays.files:
            scaler = DenseScaler(scaling=scaling, offset=arrays["scaler_offset"], scale=arrays["scaler_scale"])
        else:
            idf = arrays["scaler_idf"] if "scaler_idf" in arrays.files else None
            scaler = InputScaler(scaling=scaling, l2_normalize=bool(arrays["scaler_l2_normalize"]), idf=idf)
    return EmbeddingModel(scaler=scaler, encoder=encoder)

"""Write stage: everything goes to a staging folder beside the output, published whole at the end."""

from __future__ import annotations

import io
import json
from contextlib import contextmanager

import numpy as np
from n2d_spark.encoder import DenseScaler, EmbeddingModel, Encoder, InputScaler
from n2d_spark.errors import OutputExistsError
from n2d_spark.fs import FileSystem

LABELS_DIR = "labels"
CLUSTERS_DIR = "clusters"
MODEL_DIR = "model"
REJECTED_DIR = "rejected"
REPORT_DIR = "report"
TOPIC_TREE_DIR = "topic_tree"
# In every labels/ row, so that the outputs of several runs can be unioned and told apart.
RUN_ID_COL = "run_id"
MODEL_ID_COL = "model_id"
MANIFEST_FILE = "run.json"


@contextmanager
def staged_output(fs: FileSystem, output: str, mode: str, run_id: str):
    """Yield a staging folder beside ``output``; publish it whole when the block succeeds.

    The mode is checked before any work. On failure the staging folder is removed and an
    existing output stays as it was; only a successful block replaces it (mode overwrite).
    """
    if mode == "error" and fs.exists(output):
        raise OutputExistsError(f"output exists: {output} (set output.mode=overwrite to replace it)")
    staging = f"{output.rstrip('/')}.staging-{run_id}"
    try:
        yield staging
    except BaseException:
        if fs.exists(staging):
            fs.delete(staging)
        raise
    if fs.exists(output):
        if mode != "overwrite":
            raise OutputExistsError(f"output exists: {output} (set output.mode=overwrite to replace it)")
        fs.delete(output)
    fs.rename(staging, output)


def write_manifest(fs: FileSystem, folder: str, manifest: dict) -> None:
    fs.write_bytes(f"{folder}/{MANIFEST_FILE}", json.dumps(manifest, indent=2, sort_keys=True).encode())


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

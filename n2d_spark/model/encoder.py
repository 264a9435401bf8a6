"""Input scaling and the trained encoder as plain NumPy: what the executors run.

The executors never import TensorFlow: the encoder is a short stack of dense layers,
and its first layer multiplies a sparse count vector (about 1% non-zero at a 5,000-word
vocabulary), which a small Numba loop does in a fraction of the dense cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
import scipy.sparse as sp

SCALINGS = ("counts", "binary", "log1p", "tfidf")


@dataclass(frozen=True)
class InputScaler:
    """Count vectors to the autoencoder's input: the scaling of ``text.scaling``, then optional L2.

    L2 normalization scales each row to norm sqrt(vocabulary size), not 1, so that the mean
    squared input is 1. At unit norm a 5,000-term row's entries are ~0.1 and its squared
    error ~2e-4: the default initialisation then passes almost no signal, and on IMDB the
    embedding collapsed (per-dimension std 0.007) with the validation loss flat over epochs.
    """

    scaling: str
    l2_normalize: bool
    idf: np.ndarray | None = None

    @classmethod
    def fit(cls, counts: sp.csr_matrix, scaling: str, l2_normalize: bool) -> "InputScaler":
        if scaling not in SCALINGS:
            raise ValueError(f"unknown scaling {scaling!r}; expected one of {', '.join(SCALINGS)}")
        return cls(scaling=scaling, l2_normalize=l2_normalize, idf=smoothed_idf(counts) if scaling == "tfidf" else None)

    def transform(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        x = sp.csr_matrix(counts, dtype=np.float32, copy=True)
        if self.scaling == "binary":
            x.data[:] = 1.0
        elif self.scaling == "log1p":
            np.log1p(x.data, out=x.data)
        elif self.scaling == "tfidf":
            x = sp.csr_matrix(x.multiply(self.idf[np.newaxis, :]), dtype=np.float32)
        if self.l2_normalize:
            norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
            norms[norms == 0] = 1.0
            x = sp.csr_matrix(sp.diags(np.sqrt(x.shape[1]) / norms).astype(np.float32) @ x)
        return x

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"scaling": np.array(self.scaling), "l2_normalize": np.array(self.l2_normalize)}
        if self.idf is not None:
            arrays["idf"] = self.idf
        return arrays


def smoothed_idf(counts: sp.csr_matrix) -> np.ndarray:
    """Each term's smoothed IDF over the rows of ``counts``, as Spark ML computes it: log((n + 1) / (df + 1))."""
    document_frequency = np.bincount(sp.csr_matrix(counts).indices, minlength=counts.shape[1])
    return np.log((counts.shape[0] + 1.0) / (document_frequency + 1.0)).astype(np.float32)


@dataclass(frozen=True)
class DenseScaler:
    """Vector mode's input scaling, per dimension: none, min-max to [0, 1], or standardize."""

    scaling: str
    offset: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, scaling: str) -> "DenseScaler":
        x = np.asarray(x, dtype=np.float64)
        if scaling == "none":
            offset, spread = np.zeros(x.shape[1]), np.ones(x.shape[1])
        elif scaling == "minmax":
            offset, spread = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
        elif scaling == "standardize":
            offset, spread = x.mean(axis=0), x.std(axis=0)
        else:
            raise ValueError(f"unknown scaling {scaling!r}; expected none, minmax or standardize")
        # A constant dimension carries nothing: it becomes 0 rather than a division by zero.
        scale = np.divide(1.0, spread, out=np.zeros_like(spread), where=spread > 0)
        return cls(scaling=scaling, offset=offset.astype(np.float32), scale=scale.astype(np.float32))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float32) - self.offset) * self.scale).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"scaling": np.array(self.scaling), "offset": self.offset, "scale": self.scale}


@dataclass(frozen=True)
class Encoder:
    """Dense layers as (weights, bias) pairs; ReLU between them, the last (the bottleneck) linear."""

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]

    @property
    def input_dim(self) -> int:
        return self.layers[0][0].shape[0]

    @property
    def output_dim(self) -> int:
        return self.layers[-1][0].shape[1]

    def __call__(self, x: sp.csr_matrix | np.ndarray) -> np.ndarray:
        h = x
        last = len(self.layers) - 1
        for i, (weights, bias) in enumerate(self.layers):
            relu = i < last
            if sp.issparse(h):
                h = _sparse_dense_layer(h.indptr, h.indices, h.data, weights, bias, relu)
            else:
                h = _dense_layer(np.ascontiguousarray(h, dtype=np.float32), weights, bias, relu)
        return h


# Both layers compute each output row from that row alone, summing its products in one fixed
# order (the input's columns, first to last), in plain IEEE float32 arithmetic: no fastmath,
# so no reassociation and no fused multiply-adds. A row's embedding is therefore bitwise the
# same in a batch of 1 or of 4,096 rows, at any position in it. BLAS gives no such promise:
# OpenBLAS picks its kernels and blocking by the batch's row count, and its results for a row
# moved in the last bits with the batch (measured on 300 rows: 36 to 300 rows differed).
# Neither loop checks its indices (Numba does not): a loaded model's widths are checked against
# each other on load (model/bundle_shapes.py), and a count vector's indices come from its vocabulary.


@numba.njit(nogil=True, cache=True)
def _sparse_dense_layer(indptr, indices, data, weights, bias, relu):
    """csr @ weights + bias (then ReLU) in one pass: each non-zero adds a scaled row of ``weights``.

    SciPy's CSR-times-dense product is a scalar loop: at 78 terms a row it took about 60% of
    the forward pass. This loop vectorizes over the layer's width (measured, BENCHMARKS.md).
    """
    n_rows, width = indptr.shape[0] - 1, weights.shape[1]
    out = np.empty((n_rows, width), np.float32)
    for i in range(n_rows):
        row = out[i]
        row[:] = bias
        for k in range(indptr[i], indptr[i + 1]):
            value, weight_row = data[k], weights[indices[k]]
            for j in range(width):
                row[j] += value * weight_row[j]
        if relu:
            _relu(row)
    return out


# Rows per tile of the dense layer: each weight row is read once per tile. 4 was fastest for a
# 1024x512 layer on a 2-core AMD EPYC (23,000 rows/s at 1 row, 33,300 at 4, 31,800 at 8).
_TILE_ROWS = 4


@numba.njit(nogil=True, cache=True)
def _dense_layer(h, weights, bias, relu):
    """h @ weights + bias (then ReLU), row by row in tiles; zeros (ReLU's output) add nothing and are skipped."""
    n_rows, depth, width = h.shape[0], weights.shape[0], weights.shape[1]
    out = np.empty((n_rows, width), np.float32)
    for start in range(0, n_rows, _TILE_ROWS):
        stop = min(start + _TILE_ROWS, n_rows)
        for i in range(start, stop):
            out[i, :] = bias
        for k in range(depth):
            weight_row = weights[k]
            for i in range(start, stop):
                value = h[i, k]
                if value != 0:
                    row = out[i]
                    for j in range(width):
                        row[j] += value * weight_row[j]
        if relu:
            for i in range(start, stop):
                _relu(out[i])
    return out


@numba.njit(nogil=True, cache=True)
def _relu(row):
    for j in range(row.shape[0]):
        if row[j] < 0:
            row[j] = 0


@dataclass(frozen=True)
class EmbeddingModel:
    """Everything the executors need to embed a batch: count vectors (CSR) or dense feature rows."""

    scaler: InputScaler | DenseScaler
    encoder: Encoder

    def embed(self, rows: sp.csr_matrix | np.ndarray) -> np.ndarray:
        return self.encoder(self.scaler.transform(rows))


def spark_vectors_to_csr(vectors: pd.DataFrame, size: int) -> sp.csr_matrix:
    """Arrow's form of a column of Spark ML sparse vectors (fields indices, values) as CSR rows."""
    indices = vectors["indices"].to_numpy()
    values = vectors["values"].to_numpy()
    lengths = np.fromiter((len(i) for i in indices), dtype=np.int64, count=len(indices))
    indptr = np.zeros(len(indices) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    flat_indices = np.concatenate(indices).astype(np.int32) if len(indices) else np.zeros(0, np.int32)
    flat_values = np.concatenate(values).astype(np.float32) if len(values) else np.zeros(0, np.float32)
    return sp.csr_matrix((flat_values, flat_indices, indptr), shape=(len(indices), size))

"""The model bundle's parts checked against each other on load: every width, length and index range that
the executors' native code relies on.

A bundle's checksums show damage, not tampering (model/bundle.py): a part rewritten with bundle.json
loads. The encoder's Numba loops (model/encoder.py), SciPy's sparse kernels and hdbscan's Cython read
their arrays without bounds checks, so a vocabulary longer than the encoder's input, or a CSR index past
its matrix, reads or writes outside an array on an executor. Each check here runs before its part is
built into the objects that code reads, and raises ValueError with what does not fit; the loader turns
that into one line that names the part. Parts that are pickles are not checked: loading one runs its
code anyway, and only with ``allow_pickle``.

The widths, from the input up: the encoder's input (the vocabulary's size in text mode), its layers
(chained), its output (the embedding width: UMAP's fit rows, the learned placement's input, the rows
of added topics), and the manifold's width (UMAP's coordinates, the placement's output, every array
the clusterer reads).
"""

from __future__ import annotations

import numpy as np

from n2d_spark.model.cluster_arrays import ESTIMATOR_PREFIX
from n2d_spark.model.encoder import DenseScaler, EmbeddingModel, Encoder
from n2d_spark.model.novelty import TERMS


def check_encoder(model: EmbeddingModel) -> None:
    """The input scaling as wide as the encoder's input (its layers chain: ``encoder_arrays.encoder_of_arrays``)."""
    width = model.encoder.input_dim
    scaler = model.scaler
    if isinstance(scaler, DenseScaler):
        _expect_shape("the scaling's offset", scaler.offset, (width,))
        _expect_shape("the scaling's scale", scaler.scale, (width,))
    elif scaler.idf is not None:
        _expect_shape("the scaling's IDF", scaler.idf, (width,))


def check_vocabulary(vocabulary_size: int, encoder: Encoder) -> None:
    """As many terms as the encoder's input is wide: a count vector's index reads a row of its first layer."""
    if vocabulary_size != encoder.input_dim:
        raise ValueError(f"its vocabulary has {vocabulary_size} terms, the encoder's input is {encoder.input_dim} wide")


def check_umap(arrays: dict[str, np.ndarray], scalars: dict, embedding_width: int) -> None:
    """Fit rows as wide as the embedding, one coordinate row each, as wide as UMAP's components; a neighbour
    count that the fit rows can give."""
    raw_data, embedding = _array(arrays, "raw_data"), _array(arrays, "embedding")
    _expect_shape("its fit rows", raw_data, (None, embedding_width))
    _expect_shape("its coordinates", embedding, (len(raw_data), scalars["params"].get("n_components")))
    neighbours = scalars["fitted"]["n_neighbors"]
    if not (isinstance(neighbours, int) and 1 <= neighbours <= len(raw_data)):
        raise ValueError(f"n_neighbors {neighbours!r}: expected 1 to its {len(raw_data)} fit rows")


def check_placement(placement: Encoder, embedding_width: int, manifold_width: int) -> None:
    """The learned placement's layers (chained by ``encoder_of_arrays``) from the embedding's width to the manifold's."""
    if (placement.input_dim, placement.output_dim) != (embedding_width, manifold_width):
        raise ValueError(
            f"it maps {placement.input_dim} to {placement.output_dim} dimensions, the model {embedding_width} to {manifold_width}"
        )


def check_clusters(arrays: dict[str, np.ndarray], scalars: dict, manifold_width: int) -> None:
    """The clusterer's arrays (``cluster_arrays.clusters_to_arrays``' names) as wide as the manifold, and its
    indices within the rows they index."""
    algorithm = scalars["algorithm"]
    fitted = scalars["estimator_fitted"]
    if "n_features_in_" in fitted and fitted["n_features_in_"] != manifold_width:
        raise ValueError(f"n_features_in_ {fitted['n_features_in_']!r}, the manifold is {manifold_width} wide")
    estimator = {name.removeprefix(ESTIMATOR_PREFIX): value for name, value in arrays.items() if name.startswith(ESTIMATOR_PREFIX)}
    if algorithm == "kmeans":
        _expect_shape("cluster_centers_", _array(estimator, "cluster_centers_"), (None, manifold_width))
    elif algorithm == "gmm":
        _check_mixture(estimator, scalars["estimator_params"].get("covariance_type", "full"), manifold_width)
    elif algorithm == "dbscan":
        components, labels = _array(estimator, "components_"), _array(estimator, "labels_")
        _expect_shape("components_", components, (None, manifold_width))
        _expect_shape("labels_", labels, (None,))
        _expect_indices("core_sample_indices_", _array(estimator, "core_sample_indices_"), len(components), len(labels))
        if "core_labels" in arrays:
            _expect_shape("core_labels", arrays["core_labels"], (len(components),))
    elif algorithm == "hdbscan":
        raw_data = _array(estimator, "_raw_data")
        _expect_shape("_raw_data", raw_data, (None, manifold_width))
        _expect_shape("labels_", _array(estimator, "labels_"), (len(raw_data),))
        _check_condensed_tree(_array(estimator, "_condensed_tree"), len(raw_data))
    for points, labels in (("centroids", "centroid_labels"), ("topic_centroids", "topic_ids")):
        if points in arrays:
            _expect_shape(points, arrays[points], (None, manifold_width))
            _expect_shape(labels, _array(arrays, labels), (len(arrays[points]),))


def check_novelty(arrays: dict[str, np.ndarray], scalars: dict, vocabulary_size: int | None) -> None:
    """A calibration in the terms space: its IDF over the vocabulary, and its known rows a CSR matrix over the
    vocabulary's terms and one more column (novelty.term_points), its row pointers ascending from 0 to its
    entries, its indices within its columns. The embedding space's holds its quantiles alone (checked as it is built)."""
    if scalars.get("space") != TERMS:
        return
    if vocabulary_size is None:
        raise ValueError("a terms space calibration in a model without a vocabulary (vector mode)")
    _expect_shape("its IDF", _array(arrays, "idf"), (vocabulary_size,))
    data, indices, indptr = (_array(arrays, f"known_{name}") for name in ("data", "indices", "indptr"))
    _expect_shape("its known rows' values", data, (None,))
    _expect_shape("its known rows' pointers", indptr, (None,))
    if not np.issubdtype(indptr.dtype, np.integer):
        raise ValueError(f"its known rows' pointers: {indptr.dtype}, expected integers")
    if len(indptr) < 1 or indptr[0] != 0 or indptr[-1] != len(data) or np.any(np.diff(indptr) < 0):
        raise ValueError(f"its known rows' pointers do not ascend from 0 to its {len(data)} entries")
    _expect_indices("its known rows' indices", indices, len(data), vocabulary_size + 1)


def check_added(arrays: dict[str, np.ndarray], embedding_width: int) -> None:
    """The added topics' rows as wide as the embedding, one topic and one generation each."""
    rows = _array(arrays, "rows")
    _expect_shape("its rows", rows, (None, embedding_width))
    _expect_shape("its topics", _array(arrays, "topics"), (len(rows),))
    _expect_shape("its generations", _array(arrays, "generation"), (len(rows),))


def _check_mixture(estimator: dict[str, np.ndarray], covariance_type: str, width: int) -> None:
    """A Gaussian mixture's weights, means and precisions, shaped as scikit-learn's ``covariance_type`` shapes them."""
    means = _array(estimator, "means_")
    _expect_shape("means_", means, (None, width))
    k = len(means)
    _expect_shape("weights_", _array(estimator, "weights_"), (k,))
    shapes = {"full": (k, width, width), "tied": (width, width), "diag": (k, width), "spherical": (k,)}
    if covariance_type not in shapes:
        raise ValueError(f"covariance_type {covariance_type!r}: expected one of {', '.join(shapes)}")
    for name in ("covariances_", "precisions_cholesky_", "precisions_"):
        _expect_shape(name, _array(estimator, name), shapes[covariance_type])


def _check_condensed_tree(tree: np.ndarray, n_points: int) -> None:
    """hdbscan's condensed tree: points are nodes 0 to n - 1, clusters n on (fewer than the points)."""
    fields = ("parent", "child", "lambda_val", "child_size")
    if tree.ndim != 1 or tree.dtype.names is None or not set(fields) <= set(tree.dtype.names):
        raise ValueError(f"_condensed_tree: expected a 1-D record array with the fields {', '.join(fields)}")
    parent, child = tree["parent"], tree["child"]
    if len(tree) and (parent.min() < n_points or parent.max() >= 2 * n_points or child.min() < 0 or child.max() >= 2 * n_points):
        raise ValueError(f"_condensed_tree: its nodes must be 0 to {2 * n_points - 1}, its parents {n_points} on")
    if len(tree) and (tree["child_size"].min() < 1 or not np.all(np.isfinite(tree["lambda_val"]))):
        raise ValueError("_condensed_tree: every child's size must be at least 1 and its lambda finite")


def _array(arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in arrays:
        raise ValueError(f"it holds no array {name}")
    return arrays[name]


def _expect_shape(what: str, array: np.ndarray, shape: tuple[int | None, ...]) -> None:
    """``array`` of ``shape`` (None: any length); numbers only, as the native code reads them."""
    array = np.asarray(array)
    fits = array.ndim == len(shape) and all(want is None or have == want for have, want in zip(array.shape, shape))
    if not fits or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        expected = "(" + ", ".join("n" if want is None else str(want) for want in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ValueError(f"{what}: shape {array.shape} {array.dtype}, expected {expected}")


def _expect_indices(what: str, indices: np.ndarray, count: int, bound: int) -> None:
    """``count`` integer indices, each from 0 to ``bound`` - 1."""
    _expect_shape(what, indices, (count,))
    if not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"{what}: {indices.dtype}, expected integers")
    if len(indices) and (indices.min() < 0 or indices.max() >= bound):
        raise ValueError(f"{what}: from {indices.min()} to {indices.max()}, expected 0 to {bound - 1}")

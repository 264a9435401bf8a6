"""``FittedClusters`` as plain arrays and JSON scalars, and back: the model bundle's clusters.npz.

The estimator is rebuilt as a fitted estimator of its own library, from its parameters and
the fitted attributes its prediction reads, so that it labels new points as the fitted one did:

- kmeans: ``cluster_centers_`` (``KMeans.predict``: the nearest centre, by scikit-learn's code);
- gmm: ``weights_``, ``means_``, ``covariances_``, ``precisions_cholesky_``, ``precisions_``;
- dbscan: the core samples, their indices and the fit labels; new points are labelled by
  ``FittedClusters``' index over the core samples, rebuilt from them as ``fit_clusters`` builds it;
- hdbscan: the fit rows, their labels and the condensed tree. ``approximate_predict`` reads the
  prediction data (a KD-tree over the fit rows, their core distances, which tree node is which
  cluster, each cluster's largest lambda); hdbscan's ``generate_prediction_data`` computes it
  from those three, as ``HDBSCAN.fit`` does.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import DBSCAN, KMeans
from sklearn.mixture import GaussianMixture

from n2d_spark.model.cluster import FittedClusters, core_sample_index

# Per algorithm: the estimator's fitted attributes kept as arrays, and those kept as JSON scalars.
_ESTIMATOR_ARRAYS = {
    "kmeans": ("cluster_centers_",),
    "gmm": ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"),
    "dbscan": ("components_", "core_sample_indices_", "labels_"),
    "hdbscan": ("_raw_data", "labels_", "_condensed_tree"),
}
_ESTIMATOR_SCALARS = {
    "kmeans": ("n_features_in_", "inertia_", "n_iter_"),
    "gmm": ("n_features_in_", "converged_", "n_iter_", "lower_bound_"),
    "dbscan": ("n_features_in_",),
    "hdbscan": (),
}
# FittedClusters' own arrays, each absent where it is None.
# Bundles from before topic_ids and topic_centroids lack them (model/bundle.py recomputes them).
_OWN_ARRAYS = ("core_labels", "centroids", "centroid_labels", "topic_of", "topic_ids", "topic_centroids")
ESTIMATOR_PREFIX = "estimator."


def clusters_to_arrays(clusters: FittedClusters) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and JSON scalars that ``clusters_from_arrays`` rebuilds ``clusters`` from."""
    estimator = clusters.estimator
    arrays = {name: getattr(clusters, name) for name in _OWN_ARRAYS if getattr(clusters, name) is not None}
    arrays.update({ESTIMATOR_PREFIX + name: getattr(estimator, name) for name in _ESTIMATOR_ARRAYS[clusters.algorithm]})
    scalars = {
        "algorithm": clusters.algorithm,
        "eps": clusters.eps,
        "fit_noise_share": clusters.fit_noise_share,
        # JSON keys are strings; clusters_from_arrays turns them back into each k.
        "k_scores": None if clusters.k_scores is None else {str(k): score for k, score in clusters.k_scores.items()},
        # Parameters that are objects (hdbscan's joblib Memory, a cache for fitting) keep their
        # defaults: no prediction reads them.
        "estimator_params": {
            name: _plain(value) for name, value in estimator.get_params().items() if _is_json_scalar(_plain(value))
        },
        "estimator_fitted": {name: _plain(getattr(estimator, name)) for name in _ESTIMATOR_SCALARS[clusters.algorithm]},
    }
    return arrays, scalars


def clusters_from_arrays(arrays: dict[str, np.ndarray], scalars: dict) -> FittedClusters:
    """The ``FittedClusters`` that ``clusters_to_arrays`` described."""
    algorithm = scalars["algorithm"]
    if algorithm not in _ESTIMATOR_ARRAYS:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    # Only the attributes named here are set: the constructor refuses a parameter its estimator lacks,
    # and a fitted scalar outside this algorithm's list is refused rather than set.
    unknown = sorted(set(scalars["estimator_fitted"]) - set(_ESTIMATOR_SCALARS[algorithm]))
    if unknown:
        raise ValueError(f"{algorithm} has no fitted attribute {', '.join(map(repr, unknown))} that its prediction reads")
    estimator = _estimator(algorithm, scalars["estimator_params"])
    for name in _ESTIMATOR_ARRAYS[algorithm]:
        setattr(estimator, name, arrays[ESTIMATOR_PREFIX + name])
    for name, value in scalars["estimator_fitted"].items():
        setattr(estimator, name, value)
    if algorithm == "kmeans":
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

        # predict reads the thread count that fit sets, for this machine.
        estimator._n_threads = _openmp_effective_n_threads()
    if algorithm == "hdbscan":
        estimator.generate_prediction_data()
    k_scores = scalars["k_scores"]
    clusters = FittedClusters(
        algorithm=algorithm,
        estimator=estimator,
        eps=scalars["eps"],
        fit_noise_share=scalars["fit_noise_share"],
        k_scores=None if k_scores is None else {int(k): score for k, score in k_scores.items()},
        **{name: arrays[name] for name in _OWN_ARRAYS if name in arrays},
    )
    if algorithm == "dbscan" and clusters.core_labels is not None:
        clusters.core_index = core_sample_index(estimator.components_)
    return clusters


def _estimator(algorithm: str, params: dict):
    if algorithm == "kmeans":
        return KMeans(**params)
    if algorithm == "gmm":
        return GaussianMixture(**params)
    if algorithm == "dbscan":
        return DBSCAN(**params)
    import hdbscan

    return hdbscan.HDBSCAN(**params)


def _plain(value):
    """A NumPy scalar as the Python number it holds (json writes only the latter)."""
    return value.item() if isinstance(value, np.generic) else value


def _is_json_scalar(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))

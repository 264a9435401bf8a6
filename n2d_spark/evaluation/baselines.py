"""Evaluation beyond the run's own labels: the study's baselines, and stability under another seed.

Both work on the fit sample on the driver, the rows that UMAP and the clusterer were fitted on:
arrays in, scores out.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

from n2d_spark.core.config import JobConfig
from n2d_spark.core.metrics import agreement, label_shape
from n2d_spark.model.autoencoder import train_autoencoder
from n2d_spark.model.cluster import fit_clusters, kmeans
from n2d_spark.model.encoder import EmbeddingModel
from n2d_spark.model.manifold import fit_manifold


@dataclasses.dataclass(frozen=True)
class Baselines:
    """Scores of each way of clustering the same rows, and the labels of KMeans on the raw vectors."""

    scores: dict[str, dict]
    raw_labels: np.ndarray


def compare_baselines(
    scaled_inputs: sp.csr_matrix | np.ndarray,
    embeddings: np.ndarray,
    n2d_labels: np.ndarray,
    classes: np.ndarray | None,
    config: JobConfig,
) -> Baselines:
    """KMeans on the scaled input vectors, KMeans on the autoencoder embedding, and the N2D labels, side by side.

    KMeans gets ``cluster.k`` clusters (with ``auto``, as many as N2D found), whatever the
    configured clusterer: the study's comparison.
    """
    k = config.cluster.k if config.cluster.k != "auto" else max(1, label_shape(n2d_labels)["n_clusters"])
    labels = {
        "kmeans_raw": kmeans(k, config.cluster.seed).fit_predict(scaled_inputs).astype(np.int32),
        "kmeans_embedding": kmeans(k, config.cluster.seed).fit_predict(embeddings).astype(np.int32),
        "n2d": n2d_labels,
    }
    scores = {}
    for name, found in labels.items():
        shape = label_shape(found)
        scores[name] = {"n_clusters": shape["n_clusters"], "noise_share": shape["noise_share"]}
        if classes is not None:
            scores[name].update(agreement(found, classes))
    return Baselines(scores=scores, raw_labels=labels["kmeans_raw"])


def stability(
    autoencoder_sample: sp.csr_matrix | np.ndarray,
    fit_inputs: sp.csr_matrix | np.ndarray,
    labels: np.ndarray,
    model: EmbeddingModel,
    config: JobConfig,
) -> dict:
    """ARI between ``labels`` and those of a second fit that differs only in its seeds.

    The second fit trains the autoencoder on the same sample with the next seed, embeds the
    same fit rows, and fits UMAP and the clusterer with the next seeds.
    """
    reseeded = dataclasses.replace(
        config,
        autoencoder=dataclasses.replace(config.autoencoder, seed=config.autoencoder.seed + 1),
        manifold=dataclasses.replace(config.manifold, seed=config.manifold.seed + 1),
        cluster=dataclasses.replace(config.cluster, seed=config.cluster.seed + 1),
    )
    trained = train_autoencoder(model.scaler.transform(autoencoder_sample), reseeded.autoencoder)
    embeddings = EmbeddingModel(scaler=model.scaler, encoder=trained.encoder).embed(fit_inputs)
    _, coordinates = fit_manifold(embeddings, reseeded.manifold, stage="evaluate")
    _, other_labels = fit_clusters(coordinates, reseeded.cluster)
    # The autoencoder's seeds stand for all three: the manifold's and the clusterer's move by one too.
    return {"ari": float(adjusted_rand_score(labels, other_labels)), "seeds": [config.autoencoder.seed, reseeded.autoencoder.seed]}

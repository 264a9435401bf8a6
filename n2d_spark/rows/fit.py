"""The fit the job and the estimator share, on the usable input vectors: autoencoder, embed, manifold, cluster.

The autoencoder trains on a seeded sample of the vectors on the driver; every usable row is
embedded on the executors; UMAP, the placement of the other rows and the clusterer are fitted on
a seeded sample of the embeddings on the driver. The job (pipeline.py) times each stage for run.json and asks for what
only it reports: the label column on the embedded rows, the embedding's progress, the topic
tree. The estimator (rows/estimator_stages.py) asks for none of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark.sql import DataFrame

from n2d_spark.core.columns import EMBEDDING_COL
from n2d_spark.core.config import JobConfig
from n2d_spark.core.metrics import label_shape
from n2d_spark.model.autoencoder import TrainedAutoencoder, fit_embedding_model
from n2d_spark.model.assigner import ClusterAssigner
from n2d_spark.model.cluster import check_enough_rows, fit_clusters, topic_tree
from n2d_spark.model.encoder import EmbeddingModel, smoothed_idf
from n2d_spark.model.manifold import fit_manifold
from n2d_spark.model.novelty import NoveltySignals, calibrate, term_points
from n2d_spark.model.placement import fit_placement
from n2d_spark.rows.job_stages import Embedded, embed_rows
from n2d_spark.rows.rejects import RejectTally
from n2d_spark.rows.sampling import collect_sample, collect_term_sample
from n2d_spark.rows.vectorize import Featurized

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelFit:
    """What the fit produced: the embedding model and the assigner, the samples they were fitted on, the embedded rows."""

    embedding_model: EmbeddingModel
    trained: TrainedAutoencoder
    # The autoencoder's sample: row ids and their input vectors.
    sample_ids: np.ndarray
    sample: sp.csr_matrix | np.ndarray
    embedded: Embedded
    # The manifold's fit sample, row for row: ids, embeddings, UMAP coordinates, cluster labels.
    fit_ids: np.ndarray
    fit_embeddings: np.ndarray
    fit_coordinates: np.ndarray
    fit_labels: np.ndarray
    # The fitted UMAP, placement and clusterer.
    assigner: ClusterAssigner
    # What tells a new row later (model/novelty.py); None when the fit rows were too few.
    novelty: NoveltySignals | None
    # The clusters' hierarchy (cluster.topic_tree) where asked for and there are two clusters or more.
    tree: pd.DataFrame | None


def calibrate_novelty(
    fit_embeddings: np.ndarray, sample: sp.csr_matrix | np.ndarray, words: np.ndarray | None, config: JobConfig,
) -> NoveltySignals | None:
    """What tells a new row (model/novelty.py): the fit rows' embeddings, and where ``words`` are given (text
    mode: the autoencoder's ``sample`` of count vectors, each row's word count) the same sample in its terms.
    None when the fit rows are too few; the terms part None when the sample is too small to halve."""
    embedding = calibrate(fit_embeddings, config.manifold.metric, config.manifold.seed)
    if embedding is None:
        return None
    if words is None:
        return NoveltySignals(embedding)
    # Rows without a vocabulary term are embedded by no model (their reject reason): left out, as update leaves them.
    with_terms = np.diff(sample.indptr) > 0
    sample, words = sample[with_terms], words[with_terms]
    idf = smoothed_idf(sample)
    return NoveltySignals(embedding, calibrate(term_points(sample, words, idf), "cosine", config.manifold.seed, idf))


@contextmanager
def untimed(_name: str):
    yield


def fit_model(
    usable: DataFrame, features: Featurized, config: JobConfig, tally: RejectTally, held: ExitStack, *,
    stage: Callable[[str], AbstractContextManager] = untimed, label_col: str | None = None, progress: bool = False,
    with_tree: bool = False,
) -> ModelFit:
    """Train the autoencoder, embed ``usable``, fit UMAP and the clusterer, each stage inside ``stage(name)``.

    ``usable`` holds the rows of ``features`` without a reject reason. The embedded rows (with
    ``label_col``, when given) stay persisted until ``held`` closes; rows with nothing to embed are
    added to ``tally``. ``progress``: log the embedding's progress (job_stages.embed_rows).
    """
    with stage("autoencoder"):
        # Each sampled row's word count, in text mode: the terms space of novelty (model/novelty.py) counts the
        # words outside the vocabulary.
        words = None
        if features.vocabulary is None:
            sample_ids, sample = collect_sample(usable, features.column, config.autoencoder.sample_rows, config.autoencoder.seed)
        else:
            sample_ids, sample, words = collect_term_sample(usable, features.column, config.autoencoder.sample_rows, config.autoencoder.seed)
        embedding_model, trained = fit_embedding_model(sample, config)
        log.info("autoencoder: trained on %d rows in %s", len(sample_ids), trained.precision)

    with stage("embed"):
        embedded = embed_rows(held, usable, features, embedding_model, config, tally, label_col, progress)

    with stage("manifold"):
        check_enough_rows(embedded.n_rows, config.cluster)
        fit_ids, fit_embeddings = collect_sample(embedded.rows, EMBEDDING_COL, config.manifold.fit_rows, config.manifold.seed)
        reducer, fit_coordinates = fit_manifold(fit_embeddings, config.manifold)
        placement = None
        if config.manifold.placement == "learned":
            placement = fit_placement(fit_embeddings, fit_coordinates, config.manifold.seed)
        novelty = calibrate_novelty(fit_embeddings, sample, words, config)

    with stage("cluster"):
        clusters, fit_labels = fit_clusters(fit_coordinates, config.cluster)
        tree = topic_tree(fit_coordinates, fit_labels) if with_tree and label_shape(fit_labels)["n_clusters"] > 1 else None

    return ModelFit(
        embedding_model=embedding_model, trained=trained, sample_ids=sample_ids, sample=sample, embedded=embedded,
        fit_ids=fit_ids, fit_embeddings=fit_embeddings, fit_coordinates=fit_coordinates, fit_labels=fit_labels,
        assigner=ClusterAssigner(reducer=reducer, clusters=clusters, placement=placement), novelty=novelty, tree=tree,
    )

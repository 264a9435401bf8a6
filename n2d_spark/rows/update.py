"""The update's stages over rows (pipeline.run_update, N2DModel.update): which rows are new, the
topics they form, and the new rows relabelled by the updated model.

Nothing the size of the input comes to the driver: the new sample (at most the calibration's
half of the fit rows) and the sample of new rows the new topics are fitted on (at most
``manifold.fit_rows``). The known rows and the new sample reach the executors inside the pandas
functions' closures, not as broadcasts.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from threadpoolctl import threadpool_limits

from n2d_spark.core.columns import CLUSTER_COL, CONFIDENCE_COL, EMBEDDING_COL, ID_COL, NOISE, NOVELTY_COL, SECOND_CLUSTER_COL
from n2d_spark.core.config import JobConfig
from n2d_spark.core.errors import InputError
from n2d_spark.core.resources import persisted
from n2d_spark.model.assigner import AddedTopics, Assignment, ClusterAssigner
from n2d_spark.model.cluster import check_enough_rows, fit_clusters
from n2d_spark.model.manifold import fit_manifold
from n2d_spark.model.novelty import NoveltyCalibration, density_ratios, split_halves
from n2d_spark.rows.embed import dense_rows
from n2d_spark.rows.sampling import collect_sample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Novelty:
    """Each usable row's novelty (id, novelty; above 1: new), and what run.json says of it."""

    scores: DataFrame
    about: dict


def novelty(rows: DataFrame, assigner: ClusterAssigner, calibration: NoveltyCalibration, quantile: float) -> Novelty:
    """``rows`` (id, embedding) scored against the model's known rows (model/novelty.py)."""
    k, metric = calibration.neighbours, calibration.metric
    sample_ids, sample = collect_sample(rows, EMBEDDING_COL, calibration.sample_rows, calibration.seed)
    if len(sample) <= k:
        raise InputError(f"update needs more than {k} usable rows to tell new rows from known ones; the input has {len(sample)}")
    known = split_halves(assigner.known_rows, calibration.seed)[0][: len(sample)]
    median = float(np.median(density_ratios(sample, known, sample, np.ones(len(sample), bool), k, metric)))
    threshold = calibration.threshold(quantile)
    scale = median * threshold
    sample_id_set = set(sample_ids.tolist())
    width = sample.shape[1]

    def score(batches):
        for batch in batches:
            points = dense_rows(batch[EMBEDDING_COL].to_numpy(), width)
            in_sample = batch[ID_COL].isin(sample_id_set).to_numpy()
            # Spark runs a task per core: the neighbour search's BLAS threads would oversubscribe them.
            with threadpool_limits(1):
                ratios = density_ratios(points, known, sample, in_sample, k, metric)
            yield pd.DataFrame({ID_COL: batch[ID_COL], NOVELTY_COL: ratios / scale if scale > 0 else ratios})

    schema = T.StructType([T.StructField(ID_COL, rows.schema[ID_COL].dataType, False), T.StructField(NOVELTY_COL, T.DoubleType(), False)])
    scores = rows.select(ID_COL, EMBEDDING_COL).mapInPandas(score, schema)
    about = {
        "signal": "density contrast in the embedding space (docs/reuse.md, 'Keeping a model current')",
        "neighbours": k,
        "quantile": quantile,
        "threshold": threshold,
        "median_ratio": median,
        "known_rows": len(known),
        "new_sample_rows": len(sample),
    }
    return Novelty(scores, about)


@dataclass(frozen=True)
class Update:
    """What an update found in new rows: each row's novelty, the new rows' ids and count, the new topics."""

    novelty: Novelty
    new_ids: DataFrame
    n_new: int
    topics: NewTopics

    def assigner(self, old: ClusterAssigner) -> ClusterAssigner:
        """The updated model's assigner: ``old`` with the new topics added."""
        return replace(old, added=self.topics.added)


def find_new(rows: DataFrame, assigner: ClusterAssigner, calibration: NoveltyCalibration, config: JobConfig, held: ExitStack) -> Update:
    """The update of a model (``assigner``, ``calibration``) with ``rows`` (id, embedding; persisted): the novelty
    of each row, and the new topics the new rows form. The scores stay persisted until ``held`` closes."""
    scored = novelty(rows, assigner, calibration, config.update.novelty_quantile)
    scores = persisted(held, scored.scores)
    new_ids = scores.filter(F.col(NOVELTY_COL) > 1).select(ID_COL)
    n_new = new_ids.count()
    topics = new_topics(
        rows.join(new_ids, ID_COL), n_new, assigner, config, assigner.known_rows, calibration.neighbours, calibration.metric,
        next_topic_id(assigner),
    )
    return Update(Novelty(scores, scored.about), new_ids, n_new, topics)


@dataclass(frozen=True)
class NewTopics:
    """The topics an update found: the model's added topics with them (None if it has none), and what run.json says of them."""

    added: AddedTopics | None
    topic_ids: list[int]
    # About how many of the new rows each new topic holds (from the sample they were fitted on).
    sizes: list[int]
    about: dict


def new_topics(
    new_rows: DataFrame, n_new: int, assigner: ClusterAssigner, config: JobConfig, known: np.ndarray, neighbours: int, metric: str,
    next_topic: int,
) -> NewTopics:
    """Topics among ``new_rows`` (id, embedding; ``n_new`` of them), fitted as the model's were, on a sample of them.

    A seeded sample of at most ``manifold.fit_rows`` new rows gets its own UMAP and the model's
    clusterer settings (``k: auto`` chooses its k). A cluster becomes a topic only when it is
    a group of its own: more than half of its rows' nearest rows, among the known rows and the
    sampled new rows, are new rows; and it stands for at least ``update.min_topic_rows`` new rows.
    Rows new by chance (about 1 - ``update.novelty_quantile`` of rows of known topics) lie among
    known rows and form no such group. New topics are numbered from ``next_topic``.
    """
    previous = assigner.added
    about: dict = {"new_rows": n_new, "min_topic_rows": config.update.min_topic_rows}
    if n_new < config.update.min_topic_rows:
        return NewTopics(previous, [], [], {**about, "found": 0, "why_none": "fewer new rows than update.min_topic_rows"})
    ids, points = collect_sample(new_rows, EMBEDDING_COL, config.manifold.fit_rows, config.manifold.seed)
    try:
        check_enough_rows(len(points), config.cluster)
    except InputError as error:
        return NewTopics(previous, [], [], {**about, "found": 0, "why_none": str(error)})
    _, coordinates = fit_manifold(points, config.manifold, stage="new topics")
    _, labels = fit_clusters(coordinates, config.cluster)
    cohesion = _new_neighbour_share(points, known, neighbours, metric)
    rows_per_sampled = n_new / len(points)
    candidates, kept, sizes = [], [], []
    for label in np.unique(labels[labels != NOISE]):
        members = labels == label
        share, size = float(cohesion[members].mean()), int(round(members.sum() * rows_per_sampled))
        candidates.append({"rows": size, "new_neighbour_share": round(share, 3)})
        if share > 0.5 and size >= config.update.min_topic_rows:
            kept.append(label)
            sizes.append(size)
    about = {**about, "sampled": len(points), "candidates": candidates, "found": len(kept)}
    if not kept:
        return NewTopics(previous, [], [], {**about, "why_none": "no cluster of new rows is a group of its own"})
    topic_ids = [next_topic + i for i in range(len(kept))]
    in_topic = np.isin(labels, kept)
    topics = np.zeros(len(labels), np.int32)
    for label, topic in zip(kept, topic_ids):
        topics[labels == label] = topic
    added = AddedTopics.appended(previous, points[in_topic], topics[in_topic], neighbours, metric)
    log.info("update: %d new topics from %d new rows (%d sampled)", len(kept), n_new, len(points))
    return NewTopics(added, topic_ids, sizes, about)


def _new_neighbour_share(points: np.ndarray, known: np.ndarray, neighbours: int, metric: str) -> np.ndarray:
    """For each of ``points``, the share of new rows (``points``' others) among its nearest rows of known and new rows together."""
    from sklearn.neighbors import NearestNeighbors

    pool = np.vstack([known, points])
    k = min(neighbours, len(pool) - 1)
    _, nearest = NearestNeighbors(algorithm="brute", metric=metric).fit(pool).kneighbors(points, n_neighbors=k + 1)
    # The first neighbour is the row itself (or a copy of it): left out.
    return (nearest[:, 1:] >= len(known)).mean(axis=1)


def with_new_topics(assigned: DataFrame, embeddings: DataFrame, update: Update, updated: ClusterAssigner) -> DataFrame:
    """``assigned`` (id, cluster, confidence, second_cluster, ...) as the updated model labels it: only new rows
    may join a new topic; every other row keeps the old model's label. ``embeddings``: id, embedding."""
    if not update.topics.topic_ids:
        return assigned
    new_rows = assigned.join(update.new_ids, ID_COL).join(embeddings, ID_COL)
    moved = relabelled(new_rows, updated).drop(EMBEDDING_COL)
    return assigned.join(update.new_ids, ID_COL, "left_anti").unionByName(moved)


def relabelled(rows: DataFrame, assigner: ClusterAssigner) -> DataFrame:
    """``rows`` (id, embedding, cluster, confidence, second_cluster) with those that join a topic of ``assigner.added`` relabelled."""
    # Built once here, not in every batch.
    added, known = assigner.added, assigner.known_rows
    width = known.shape[1]

    def relabel(batches):
        for batch in batches:
            embeddings = dense_rows(batch[EMBEDDING_COL].to_numpy(), width)
            given = Assignment(
                np.zeros((len(batch), 0), np.float32), batch[CLUSTER_COL].to_numpy(np.int32),
                batch[CONFIDENCE_COL].to_numpy(np.float32), batch[SECOND_CLUSTER_COL].to_numpy(np.int32),
            )
            with threadpool_limits(1):
                result = added.relabel(given, embeddings, known)
            yield batch.assign(**{CLUSTER_COL: result.labels, CONFIDENCE_COL: result.confidence, SECOND_CLUSTER_COL: result.second})

    return rows.mapInPandas(relabel, rows.schema)


def next_topic_id(assigner: ClusterAssigner) -> int:
    """The first id after every topic the model has."""
    ids = [int(i) for i in (assigner.clusters.topic_ids if assigner.clusters.topic_ids is not None else [])]
    if assigner.added is not None and len(assigner.added.topics):
        ids.append(int(assigner.added.topics.max()))
    return max(ids, default=-1) + 1

"""The update's stages over rows (pipeline.run_update, N2DModel.update): which rows are novel (the model
describes them poorly), the topics they form, and the novel rows relabelled by the updated model: those
that join a new topic are the update's new rows.

Over 300 lines: which rows an added topic takes (in the embedding, then in the terms) is one rule for
the update's own labels and for ``assign`` and the estimator's transform with an updated model, which
take ``checked_in_terms`` from here; the novelty, the new topics and that rule share their helpers.

Nothing the size of the input comes to the driver: a new sample per novelty space (at most the
calibration's half of the fit rows in the embedding, 5,000 rows in the terms) and the sample of
novel rows the new topics are fitted on (at most ``manifold.fit_rows``). The known rows and the new sample reach the executors inside the pandas
functions' closures, not as broadcasts.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from threadpoolctl import threadpool_limits

from n2d_spark.core.columns import (
    CLUSTER_COL, CONFIDENCE_COL, EMBEDDING_COL, ID_COL, NOISE, NOVELTY_COL, SECOND_CLUSTER_COL, UMAP_COL, WORD_COUNT_COL,
)
from n2d_spark.core.config import JobConfig
from n2d_spark.core.errors import InputError
from n2d_spark.core.resources import persisted
from n2d_spark.model.assigner import AddedTopics, Assignment, ClusterAssigner
from n2d_spark.model.cluster import check_enough_rows, fit_clusters
from n2d_spark.model.manifold import fit_manifold
from n2d_spark.model.encoder import spark_vectors_to_csr
from n2d_spark.model.novelty import TERMS, NoveltyCalibration, NoveltySignals, density_ratios, term_points
from n2d_spark.rows.embed import dense_rows
from n2d_spark.rows.sampling import collect_columns, collect_sample, collect_term_sample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Novelty:
    """Each usable row's novelty (id, novelty; above 1: new), and what run.json says of it."""

    scores: DataFrame
    about: dict


@dataclass(frozen=True)
class _SpaceScorer:
    """One space's part of a row's novelty: the new sample and the known rows it is compared with, and the scale
    (the sample's median ratio times the calibrated threshold) that makes 1 the threshold."""

    calibration: NoveltyCalibration
    sample_ids: set
    sample: sp.csr_matrix | np.ndarray
    known: sp.csr_matrix | np.ndarray
    scale: float
    about: dict


def _space_scorer(
    rows: DataFrame, assigner: ClusterAssigner, calibration: NoveltyCalibration, quantile: float, terms_col: str | None,
) -> _SpaceScorer:
    k, metric = calibration.neighbours, calibration.metric
    if calibration.space == TERMS:
        sample_ids, counts, words = collect_term_sample(rows, terms_col, calibration.sample_rows, calibration.seed)
        sample = term_points(counts, words, calibration.idf)
    else:
        sample_ids, sample = collect_sample(rows, EMBEDDING_COL, calibration.sample_rows, calibration.seed)
    n_sample = sample.shape[0]
    if n_sample <= k:
        raise InputError(f"update needs more than {k} usable rows to tell new rows from known ones; the input has {n_sample}")
    known = calibration.known_rows(assigner.known_rows, n_sample)
    median = float(np.median(density_ratios(sample, known, sample, np.ones(n_sample, bool), k, metric)))
    threshold = calibration.threshold(quantile)
    where = "the rows' terms (IDF-weighted counts, and the words outside the vocabulary)" if calibration.space == TERMS else "the embedding"
    about = {
        "space": calibration.space, "distance": f"{metric} in {where}", "neighbours": k, "threshold": threshold,
        "median_ratio": median, "known_rows": known.shape[0], "new_sample_rows": n_sample,
    }
    scale = median * threshold
    if not scale > 0:
        raise InputError(
            f"update cannot tell new rows in the {calibration.space} space: more than half of the new rows repeat "
            f"{k} times or more there; deduplicate the input, or train a new model on it"
        )
    # The scorer travels to the executors in a closure: the known rows it needs, not the calibration's whole pool.
    return _SpaceScorer(replace(calibration, known=None), set(sample_ids.tolist()), sample, known, scale, about)


def _batch_term_points(batch: pd.DataFrame, terms_col: str, idf: np.ndarray) -> sp.csr_matrix:
    """A mapInPandas batch's rows in the terms space, from their count vectors and word counts."""
    # mapInPandas hands a vector over as a dict of its fields.
    fields = pd.DataFrame({name: [v[name] for v in batch[terms_col]] for name in ("indices", "values")})
    return term_points(spark_vectors_to_csr(fields, len(idf)), batch[WORD_COUNT_COL].to_numpy(), idf)


def log_novelty_in_space(ratios: np.ndarray, scale: float) -> np.ndarray:
    """The logarithm of each row's novelty in one space: its density ratio over ``scale``. A ratio of 0 (the row
    has ``k`` copies or more among the new sample: model/novelty.py's density_ratios) gives -inf, so the row's
    novelty, the geometric mean over the spaces, is 0: repeated rows are never new, whatever the other space says."""
    with np.errstate(divide="ignore"):
        return np.log(ratios / scale)


def novelty(rows: DataFrame, assigner: ClusterAssigner, signals: NoveltySignals, quantile: float, terms_col: str | None) -> Novelty:
    """``rows`` scored against the model's known rows (model/novelty.py): (id, embedding), and where the model
    measures the terms too, ``terms_col`` (the count vectors) and the word count."""
    if signals.terms is not None and terms_col is None:
        raise ValueError("a novelty calibration of the terms space needs the rows' count vectors")
    scorers = [_space_scorer(rows, assigner, calibration, quantile, terms_col) for calibration in signals.calibrations]
    columns = [ID_COL, EMBEDDING_COL] + ([terms_col, WORD_COUNT_COL] if signals.terms is not None else [])
    width = assigner.known_rows.shape[1]

    def points_of(batch: pd.DataFrame, calibration: NoveltyCalibration):
        if calibration.space == TERMS:
            return _batch_term_points(batch, terms_col, calibration.idf)
        return dense_rows(batch[EMBEDDING_COL].to_numpy(), width)

    def score(batches):
        for batch in batches:
            log_novelty = np.zeros(len(batch))
            for scorer in scorers:
                calibration = scorer.calibration
                in_sample = batch[ID_COL].isin(scorer.sample_ids).to_numpy()
                # Spark runs a task per core: the neighbour search's BLAS threads would oversubscribe them.
                with threadpool_limits(1):
                    ratios = density_ratios(
                        points_of(batch, calibration), scorer.known, scorer.sample, in_sample, calibration.neighbours, calibration.metric,
                    )
                log_novelty += log_novelty_in_space(ratios, scorer.scale)
            yield pd.DataFrame({ID_COL: batch[ID_COL], NOVELTY_COL: np.exp(log_novelty / len(scorers))})

    schema = T.StructType([T.StructField(ID_COL, rows.schema[ID_COL].dataType, False), T.StructField(NOVELTY_COL, T.DoubleType(), False)])
    scores = rows.select(*columns).mapInPandas(score, schema)
    about = {
        "signal": "density contrast, the geometric mean over the spaces (docs/reuse.md, 'Keeping a model current')",
        "quantile": quantile,
        "spaces": [scorer.about for scorer in scorers],
    }
    return Novelty(scores, about)


@dataclass(frozen=True)
class Update:
    """What an update found in new data: each row's novelty, the novel rows' ids (novelty above 1) and count, and
    the new topics the novel rows form."""

    novelty: Novelty
    novel_ids: DataFrame
    n_novel: int
    topics: NewTopics

    def assigner(self, old: ClusterAssigner) -> ClusterAssigner:
        """The updated model's assigner: ``old`` with the new topics added."""
        return replace(old, added=self.topics.added)

    def calibration(self, old: NoveltySignals, old_assigner: ClusterAssigner) -> NoveltySignals:
        """The updated model's novelty signals: the rows of the new topics are known rows to the next update."""
        signals = old.with_known(self.topics.known_terms, len(old_assigner.known_rows), self.topics.known_terms_topics)
        return signals if signals.terms is None else replace(signals, terms=terms_known_within(signals.terms))

    def without(self, dropped: list[int]) -> Update:
        """This update without the new topics ``dropped``."""
        return replace(self, topics=self.topics.without(dropped))


def terms_known_within(terms: NoveltyCalibration) -> NoveltyCalibration:
    """``terms`` (the terms space's calibration) with at most as many known rows of added topics as of the training
    run's, a seeded part of them in their order: as the embedding keeps its added rows within its fit rows
    (added_within), so that neither space's known rows grow with the number of updates. Where the calibration cannot
    tell its training rows (a bundle from before it counted them), as it is."""
    training = terms.training_known_rows
    if training is None or terms.known.shape[0] - training <= training:
        return terms
    kept = np.sort(np.random.default_rng(terms.seed).choice(np.arange(training, terms.known.shape[0]), training, replace=False))
    return replace(terms, known=terms.known[np.concatenate([np.arange(training), kept])])


def find_new(
    rows: DataFrame, assigned: DataFrame, assigner: ClusterAssigner, signals: NoveltySignals, config: JobConfig, held: ExitStack,
    terms_col: str | None = None, training_oov: float | None = None,
) -> Update:
    """The update of a model (``assigner``, ``signals``) with ``rows`` (persisted; id, embedding, and where the model
    measures the terms ``terms_col`` and the word count), which the model labelled ``assigned`` (id, cluster,
    confidence): the novelty of each row, and the new topics the new rows form. ``training_oov``: the share of
    the training data's words outside the vocabulary (ModelTopics). The scores stay persisted until ``held`` closes."""
    scored = novelty(rows, assigner, signals, config.update.novelty_quantile, terms_col)
    scores = persisted(held, scored.scores)
    novel_ids = scores.filter(F.col(NOVELTY_COL) > 1).select(ID_COL)
    counted = scores.agg(F.count(F.lit(1)).alias("rows"), F.sum((F.col(NOVELTY_COL) > 1).cast("long")).alias("novel")).first()
    n_rows, n_novel = int(counted["rows"]), int(counted["novel"] or 0)
    novel_rows = rows.drop(CLUSTER_COL, CONFIDENCE_COL, SECOND_CLUSTER_COL).join(novel_ids, ID_COL).join(
        assigned.select(ID_COL, CLUSTER_COL, CONFIDENCE_COL), ID_COL,
    )
    topics = new_topics(novel_rows, n_novel, n_rows, assigner, signals, config, terms_col, training_oov)
    return Update(Novelty(scores, scored.about), novel_ids, n_novel, topics)


@dataclass(frozen=True)
class UpdatedRows:
    """An update carried out: the rows as the updated model labels them, the update (less the topics fewer than
    ``update.min_topic_rows`` rows joined), the updated model's assigner and novelty signals, and how many rows
    joined each new topic."""

    assigned: DataFrame
    update: Update
    assigner: ClusterAssigner
    signals: NoveltySignals
    joined: dict[int, int]

    @property
    def n_new(self) -> int:
        """The new rows: those that joined a new topic."""
        return sum(self.joined.values())


def labelled_by_update(
    assigned: DataFrame, rows: DataFrame, update: Update, assigner: ClusterAssigner, signals: NoveltySignals,
    config: JobConfig, terms_col: str | None, held: ExitStack,
) -> UpdatedRows:
    """``assigned`` (id, cluster, confidence, second_cluster, ...: the old model's labels) as the model ``assigner``
    (``signals``) updated by ``update`` labels it (with_new_topics; ``rows`` as find_new takes them).

    A new topic that fewer than ``update.min_topic_rows`` rows join is dropped and the rows are labelled again
    without it: its sampled rows formed a group in the embedding, but the rows among them there lie elsewhere in
    their terms. The topics left are numbered after the model's again. Labelled rows stay persisted until
    ``held`` closes.
    """
    discarded = None
    while True:
        if discarded is not None:
            discarded.unpersist()
        updated, updated_signals = update.assigner(assigner), update.calibration(signals, assigner)
        labelled = with_new_topics(assigned, rows, update, updated, updated_signals.terms, terms_col)
        topic_ids, joined = update.topics.topic_ids, {}
        if topic_ids:
            labelled = discarded = persisted(held, labelled)
            counts = labelled.filter(F.col(CLUSTER_COL).isin(topic_ids)).groupBy(CLUSTER_COL).count().collect()
            joined = {int(row[CLUSTER_COL]): int(row["count"]) for row in counts}
        dropped = [topic for topic in topic_ids if joined.get(topic, 0) < config.update.min_topic_rows]
        if not dropped:
            return UpdatedRows(labelled, update, updated, updated_signals, {topic: joined[topic] for topic in topic_ids})
        log.info("update: %d new topics kept fewer than update.min_topic_rows rows once checked in the terms; labelling again without them", len(dropped))
        update = update.without(dropped)


@dataclass(frozen=True)
class NewTopics:
    """The topics an update found: the model's added topics with them (None if it has none), and what run.json says of them."""

    added: AddedTopics | None
    topic_ids: list[int]
    about: dict
    # The new topics' sampled rows in the terms space, where novelty is measured there (model/novelty.py), and their topics.
    known_terms: sp.csr_matrix | None = None
    known_terms_topics: np.ndarray | None = None

    def without(self, dropped: list[int]) -> NewTopics:
        """These topics less ``dropped``, the others numbered from the first new id again."""
        kept = [topic for topic in self.topic_ids if topic not in dropped]
        ids = {topic: (self.topic_ids[0] + kept.index(topic) if topic in kept else None) for topic in self.topic_ids}
        known_terms = topics = None
        if self.known_terms is not None:
            stays = np.isin(self.known_terms_topics, kept)
            known_terms = self.known_terms[stays]
            topics = np.array([ids[int(topic)] for topic in self.known_terms_topics[stays]], np.int32)
        about = {**self.about, "found": len(kept), "too_few_rows_joined": self.about.get("too_few_rows_joined", 0) + len(dropped)}
        if not kept:
            about["why_none"] = "no cluster of novel rows kept update.min_topic_rows rows once each row's terms were checked too"
        return NewTopics(self.added.renumbered(ids), [ids[topic] for topic in kept], about, known_terms, topics)


def new_topics(
    novel_rows: DataFrame, n_novel: int, n_rows: int, assigner: ClusterAssigner, signals: NoveltySignals, config: JobConfig,
    terms_col: str | None, training_oov: float | None = None,
) -> NewTopics:
    """Topics among ``novel_rows`` (id, embedding, the old model's cluster and confidence; ``n_novel`` of the update's
    ``n_rows``), fitted as the model's were, on a sample of them.

    A seeded sample of at most ``manifold.fit_rows`` novel rows gets its own UMAP and the model's
    clusterer settings (``k: auto`` chooses its k). A cluster becomes a topic only when it is
    a group of its own and stands for at least ``update.min_topic_rows`` novel rows. A group of
    its own: among its rows' nearest rows in the embedding (the model's known rows and the sampled
    novel rows), the novel rows weigh more than the known ones once each is weighed by the share of
    its data it stands for (novel_row_weight): where the new data's novel rows are denser than the
    training data, not merely than the model's sample of it. Rows novel by chance (about 1 -
    ``update.novelty_quantile`` of the rows of known topics) lie among known rows and form no such
    group, whatever the sizes of the new data and the model's sample; nor does a known topic grown
    (KnownTopicGrown). New topics are numbered
    after the model's. Where the model measures novelty in the terms too (``terms_col``: the rows'
    count vectors) the new topics' rows are also kept in their terms, as known rows for the next update.
    """
    previous = assigner.added
    neighbours, metric = signals.embedding.neighbours, config.manifold.metric
    about: dict = {"novel_rows": n_novel, "min_topic_rows": config.update.min_topic_rows}
    if n_novel < config.update.min_topic_rows:
        return NewTopics(previous, [], {**about, "found": 0, "why_none": "fewer novel rows than update.min_topic_rows"})
    # One pass for the sample's embeddings, the old model's labels and, where novelty is measured in the terms,
    # its terms (kept below).
    columns = [EMBEDDING_COL, CLUSTER_COL, CONFIDENCE_COL] + ([terms_col, WORD_COUNT_COL] if signals.terms is not None else [])
    _, sampled = collect_columns(novel_rows, columns, config.manifold.fit_rows, config.manifold.seed)
    points = sampled[EMBEDDING_COL]
    try:
        check_enough_rows(len(points), config.cluster)
    except InputError as error:
        return NewTopics(previous, [], {**about, "found": 0, "why_none": str(error)})
    _, coordinates = fit_manifold(points, config.manifold, stage="new topics")
    _, labels = fit_clusters(coordinates, config.cluster)
    weight = novel_row_weight(n_novel, len(points), n_rows, len(assigner.fit_rows))
    shares = novel_weight_shares(points, labels, assigner.known_rows, weight, neighbours, metric)
    grown = None
    if signals.terms is not None and training_oov is not None:
        grown = KnownTopicGrown.of_sample(sampled, terms_col, assigner, training_oov, config.update.retrain_oov_rise)
    rows_per_sampled = n_novel / len(points)
    candidates, kept = [], []
    for label, share in shares.items():
        members = labels == label
        size = int(round(members.sum() * rows_per_sampled))
        candidate = {"rows": size, "novel_weight_share": round(share, 3)}
        if grown is not None:
            candidate.update(grown.about(members))
        candidates.append(candidate)
        if share > 0.5 and size >= config.update.min_topic_rows and not candidate.get("a_known_topic_grown", False):
            kept.append(label)
    about = {**about, "sampled": len(points), "novel_row_weight": round(weight, 4), "candidates": candidates, "found": len(kept)}
    if not kept:
        return NewTopics(previous, [], {**about, "why_none": "no cluster of novel rows is a group of its own"})
    next_topic = next_topic_id(assigner)
    topic_ids = [next_topic + i for i in range(len(kept))]
    in_topic = np.flatnonzero(np.isin(labels, kept))
    topics = np.zeros(len(labels), np.int32)
    for label, topic in zip(kept, topic_ids):
        topics[labels == label] = topic
    added, stored = added_within(
        previous, points[in_topic], topics[in_topic], len(assigner.fit_rows), config.manifold.seed, neighbours, metric,
    )
    # The new topics' rows the model keeps, in the terms too.
    kept_rows = in_topic[stored]
    known_terms = known_terms_topics = None
    if signals.terms is not None:
        known_terms = term_points(sampled[terms_col][kept_rows], sampled[WORD_COUNT_COL][kept_rows], signals.terms.idf)
        known_terms_topics = topics[kept_rows]
    log.info("update: %d new topics from %d novel rows (%d sampled)", len(kept), n_novel, len(points))
    return NewTopics(added, topic_ids, about, known_terms, known_terms_topics)


def added_within(
    previous: AddedTopics | None, rows: np.ndarray, topics: np.ndarray, most_rows: int, seed: int, neighbours: int, metric: str,
) -> tuple[AddedTopics, np.ndarray]:
    """``previous`` (an earlier update's added topics, or None) with the new ``topics``' ``rows`` appended, at most
    ``most_rows`` rows in all (AddedTopics.within: the model's fit rows' count, so that an assign never searches
    more than twice them however many updates came before); and which of ``rows`` were kept, in the order stored.

    The new rows are stored in a seeded order, so that the first rows of a topic, which ``within`` keeps here and
    at every later update, are a random part of it; an earlier topic cut later keeps a part of what it had."""
    order = np.random.default_rng(seed).permutation(len(rows))
    appended = AddedTopics.appended(previous, rows[order], topics[order], neighbours, metric)
    added, kept = appended.within(most_rows)
    return added, order[kept[len(appended.topics) - len(rows):]]


@dataclass(frozen=True)
class KnownTopicGrown:
    """Whether a group of sampled novel rows is a known topic grown rather than a new one.

    Novelty compares densities, so a known topic that is a larger share of the new data than of
    the training data has novel rows enough to form groups: new data half horror (a seventh of the
    training data) made five "new" topics of horror rows (BENCHMARKS.md, "A known topic grown").
    Such a group is that topic grown when the old model puts at least ``SAME_TOPIC`` of its rows in
    one of its topics, as surely as its own rows (median confidence at least ``AS_SURE`` of its fit
    rows' median), and its words are no more outside the vocabulary than the training data's
    (a rise of at most ``update.retrain_oov_rise``). The words matter: a model with few topics puts
    a new subject's rows in one of them as surely (AG News's 5-topic model, Sci/Tech in one), but
    their words are not the training data's (a third outside the vocabulary, against 14%).
    """

    labels: np.ndarray
    confidence: np.ndarray
    typical_confidence: float
    words: np.ndarray
    known_words: np.ndarray
    training_oov: float
    oov_rise: float

    SAME_TOPIC = 0.9
    AS_SURE = 0.75

    @classmethod
    def of_sample(cls, sampled: dict, terms_col: str, assigner: ClusterAssigner, training_oov: float, oov_rise: float) -> KnownTopicGrown:
        """From new_topics' sample (the old model's cluster and confidence, the count vectors and word counts)."""
        coordinates = assigner.reducer.embedding_
        fit_confidence, _ = assigner.clusters.confidence(coordinates, assigner.clusters.predict(coordinates))
        return cls(
            sampled[CLUSTER_COL].astype(np.int32), sampled[CONFIDENCE_COL].astype(np.float32), float(np.median(fit_confidence)),
            sampled[WORD_COUNT_COL].astype(np.float64), np.asarray(sampled[terms_col].sum(axis=1), np.float64).ravel(),
            training_oov, oov_rise,
        )

    def about(self, members: np.ndarray) -> dict:
        """What run.json says of a group (``members`` of the sample), with ``a_known_topic_grown``."""
        _, counts = np.unique(self.labels[members], return_counts=True)
        top_share, confidence = counts.max() / members.sum(), float(np.median(self.confidence[members]))
        words = self.words[members].sum()
        oov = 1.0 - self.known_words[members].sum() / words if words else 0.0
        grown = (
            top_share >= self.SAME_TOPIC and confidence >= self.AS_SURE * self.typical_confidence
            and oov - self.training_oov <= self.oov_rise
        )
        return {
            "old_topic_share": round(float(top_share), 3), "old_confidence": round(confidence, 3),
            "out_of_vocabulary_share": round(float(oov), 3), "a_known_topic_grown": bool(grown),
        }


def novel_row_weight(n_novel: int, n_sampled: int, n_rows: int, n_fit: int) -> float:
    """What a sampled novel row weighs against a known row: the share of the new data's ``n_rows`` it stands for
    (``n_novel`` / ``n_sampled`` rows) over the share of the training data a fit row stands for (one of the
    model's ``n_fit``, a uniform sample of it). Unweighed, a million new rows against a 100,000-row model's
    sample made the chance-novel rows of a known genre dense enough to pass for a group (BENCHMARKS.md,
    "The group test weighed by the data's sizes"). The rows of topics earlier updates added weigh as fit
    rows: more than the share of their own update's data they stand for, so near those topics a group
    must be denser to pass, rather than a known topic's outliers passing more easily everywhere else."""
    return (n_novel / n_sampled / n_rows) * n_fit


def novel_weight_shares(
    points: np.ndarray, labels: np.ndarray, known: np.ndarray, weight: float, neighbours: int, metric: str,
) -> dict[int, float]:
    """For each cluster of ``labels`` (the sampled novel ``points``' clusters, noise left out): the novel rows'
    share of its rows' nearest rows among ``known`` and the other points, each novel row weighing ``weight``."""
    from sklearn.neighbors import NearestNeighbors

    pool = np.vstack([known, points])
    k = min(neighbours, len(pool) - 1)
    _, nearest = NearestNeighbors(algorithm="brute", metric=metric).fit(pool).kneighbors(points, n_neighbors=k + 1)
    # The first neighbour is the row itself (or a copy of it): left out.
    novel = (nearest[:, 1:] >= len(known)).sum(axis=1)
    shares = {}
    for label in np.unique(labels[labels != NOISE]):
        members = labels == label
        novel_mass = weight * novel[members].sum()
        shares[int(label)] = float(novel_mass / (novel_mass + k * members.sum() - novel[members].sum()))
    return shares


def with_new_topics(
    assigned: DataFrame, rows: DataFrame, update: Update, updated: ClusterAssigner, terms: NoveltyCalibration | None,
    terms_col: str | None,
) -> DataFrame:
    """``assigned`` (id, cluster, confidence, second_cluster, ...) as the updated model labels it: only novel rows
    may join a new topic; every other row keeps the old model's label. ``rows``: id, embedding, and where
    ``terms`` (the updated model's calibration in the terms space) is given, ``terms_col`` and the word count."""
    if not update.topics.topic_ids:
        return assigned
    columns = [ID_COL, EMBEDDING_COL] + ([terms_col, WORD_COUNT_COL] if terms is not None else [])
    novel_rows = assigned.join(update.novel_ids, ID_COL).join(rows.select(*columns), ID_COL)
    moved = relabelled(novel_rows, updated, terms, terms_col, update.topics.topic_ids).drop(EMBEDDING_COL)
    return assigned.join(update.novel_ids, ID_COL, "left_anti").unionByName(moved)


def relabelled(
    rows: DataFrame, assigner: ClusterAssigner, terms: NoveltyCalibration | None, terms_col: str | None, new_topics: list[int],
) -> DataFrame:
    """``rows`` (id, embedding, cluster, confidence, second_cluster) with those that join one of ``new_topics`` (this
    update's, among ``assigner.added``) relabelled, less ``terms_col`` and the word count.

    A row the updated model would put in a topic an earlier update added keeps the old model's label: the old
    model had that topic already and did not give it, and an update moves a row into its own new topics only.

    Where ``terms`` counts the rows of added topics among its known rows, a row the embedding moves to an
    added topic joins it only if more than half of its nearest known rows in its terms (``terms_col``, the word
    count) are rows of added topics too: a row with few words of its own topic can sit among a new topic's rows
    in the embedding, but its terms still lie among its topic's (on the synthetic corpus, 5.6% of the nearest rows
    in the terms of such rows were new topics' rows, against 99.9% for rows of the withheld genre: BENCHMARKS.md,
    "New rows told as groups").
    """
    # Built once here, not in every batch.
    added, known = assigner.added, assigner.known_rows
    width = known.shape[1]
    check_terms = checks_terms(assigner, terms)
    vote = terms_vote_neighbours(assigner, terms) if check_terms else 0
    # The count vectors go no further: a batch hands them over as dicts, which Spark would not take back as vectors.
    dropped = [terms_col, WORD_COUNT_COL] if terms is not None else []

    def relabel(batches):
        for batch in batches:
            embeddings = dense_rows(batch[EMBEDDING_COL].to_numpy(), width)
            given = Assignment(
                np.zeros((len(batch), 0), np.float32), batch[CLUSTER_COL].to_numpy(np.int32),
                batch[CONFIDENCE_COL].to_numpy(np.float32), batch[SECOND_CLUSTER_COL].to_numpy(np.int32),
            )
            with threadpool_limits(1):
                result = added.relabel(given, embeddings, known)
                joins = (result.labels != given.labels) & np.isin(result.labels, new_topics)
                if check_terms and joins.any():
                    moved = np.flatnonzero(joins)
                    joins[moved] = _lie_among_added_in_terms(batch.iloc[moved], terms, terms_col, vote)
            yield batch.drop(columns=dropped).assign(**{
                CLUSTER_COL: np.where(joins, result.labels, given.labels),
                CONFIDENCE_COL: np.where(joins, result.confidence, given.confidence),
                SECOND_CLUSTER_COL: np.where(joins, result.second, given.second),
            })

    schema = T.StructType([field for field in rows.schema.fields if field.name not in dropped])
    return rows.mapInPandas(relabel, schema)


def _lie_among_added_in_terms(batch: pd.DataFrame, terms: NoveltyCalibration, terms_col: str, neighbours: int) -> np.ndarray:
    """For each row of ``batch``: are more than half of its ``neighbours`` nearest known rows in its terms rows of added topics?"""
    return terms.added_neighbour_share(_batch_term_points(batch, terms_col, terms.idf), neighbours) > 0.5


def checks_terms(assigner: ClusterAssigner, terms: NoveltyCalibration | None) -> bool:
    """Whether a row of a topic updates added must lie among added topics' rows in its terms too: where the model
    has added topics and counts which of its terms' known rows are theirs."""
    return assigner.added is not None and terms is not None and terms.training_known_rows is not None


def terms_vote_neighbours(assigner: ClusterAssigner, terms: NoveltyCalibration) -> int:
    """How many nearest known rows in the terms vote on a row joining an added topic.

    The terms' known rows are a sample of the embedding's, training rows and added topics' rows alike
    (NoveltySignals.with_known): where they are a tenth of them, a row's 15 nearest stand for about its
    150 nearest in the embedding, and a topic of 50 rows could never be most of them. So the vote takes
    the embedding vote's k times that rate, at least 5.
    """
    rate = terms.training_known_rows / len(assigner.fit_rows)
    k = assigner.added.neighbours
    return int(min(k, max(5, round(k * rate))))


def with_added_topics_checked(
    assigned: DataFrame, vectors: DataFrame, terms_col: str, assigner: ClusterAssigner, novelty: NoveltySignals | None,
) -> DataFrame:
    """``assigned`` as ``checked_in_terms`` gives it where the model ``assigner`` (``novelty``) ``checks_terms``; else as it is."""
    terms = novelty.terms if novelty is not None else None
    return checked_in_terms(assigned, vectors, terms_col, assigner, terms) if checks_terms(assigner, terms) else assigned


def checked_in_terms(assigned: DataFrame, vectors: DataFrame, terms_col: str, assigner: ClusterAssigner, terms: NoveltyCalibration) -> DataFrame:
    """``assigned`` (rows/assign.py's assignment_schema: the updated model's ``assigner`` placed them) with the rows
    the embedding put in an added topic but whose terms lie elsewhere (``relabelled``) given the label the
    model had before its updates, from their UMAP coordinates. ``vectors``: id, ``terms_col`` and the word
    count of (at least) every row of ``assigned``. Only where ``checks_terms``.

    Every row is joined with its terms rather than only those in added topics: a filter on ``assigned``
    would run its UDF a second time where it is not persisted (the estimator's transform)."""
    clusters, vote = assigner.clusters, terms_vote_neighbours(assigner, terms)
    added_topics = np.unique(assigner.added.topics)
    rows = assigned.join(vectors.select(ID_COL, terms_col, WORD_COUNT_COL), ID_COL, "left")

    def check(batches):
        for batch in batches:
            back = np.flatnonzero(np.isin(batch[CLUSTER_COL].to_numpy(), added_topics))
            labels, confidence, second = (batch[column].to_numpy().copy() for column in (CLUSTER_COL, CONFIDENCE_COL, SECOND_CLUSTER_COL))
            if len(back):
                with threadpool_limits(1):
                    back = back[~_lie_among_added_in_terms(batch.iloc[back], terms, terms_col, vote)]
            if len(back):
                coordinates = np.stack(batch[UMAP_COL].to_numpy()[back]).astype(np.float32)
                original = clusters.predict(coordinates)
                labels[back] = original
                confidence[back], second[back] = clusters.confidence(coordinates, original)
            yield batch.drop(columns=[terms_col, WORD_COUNT_COL]).assign(
                **{CLUSTER_COL: labels, CONFIDENCE_COL: confidence, SECOND_CLUSTER_COL: second}
            )

    return rows.mapInPandas(check, assigned.schema)


def next_topic_id(assigner: ClusterAssigner) -> int:
    """The first id after every topic the model has."""
    ids = [int(i) for i in (assigner.clusters.topic_ids if assigner.clusters.topic_ids is not None else [])]
    if assigner.added is not None and len(assigner.added.topics):
        ids.append(int(assigner.added.topics.max()))
    return max(ids, default=-1) + 1

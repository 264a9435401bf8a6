"""The evaluate stage's Spark side: the fit sample's rows fetched back for scoring, the scores counted
by Spark (agreement with a label column, topic coherence), and the rows drawn on the report's map.

evaluation/baselines.py scores arrays on the driver; this module gets them there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.core.columns import CLUSTER_COL, ID_COL, NOISE, REASON_COL, quoted
from n2d_spark.core.config import JobConfig
from n2d_spark.core.metrics import (
    NPMI_WINDOW,
    npmi_from_counts,
    table_agreement,
    topic_diversity,
    topic_terms,
)
from n2d_spark.evaluation.baselines import Baselines, compare_baselines, stability
from n2d_spark.evaluation.report_views import HOVER_CHARS
from n2d_spark.model.encoder import EmbeddingModel
from n2d_spark.rows.embed import dense_rows
from n2d_spark.rows.neighbours import NEIGHBOUR_COL, RANK_COL, SIMILARITY_COL
from n2d_spark.rows.sampling import rows_to_csr
from n2d_spark.rows.text import count_term_windows
from n2d_spark.rows.vectorize import Featurized

# Rows without a known class are scored as one class of their own.
_NULL_CLASS = "<null>"
# The label column under a name of ours while it is counted (its own may need quoting).
_LABEL = "_label"


@dataclass(frozen=True)
class FitEvaluation:
    """The evaluate stage's result: the fit rows' classes, the baselines and the stability score, each where asked for."""

    classes: np.ndarray | None
    baselines: Baselines | None
    stability: dict | None


def evaluate_fit(
    embedded_rows: DataFrame, vectors: DataFrame, features: Featurized, label_col: str | None,
    fit_ids: np.ndarray, fit_embeddings: np.ndarray, fit_labels: np.ndarray,
    sample: sp.csr_matrix | np.ndarray, model: EmbeddingModel, config: JobConfig,
) -> FitEvaluation:
    """The fit rows' classes (``label_col``), then ``evaluate.baselines`` and ``evaluate.stability`` on the fit sample."""
    classes = None
    if label_col:
        classes = np.array([_class_of(r[label_col]) for r in _collect_for_ids(embedded_rows, fit_ids, [label_col])])
    baselines = None
    if config.evaluate.baselines or config.evaluate.stability:
        fit_inputs = _as_matrix(_collect_for_ids(vectors, fit_ids, [features.column]), features.column)
    if config.evaluate.baselines:
        baselines = compare_baselines(model.scaler.transform(fit_inputs), fit_embeddings, fit_labels, classes, config)
    scores = stability(sample, fit_inputs, fit_labels, model, config) if config.evaluate.stability else None
    return FitEvaluation(classes=classes, baselines=baselines, stability=scores)


def label_agreement(assigned: DataFrame, embedded: DataFrame, label_col: str) -> dict:
    """Scores against ``label_col`` from a contingency table counted by Spark (null labels form a class)."""
    label = F.coalesce(F.col(quoted(label_col)).cast("string"), F.lit(_NULL_CLASS)).alias(_LABEL)
    counts = (
        assigned.join(embedded.select(ID_COL, label), on=ID_COL)
        .groupBy(_LABEL, CLUSTER_COL)
        .count()
        .toPandas()
    )
    table = counts.pivot(index=_LABEL, columns=CLUSTER_COL, values="count").fillna(0)
    noise = table[NOISE].sum() / table.to_numpy().sum() if NOISE in table.columns else 0.0
    return table_agreement(table.to_numpy(), float(noise))


def topic_quality(config: JobConfig, vectors: DataFrame, features: Featurized, summary: pd.DataFrame) -> dict | None:
    """Each cluster's NPMI (into ``summary``), and the run's mean NPMI and topic diversity, noise left out.

    Text mode only: counted over the terms of ``evaluate.coherence_rows`` usable rows (a seeded sample).
    """
    summary["coherence"] = None
    if features.text_model is None:
        return None
    usable = vectors.filter(F.col(REASON_COL).isNull())
    topic_lists = summary["top_terms"].tolist()
    top = config.output.top_terms
    counts = count_term_windows(features.text_model, usable, config.evaluate.coherence_rows, config.cluster.seed, topic_terms(topic_lists))
    summary["coherence"] = npmi_from_counts(counts, topic_lists)
    topics = summary[summary[CLUSTER_COL] != NOISE]
    scores = [c for c in topics["coherence"] if c is not None]
    return {
        "npmi": float(np.mean(scores)) if scores else None,
        "diversity": topic_diversity(topics["top_terms"].tolist(), top),
        "documents": counts.n_documents,
        "definition": (
            f"NPMI of each topic's top {top} terms in boolean sliding windows of "
            f"{NPMI_WINDOW} terms over {counts.n_documents} sampled documents (gensim's c_npmi), averaged over "
            f"topics; diversity: unique terms among all topics' top {top} / "
            f"({top} x topics); noise left out of both"
        ),
    }


def map_sample(n_rows: int, config: JobConfig) -> np.ndarray:
    """Positions of the fit rows drawn on the report's maps: a seeded sample, in id order."""
    picked = np.random.default_rng(config.manifold.seed).permutation(n_rows)[: config.evaluate.map_rows]
    return np.sort(picked)


def texts_for_ids(vectors: DataFrame, ids: np.ndarray, features: Featurized) -> list[str] | None:
    """The start of each row's text, in the order of ``ids`` (text mode; None in vector mode): the map's hover texts."""
    if features.vocabulary is None:
        return None
    # Twice what a hover label shows: runs of whitespace collapse before it is cut.
    text = F.substring(F.col(quoted(features.source)), 1, 2 * HOVER_CHARS).alias(features.source)
    by_id = {row[ID_COL]: row[features.source] or "" for row in _collect_for_ids(vectors.select(ID_COL, text), ids, [features.source])}
    return [by_id[i] for i in ids.tolist()]


def nearest_for_ids(neighbours: DataFrame, vectors: DataFrame, ids: np.ndarray, features: Featurized, per_row: int) -> list[list[tuple]]:
    """For each of ``ids`` (the map's rows), its ``per_row`` most similar rows from ``neighbours``
    (neighbours/): (id, similarity, the start of its text, or None in vector mode), best first."""
    found = _collect_for_ids(neighbours.filter(F.col(RANK_COL) <= per_row), ids, [NEIGHBOUR_COL, RANK_COL, SIMILARITY_COL])
    by_id: dict = {}
    for row in sorted(found, key=lambda r: (r[ID_COL], r[RANK_COL])):
        by_id.setdefault(row[ID_COL], []).append((row[NEIGHBOUR_COL], float(row[SIMILARITY_COL])))
    wanted = np.array(sorted({n for pairs in by_id.values() for n, _ in pairs}))
    texts = dict(zip(wanted.tolist(), texts_for_ids(vectors, wanted, features) or [None] * len(wanted))) if len(wanted) else {}
    return [[(n, similarity, texts.get(n)) for n, similarity in by_id.get(i, [])] for i in ids.tolist()]


def _collect_for_ids(rows: DataFrame, ids: np.ndarray, columns: list[str]) -> list:
    """The rows of ``rows`` whose id is in ``ids`` (a driver-side sample), with ``columns``, in id order."""
    spark = rows.sparkSession
    wanted = spark.createDataFrame(pd.DataFrame({ID_COL: ids}), T.StructType([rows.schema[ID_COL]]))
    picked = rows.join(F.broadcast(wanted), on=ID_COL, how="left_semi").select(ID_COL, *[F.col(quoted(c)) for c in columns]).collect()
    picked.sort(key=lambda row: row[ID_COL])
    return picked


def _as_matrix(rows: list, column: str):
    if rows and not isinstance(rows[0][column], (list, np.ndarray)):
        return rows_to_csr(rows, column)
    return dense_rows([row[column] for row in rows], None)


def _class_of(value) -> str:
    return _NULL_CLASS if value is None else str(value)

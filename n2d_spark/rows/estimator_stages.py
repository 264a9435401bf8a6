"""Fit on, and label, a DataFrame the caller already has: the work behind ``N2D`` and ``N2DModel``.

The stages are the job's (featurize; the fit of rows/fit.py: autoencoder, embed, manifold, cluster;
assign); what differs is where the rows come from and go. Nothing here reads or writes files.

Row ids. The stages rank their seeded samples by a hash of the row id (``collect_sample``) and
give each row its assign batch, and its place in that batch, by its id (rows/assign.py): the id must
come out the same every time Spark recomputes the DataFrame, whatever its partitioning. A file
read by the job has such an id (rows/read.py: the file and the row's position in it); an arbitrary
DataFrame has none, and ``monotonically_increasing_id`` will not do: it encodes the partition and
the row's place in it, which change with the plan and between recomputations. So:

- ``idCol`` given: its values are the ids, as ``input.id_col`` is for the job. A row with a null
  id is rejected (``null_id``), and so is every row of an id that occurs more than once
  (``duplicate_id``).
- no ``idCol``: a row's id is the MD5 of its input value (a vector's: of its text form), and rows
  with the same value are one row to the model, fitted once and labelled once: every copy gets
  the same label. A row's label is then a function of its value and of the set of distinct values
  transformed with it, never of partitioning or row order. A null value has the id "".
"""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.core.columns import (
    CLUSTER_COL, CONFIDENCE_COL, EMBEDDING_COL, ID_COL, NOISE, REASON_COL, SECOND_CLUSTER_COL, UMAP_COL, WORD_COUNT_COL, quoted,
)
from n2d_spark.core.config import JobConfig
from n2d_spark.core.errors import InputError
from n2d_spark.core.resources import persisted
from n2d_spark.model.assigner import ClusterAssigner
from n2d_spark.model.encoder import EmbeddingModel
from n2d_spark.model.novelty import NoveltySignals
from n2d_spark.model.text_vocabulary import TextVocabulary
from n2d_spark.model.topics import ModelTopics, Topic
from n2d_spark.rows.assign import assign_batches, batch_count
from n2d_spark.rows.embed import embed
from n2d_spark.rows.fit import fit_model
from n2d_spark.rows.rejects import COPIES_COL, NO_VOCABULARY_TERMS, NULL_ID, RejectTally, with_input_reason
from n2d_spark.rows.update import with_added_topics_checked
from n2d_spark.rows.vectorize import check_usable, featurize, out_of_vocabulary_share

# Added by transform beside the output column (named by outputCol).
REJECT_REASON_COL = "reject_reason"
# Internal columns; an input that has one is refused.
_KEY = "_n2d_key"
_LABELS = {name: f"_n2d_{name}" for name in (CLUSTER_COL, UMAP_COL, CONFIDENCE_COL, SECOND_CLUSTER_COL, EMBEDDING_COL, REASON_COL)}
# The assignment's columns after the cluster, in the estimator's output under their own names.
_PLACED = (UMAP_COL, CONFIDENCE_COL, SECOND_CLUSTER_COL)


@dataclass(frozen=True)
class FittedN2D:
    """What a fit produces and a saved model holds (model/bundle.py saves and loads these parts)."""

    config: JobConfig
    embedding_model: EmbeddingModel
    assigner: ClusterAssigner
    # None in vector mode (config.input.features_col set).
    learned_text: TextVocabulary | None
    # The bundle's id once saved or loaded; None for a model fitted in this session and not saved.
    model_id: str | None = None
    # Its topics (a fit's unnamed: only the job names a training run's; an update names those it adds) and
    # novelty calibration (model/topics.py, model/novelty.py);
    # None for a model loaded from a bundle older than format 4.
    topics: ModelTopics | None = None
    novelty: NoveltySignals | None = None
    # The model an update started from.
    parent_model_id: str | None = None

    @property
    def source_col(self) -> str:
        """The name the model's input column had at fit time (its text pipeline reads that name)."""
        return self.config.input.features_col or self.config.input.text_col


def fit_frame(df: DataFrame, config: JobConfig) -> FittedN2D:
    """Vectorize ``df``, then fit the autoencoder, UMAP and the clusterer as the job does (rows/fit.py).

    The input column and the id column are ``config.input``'s (features_col or text_col; id_col).
    Rows the model cannot use are left out; more than ``input.max_reject_share`` of them is an error.
    """
    source = config.input.features_col or config.input.text_col
    check_input(df, source, config.input.id_col, [])
    with ExitStack() as held:
        keyed = df.select(row_key(df, source, config.input.id_col).alias(_KEY), _column(source))
        rows = persisted(held, _working_rows(keyed, source, config))
        if config.input.id_col is None:
            # Rows of equal value are one working row: rejects count the input rows they stand for.
            copies = persisted(held, keyed.groupBy(F.col(_KEY).alias(ID_COL)).agg(F.count(F.lit(1)).alias(COPIES_COL)))
            n_rows = copies.agg(F.sum(COPIES_COL)).first()[0] or 0
            tally = RejectTally(rows_in=n_rows, max_share=config.input.max_reject_share, copies=copies)
        else:
            tally = RejectTally(rows_in=rows.count(), max_share=config.input.max_reject_share)
        if tally.rows_in == 0:
            raise InputError("the DataFrame has no rows to fit on")
        with ExitStack() as tokens:  # the new text fit's tokens, until the tally has cached the vectors
            features = featurize(rows, config, held=tokens)
            vectors = persisted(held, features.rows)
            tally.add_reasons(vectors)
        check_usable(tally.rows_in - tally.total, features, config)
        usable = vectors.filter(F.col(REASON_COL).isNull())
        fit = fit_model(usable, features, config, tally, held)
        topics = fit_sample_topics(fit.fit_labels, out_of_vocabulary_share(usable, features))
    return FittedN2D(config, fit.embedding_model, fit.assigner, features.learned_text, topics=topics, novelty=fit.novelty)


def fit_sample_topics(labels: np.ndarray, out_of_vocabulary_share: float | None) -> ModelTopics:
    """The topics of the fit sample's ``labels``, each with its share of the sample (noise is no topic); unnamed."""
    clusters, counts = np.unique(labels, return_counts=True)
    return ModelTopics(
        tuple(Topic(int(c), None, (), int(n) / len(labels)) for c, n in zip(clusters, counts) if c != NOISE),
        out_of_vocabulary_share,
    )


def label_frame(
    df: DataFrame, fitted: FittedN2D, *,
    input_col: str, output_col: str, id_col: str | None, with_embedding: bool,
) -> DataFrame:
    """``df`` with ``output_col`` (the cluster), ``umap``, ``confidence``, ``second_cluster``, optionally
    ``embedding``, and ``reject_reason``; lazy.

    Every row of ``df`` is kept, in one output row: one the model cannot use has a null cluster and its reason.
    """
    added = [output_col, *_PLACED, *([EMBEDDING_COL] if with_embedding else []), REJECT_REASON_COL]
    check_input(df, input_col, id_col, added)
    keyed, config, rows = _keyed(df, fitted, input_col, id_col)
    encoder = fitted.embedding_model.encoder
    features = featurize(rows, config, fitted.learned_text, vector_length=encoder.input_dim)
    vectors = features.rows
    # No Spark filter on the embedding: Spark would run the embedding UDF once for the filter and
    # again for the value; assign_batches passes over rows without one (no vocabulary terms).
    embedded = embed(vectors.filter(F.col(REASON_COL).isNull()), features.column, fitted.embedding_model, config.embed.batch_rows).select(
        ID_COL, EMBEDDING_COL
    )
    n_batches = None
    if fitted.assigner.places_by_batch:
        # UMAP's transform: the number of batches depends on the count, a scalar subquery that embeds the
        # rows a second time (Spark reuses no exchange above a Python UDF planned twice).
        n_batches = batch_count(embedded.select(F.count(EMBEDDING_COL)).scalar(), config.manifold.batch_rows)
    assigned = assign_batches(embedded, fitted.assigner, n_batches, config.manifold.seed, encoder.output_dim)
    # An updated model's added topics take only rows whose terms lie among theirs too, as the job's assign does.
    assigned = with_added_topics_checked(assigned, vectors, features.column, fitted.assigner, fitted.novelty)
    reasons = vectors.select(ID_COL, REASON_COL)
    if id_col is not None:
        # Every row of a duplicated id has the reason duplicate_id: one of them stands for all.
        reasons = reasons.dropDuplicates([ID_COL])
    labels = reasons.join(assigned, on=ID_COL, how="left")
    if with_embedding:
        labels = labels.join(embedded, on=ID_COL, how="left")
    # A usable row without a cluster had nothing to embed.
    no_terms = F.when(F.col(CLUSTER_COL).isNull(), F.lit(NO_VOCABULARY_TERMS))
    labels = labels.select(
        F.col(ID_COL).alias(_KEY),
        F.coalesce(F.col(REASON_COL), no_terms).alias(_LABELS[REASON_COL]),
        *[F.col(name).alias(_LABELS[name]) for name in (CLUSTER_COL, *_PLACED, *([EMBEDDING_COL] if with_embedding else []))],
    )
    # A null id matches no label row: its reason is null_id.
    reason = F.when(F.col(_KEY).isNull(), F.lit(NULL_ID)).otherwise(F.col(_LABELS[REASON_COL]))
    return keyed.join(labels, on=_KEY, how="left").select(
        *[_column(c) for c in df.columns],
        F.col(_LABELS[CLUSTER_COL]).alias(output_col),
        *[F.col(_LABELS[name]).alias(name) for name in _PLACED],
        *([F.col(_LABELS[EMBEDDING_COL]).alias(EMBEDDING_COL)] if with_embedding else []),
        reason.alias(REJECT_REASON_COL),
    )


def embedded_frame(df: DataFrame, fitted: FittedN2D, *, input_col: str, id_col: str | None) -> DataFrame:
    """``df``'s usable rows with ``embedding``, ``label_frame``'s without its UMAP and clusterer, for what needs
    embeddings only (``N2DModel.similar``); lazy. A row with a reject reason is left out; one without a
    term of the vocabulary has a null embedding (the caller filters: label_frame says why not here)."""
    check_input(df, input_col, id_col, [EMBEDDING_COL])
    keyed, config, rows = _keyed(df, fitted, input_col, id_col)
    features = featurize(rows, config, fitted.learned_text, vector_length=fitted.embedding_model.encoder.input_dim)
    embedded = embed(features.rows.filter(F.col(REASON_COL).isNull()), features.column, fitted.embedding_model, config.embed.batch_rows)
    return keyed.join(embedded.select(F.col(ID_COL).alias(_KEY), EMBEDDING_COL), on=_KEY).select(
        *[_column(c) for c in df.columns], EMBEDDING_COL
    )


def text_rows(df: DataFrame, fitted: FittedN2D, *, input_col: str, id_col: str | None) -> DataFrame:
    """``df``'s rows as ``label_frame`` reads them: id, the input column under the model's name for it, reject reason; lazy."""
    return _keyed(df, fitted, input_col, id_col)[2]


def _keyed(df: DataFrame, fitted: FittedN2D, input_col: str, id_col: str | None) -> tuple[DataFrame, JobConfig, DataFrame]:
    """``df`` with its row key, the config its rows are read with, and its working rows (``_working_rows``)."""
    config = dataclasses.replace(fitted.config, input=dataclasses.replace(fitted.config.input, id_col=id_col))
    keyed = df.withColumn(_KEY, row_key(df, input_col, id_col))
    return keyed, config, _working_rows(keyed.select(_KEY, _column(input_col).alias(fitted.source_col)), fitted.source_col, config)


def term_rows(df: DataFrame, fitted: FittedN2D, *, input_col: str, id_col: str | None) -> tuple[DataFrame, str]:
    """The usable rows of ``df`` (a text model's input) as (id, their count vectors, word count), and the vectors' column; lazy.

    Ids as ``label_frame`` gives them: an update scores rows in their terms (model/novelty.py).
    """
    _, config, rows = _keyed(df, fitted, input_col, id_col)
    features = featurize(rows, config, fitted.learned_text, vector_length=fitted.embedding_model.encoder.input_dim)
    usable = features.rows.filter(F.col(REASON_COL).isNull())
    return usable.select(ID_COL, features.column, WORD_COUNT_COL), features.column


def row_key(df: DataFrame, input_col: str, id_col: str | None) -> Column:
    """The row id (module docstring): ``id_col``'s value, else the MD5 of the input value ("" for null)."""
    if id_col is not None:
        return _column(id_col)
    value = _column(input_col)
    dtype = df.schema[input_col].dataType
    if isinstance(dtype, VectorUDT):
        value = F.when(value.isNotNull(), vector_to_array(value, dtype="float64"))
    if not isinstance(dtype, T.StringType):
        value = value.cast(T.StringType())
    return F.coalesce(F.md5(value), F.lit(""))


def check_input(df: DataFrame, input_col: str, id_col: str | None, added: list[str]) -> None:
    """Refuse a DataFrame without the input (or id) column, or with a column the model would add."""
    columns = df.columns
    for role, name in (("input", input_col), ("id", id_col)):
        if name is not None and name not in columns:
            raise InputError(f"{role} column {name!r} not in the DataFrame; columns found: {', '.join(columns)}")
    if input_col == ID_COL:
        raise InputError(f"the input column cannot be named {ID_COL!r}; rename it first")
    taken = [name for name in (*added, _KEY, *_LABELS.values()) if name in columns]
    if taken:
        raise InputError(f"the DataFrame already has a column named {taken[0]!r}, which the model adds; rename it first")


def _working_rows(keyed: DataFrame, source: str, config: JobConfig) -> DataFrame:
    """(id, the input column under the model's name, reason): one row per id when ids are values."""
    rows = keyed.select(F.col(_KEY).alias(ID_COL), _column(source))
    if config.input.id_col is None:
        # Equal ids are equal values: whichever row is kept, the result is the same.
        rows = rows.dropDuplicates([ID_COL])
    return with_input_reason(rows, config.input)


def _column(name: str) -> Column:
    """A column by its name, even one with a dot or a backtick in it."""
    return F.col(quoted(name))

"""The job's stages over rows on the executors: read, vectorize, embed and assign; and all four with a saved model.

Each takes what the stages before it returned: ``read`` starts the reject tally that
vectorize and embed add to, and write checks the rows against (outputs/tables.py). Embed takes what
holds its rows rather than the run, and its caller times it: the fit the estimator runs too
embeds with it (rows/fit.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.core.columns import EMBEDDING_COL, ID_COL, REASON_COL, quoted
from n2d_spark.core.config import InputConfig, JobConfig
from n2d_spark.core.errors import InputError
from n2d_spark.core.progress import spark_progress
from n2d_spark.core.resources import persisted
from n2d_spark.core.run_context import Run
from n2d_spark.core.session import default_parallelism
from n2d_spark.model.assigner import Assignment, ClusterAssigner
from n2d_spark.model.bundle import ModelBundle
from n2d_spark.model.encoder import EmbeddingModel
from n2d_spark.model.text_vocabulary import TextVocabulary
from n2d_spark.rows.assign import assign, fitted_assignments
from n2d_spark.rows.embed import embed
from n2d_spark.rows.read import CORRUPT_COL, check_one_record_per_line, read_rows, resolve_format
from n2d_spark.rows.rejects import (
    NO_VOCABULARY_TERMS,
    RejectTally,
    with_input_reason,
)
from n2d_spark.rows.update import with_added_topics_checked
from n2d_spark.rows.vectorize import Featurized, check_usable, featurize

log = logging.getLogger(__name__)


@dataclass
class Input:
    """The read stage's result: every row with its input-level reject reason, persisted."""

    rows: DataFrame
    # The input's own columns, and the label column scored against, if any.
    columns: list[str]
    label_col: str | None
    # Rows read and rejected so far; the later stages add their rejects.
    tally: RejectTally


@dataclass
class Embedded:
    """The embed stage's result: usable rows with an embedding, and the ids of rows with nothing to embed."""

    rows: DataFrame
    n_rows: int
    unembedded_ids: DataFrame
    n_unembedded: int


def read(run: Run, check_columns: Callable[[T.StructType, list[str]], None] | None = None) -> Input:
    """The input with its reject reasons, persisted; its columns and the label column, if any.

    ``check_columns`` gets the input's schema and columns before a row is read (the catalog
    tables' check: outputs/catalog.py).
    """
    # Asked once: the core count is a small Spark job of its own (core/session.py).
    wanted = _partitions_wanted(run.spark)
    with run.timer.stage("read"), csv_blocks_for_every_partition(run.spark, run.input_path, run.config.input, wanted):
        rows = read_rows(run.spark, run.input_path, run.config.input)
        input_columns = [c for c in rows.columns if c != CORRUPT_COL]
        label_col = _checked_label_col(input_columns, run.config)
        if check_columns is not None:
            check_columns(rows.schema, input_columns)
        rows = run.persist(_spread(with_input_reason(rows, run.config.input), wanted))
        rows_in = rows.count()
        if rows_in == 0:
            raise InputError(f"the input has no rows: {run.input_path}")
        check_one_record_per_line(rows, run.config.input)
    return Input(rows, input_columns, label_col, RejectTally(rows_in=rows_in, max_share=run.config.input.max_reject_share))


def vectorize(
    run: Run, read_input: Input, learned_text: TextVocabulary | None, vector_length: int | None = None
) -> tuple[Featurized, DataFrame]:
    """Every row as an input vector with its reject reason (rows/vectorize.py), persisted; the read rows released.

    A saved model gives what its text model learned (``learned_text``), or in vector mode its input width (``vector_length``):
    a vector of another length is then a reject, not a failure inside the embedding UDF.
    """
    tally = read_input.tally
    # A new text fit keeps each row's tokens on disk for its two passes (text.fit_and_vectorize);
    # once the tally has counted the vectors, they are cached and the tokens can go.
    with run.timer.stage("vectorize"), ExitStack() as tokens:
        features = featurize(read_input.rows, run.config, learned_text, vector_length=vector_length, held=tokens)
        vectors = run.persist(features.rows)
        tally.add_reasons(vectors)
        read_input.rows.unpersist()
        check_usable(tally.rows_in - tally.total, features, run.config)
        log.info("vectorize: %d rows, %d rejected, %s", tally.rows_in, tally.total, features.dimension_text)
    return features, vectors


def embed_rows(
    held: ExitStack, usable: DataFrame, features: Featurized, model: EmbeddingModel, config: JobConfig, tally: RejectTally,
    label_col: str | None = None, progress: bool = False,
) -> Embedded:
    """Each usable row's embedding (and its ``label_col``), on the executors; rows with no vocabulary term are tallied as rejects.

    The rows stay persisted until ``held`` closes. ``progress`` logs the
    embedding's progress (core/progress.py), which sets and clears the thread's Spark job group.
    """
    spark = usable.sparkSession
    extra = [F.col(quoted(label_col))] if label_col else []
    # Filtered once persisted: a filter on the UDF's result before would run the UDF twice.
    embedded = persisted(held, embed(usable, features.column, model, config.embed.batch_rows).select(ID_COL, EMBEDDING_COL, *extra))
    with spark_progress(spark, "embed", tally.rows_in - tally.total) if progress else nullcontext():
        n_embedded = embedded.count()
    unembedded = embedded.filter(F.col(EMBEDDING_COL).isNull()).select(ID_COL)
    n_unembedded = unembedded.count()
    tally.add_rows(NO_VOCABULARY_TERMS, unembedded, n_unembedded)
    return Embedded(
        rows=embedded.filter(F.col(EMBEDDING_COL).isNotNull()),
        n_rows=n_embedded - n_unembedded,
        unembedded_ids=unembedded,
        n_unembedded=n_unembedded,
    )


def assign_fitted(
    run: Run, embedded: Embedded, assigner: ClusterAssigner, fit_ids: np.ndarray, fit_labels: np.ndarray, fit_coordinates: np.ndarray
) -> tuple[DataFrame, int]:
    """Training: the fit rows keep the labels the driver gave them; the rest are assigned on the executors.

    Returns the assignments, persisted, and how many rows the executors assigned.
    """
    with run.timer.stage("assign"):
        id_type = embedded.rows.schema[ID_COL].dataType
        fitted = Assignment(fit_coordinates, fit_labels, *assigner.clusters.confidence(fit_coordinates, fit_labels))
        assigned = fitted_assignments(run.spark, fit_ids, fitted, id_type)
        n_assigned = embedded.n_rows - len(fit_ids)
        if n_assigned:
            outside_fit = embedded.rows.join(F.broadcast(assigned.select(ID_COL)), on=ID_COL, how="left_anti")
            assigned = assigned.unionByName(_assign(run, outside_fit, assigner, n_assigned))
        assigned = _counted(run, assigned, n_assigned)
        log.info("assign: %d rows fitted on the driver, %d assigned on the executors", len(fit_ids), n_assigned)
    return assigned, n_assigned


def assign_all(run: Run, embedded: Embedded, bundle: ModelBundle, features: Featurized, vectors: DataFrame) -> DataFrame:
    """A saved model's run: every embedded row assigned on the executors, persisted.

    An updated model's added topics take only rows whose terms (``vectors``' ``features.column``) lie among
    theirs too (rows/update.py's checked_in_terms)."""
    with run.timer.stage("assign"):
        if embedded.n_rows == 0:
            raise InputError("no row of the input has anything to embed with this model's vocabulary")
        assigned = _assign(run, embedded.rows, bundle.assigner, embedded.n_rows)
        assigned = with_added_topics_checked(assigned, vectors, features.column, bundle.assigner, bundle.novelty)
        return _counted(run, assigned, embedded.n_rows)


@dataclass
class Labelled:
    """A saved model's labels of a run's input (``assign`` and ``update``): the rows read, their vectors, embeddings and assignments."""

    input: Input
    features: Featurized
    vectors: DataFrame
    embedded: Embedded
    assigned: DataFrame


def label_with(run: Run, bundle: ModelBundle, check_columns: Callable[[T.StructType, list[str]], None] | None = None) -> Labelled:
    """Read, vectorize (the model's vocabulary), embed (its encoder) and assign (its UMAP and clusterer) every row."""
    read_input = read(run, check_columns)
    features, vectors = vectorize(
        run, read_input, learned_text=bundle.learned_text, vector_length=bundle.embedding_model.encoder.input_dim
    )
    with run.timer.stage("embed"):
        embedded = embed_rows(
            run.cached, vectors.filter(F.col(REASON_COL).isNull()), features, bundle.embedding_model, run.config,
            read_input.tally, read_input.label_col, progress=True,
        )
    return Labelled(read_input, features, vectors, embedded, assign_all(run, embedded, bundle, features, vectors))


def _assign(run: Run, rows: DataFrame, assigner: ClusterAssigner, n_rows: int) -> DataFrame:
    return assign(rows, assigner, n_rows, run.config.manifold.batch_rows, run.config.manifold.seed)


def _counted(run: Run, assigned: DataFrame, n_assigned: int) -> DataFrame:
    """``assigned`` persisted and computed, with progress over the ``n_assigned`` rows the executors place."""
    assigned = run.persist(assigned)
    with spark_progress(run.spark, "assign", n_assigned):
        assigned.count()
    return assigned


def _partitions_wanted(spark: SparkSession) -> int:
    """At least one partition per core, and no fewer than ``spark.sql.shuffle.partitions``: a
    million reviews in two partitions of half a million each ran the 4 GiB JVM out of heap
    while caching them."""
    return max(default_parallelism(spark), int(spark.conf.get("spark.sql.shuffle.partitions")))


def _spread(rows: DataFrame, wanted: int) -> DataFrame:
    """Hash-partition by id when the input has fewer partitions than ``wanted`` (``_partitions_wanted``; a .gz file is read as one)."""
    if rows.rdd.getNumPartitions() >= wanted:
        return rows
    return rows.repartition(wanted, ID_COL)


@contextmanager
def csv_blocks_for_every_partition(spark: SparkSession, path: str, config: InputConfig, wanted: int) -> Iterator[None]:
    """While the read stage runs, a one-record-per-line CSV splits into ``wanted`` blocks, as many as _spread wants.

    Spark cuts a splittable file into blocks of at most ``spark.sql.files.maxPartitionBytes``,
    smaller when ``spark.sql.files.minPartitionNum`` asks for more; a CSV file's blocks are even,
    so the read itself spreads the rows and _spread needs no shuffle (10 s of a 27 s read of
    1,000,000 rows: BENCHMARKS.md, "Reading a large input"). A Parquet file splits only at its row
    groups, and blocks beyond those would be empty: Parquet is left to _spread. A value the
    user set is kept.
    """
    key = "spark.sql.files.minPartitionNum"
    if config.multiline or resolve_format(path, config.format) != "csv" or spark.conf.get(key, None) is not None:
        yield
        return
    spark.conf.set(key, str(wanted))
    try:
        yield
    finally:
        spark.conf.unset(key)


def _checked_label_col(input_columns: list[str], config: JobConfig) -> str | None:
    label_col = config.evaluate.label_col
    if label_col is not None and label_col not in input_columns:
        raise InputError(f"evaluate.label_col {label_col!r} not in the input; columns found: {', '.join(input_columns)}")
    return label_col

"""The write stage's row outputs: labels/ and rejected/ (checked against the rows read), clusters/,
topic_tree/ and topics_over_time/.

Over 300 lines: every table a run writes, each beside the schema it is checked against.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.core.columns import (
    CLUSTER_COL,
    CONFIDENCE_COL,
    EMBEDDING_COL,
    ID_COL,
    FIRST_MODEL_COL,
    MODEL_ID_COL,
    NOISE,
    NOVELTY_COL,
    REASON_COL,
    RUN_ID_COL,
    SECOND_CLUSTER_COL,
    UMAP_COL,
    quoted,
)
from n2d_spark.core.config import JobConfig
from n2d_spark.core.resources import persisted
from n2d_spark.core.run_context import Run
from n2d_spark.model.topics import ModelTopics
from n2d_spark.outputs.cluster_summary import cluster_summary, fresh_names
from n2d_spark.outputs.publish import (
    CLUSTERS_DIR,
    EMBEDDINGS_DIR,
    LABELS_DIR,
    NEIGHBOURS_DIR,
    REJECTED_DIR,
    SIMILAR_USERS_DIR,
    TOPIC_TREE_DIR,
    TOPICS_OVER_TIME_DIR,
    USERS_DIR,
)
from n2d_spark.outputs.topics_over_time import (
    PERIOD_COL,
    choose_bucket,
    time_span,
    topics_over_time,
)
from n2d_spark.rows.job_stages import Embedded
from n2d_spark.rows.neighbours import CELL_SAMPLE_ROWS, NEIGHBOUR_COL, RANK_COL, SIMILARITY_COL, neighbours, rows_with_fewer_than_k
from n2d_spark.rows.rejects import NO_VOCABULARY_TERMS, RejectTally, as_rejects
from n2d_spark.rows.sampling import collect_sample
from n2d_spark.rows.users import ROWS_COL, USER_COL, user_profiles, user_topics, with_user
from n2d_spark.rows.vectorize import Featurized

log = logging.getLogger(__name__)


@dataclass
class Summary:
    """Per cluster: name, size, top terms and example ids (its coherence and merges are added before it is written);
    and the examples' texts, for the report."""

    table: pd.DataFrame
    example_texts: dict[int, list[str]]


@dataclass
class Written:
    rows_out: int
    rows_rejected: int
    # The per-cluster summary, written by write_summary once its coherence and merges are in.
    summary: pd.DataFrame
    example_texts: dict[int, list[str]]


def labelled_rows(run: Run, vectors: DataFrame, assigned: DataFrame) -> DataFrame:
    """``vectors`` with ``assigned``'s columns (id, cluster, umap, confidence, second_cluster, then the input's),
    joined once and kept on disk for the write stage's passes.

    The summary, its examples and labels/ each joined the two apart: three shuffles of every row,
    33 of the write stage's 51 s at 1,000,000 synthetic rows (py-spy; BENCHMARKS.md, "A scale model").
    """
    return persisted(run.cached, _attach_labels(vectors, assigned), StorageLevel.DISK_ONLY)


def summarize(run: Run, labelled: DataFrame, features: Featurized) -> Summary:
    """The clusters of ``labelled`` (``labelled_rows``): sizes, top terms and names over all labelled rows, and examples."""
    config = run.config
    summary = cluster_summary(labelled, features.vocabulary, config.output.top_terms)
    text_col = features.source if features.vocabulary is not None else None
    examples = _examples(labelled, text_col, config)
    summary["example_ids"] = [examples.loc[examples[CLUSTER_COL] == c, ID_COL].tolist() for c in summary[CLUSTER_COL]]
    example_texts = {int(c): group[text_col].tolist() for c, group in examples.groupby(CLUSTER_COL)} if text_col else {}
    return Summary(summary, example_texts)


def named_as_the_model(summary: Summary, topics: ModelTopics) -> Summary:
    """``summary`` with each topic the model named keeping its name and top terms (an update's old topics)."""
    named = {t.cluster: t for t in topics.topics if t.name is not None}
    table = summary.table.copy()
    table["name"] = [named[c].name if c in named else name for c, name in zip(table[CLUSTER_COL], table["name"])]
    table["top_terms"] = [list(named[c].top_terms) if c in named else terms for c, terms in zip(table[CLUSTER_COL], table["top_terms"])]
    return Summary(table, summary.example_texts)


def named_afresh(run: Run, summary: Summary, vectors: DataFrame, features: Featurized, assigned: DataFrame, clusters: list[int]) -> Summary:
    """``summary`` with ``clusters`` named from the new data's own words (cluster_summary.fresh_names)."""
    if features.vocabulary is None or not clusters:
        return summary
    rows = vectors.select(ID_COL, F.col(quoted(features.source)), REASON_COL)
    named = fresh_names(rows, assigned.select(ID_COL, CLUSTER_COL), clusters, run.config)
    table = summary.table.copy()
    renamed = table[CLUSTER_COL].isin(clusters)
    table.loc[renamed, "name"] = [named.loc[c, "name"] for c in table.loc[renamed, CLUSTER_COL]]
    table.loc[renamed, "top_terms"] = pd.Series([named.loc[c, "top_terms"] for c in table.loc[renamed, CLUSTER_COL]], index=table.index[renamed])
    return Summary(table, summary.example_texts)


def write_rows(
    run: Run, staging: str, vectors: DataFrame, summary: Summary, labelled: DataFrame,
    embedded: Embedded, input_columns: list[str], model_id: str, tally: RejectTally,
) -> Written:
    """labels/ and rejected/, checked against the rows read. ``labelled`` (``labelled_rows``) may carry each row's
    ``novelty`` (update runs)."""
    config = run.config
    passthrough = _passthrough(input_columns, config)
    novelty = [NOVELTY_COL] if NOVELTY_COL in labelled.columns else []
    labelled.select(
        ID_COL, CLUSTER_COL, UMAP_COL, CONFIDENCE_COL, SECOND_CLUSTER_COL, *novelty,
        F.lit(run.run_id).alias(RUN_ID_COL), F.lit(model_id).alias(MODEL_ID_COL),
        *[F.col(quoted(c)) for c in passthrough],
    ).write.parquet(f"{staging}/{LABELS_DIR}")
    rejected = vectors.filter(F.col(REASON_COL).isNotNull()).unionByName(
        vectors.join(embedded.unembedded_ids, on=ID_COL, how="left_semi").withColumn(REASON_COL, F.lit(NO_VOCABULARY_TERMS))
    )
    as_rejects(rejected, input_columns).write.parquet(f"{staging}/{REJECTED_DIR}")
    rows_out = run.spark.read.parquet(f"{staging}/{LABELS_DIR}").count()
    rows_rejected = run.spark.read.parquet(f"{staging}/{REJECTED_DIR}").count()
    rows_in, expected_rejects = tally.rows_in, tally.total
    if rows_out + rows_rejected != rows_in or rows_rejected != expected_rejects:
        raise RuntimeError(
            f"row accounting failed: {rows_in} rows in, {rows_out} labelled, {rows_rejected} rejected "
            f"({expected_rejects} expected); output not published"
        )
    return Written(rows_out, rows_rejected, summary.table, summary.example_texts)


def table_schemas(
    input_schema: T.StructType, input_columns: list[str], config: JobConfig, novelty: bool = False
) -> tuple[T.StructType, T.StructType]:
    """The columns labels/ and clusters/ will have, from the input's (with its ``id``): known before any work.

    ``novelty``: labels/ has a row's ``novelty`` (an update run's).
    """
    id_type = input_schema[ID_COL].dataType
    labels = T.StructType(
        [
            T.StructField(ID_COL, id_type),
            T.StructField(CLUSTER_COL, T.IntegerType()),
            T.StructField(UMAP_COL, T.ArrayType(T.FloatType())),
            T.StructField(CONFIDENCE_COL, T.FloatType()),
            T.StructField(SECOND_CLUSTER_COL, T.IntegerType()),
            *([T.StructField(NOVELTY_COL, T.DoubleType())] if novelty else []),
            T.StructField(RUN_ID_COL, T.StringType()),
            T.StructField(MODEL_ID_COL, T.StringType()),
            *[input_schema[c] for c in _passthrough(input_columns, config)],
        ]
    )
    return labels, _summary_schema(id_type)


def _passthrough(input_columns: list[str], config: JobConfig) -> list[str]:
    """The input columns labels/ carries: all but the id and, unless output.include_text, the text or vector column."""
    source = config.input.features_col or config.input.text_col
    return [c for c in input_columns if c != ID_COL and (config.output.include_text or c != source)]


def write_summary(
    run: Run, staging: str, written: Written, topic_of: np.ndarray | None, model_id: str, id_type: T.DataType,
    first_models: dict[int, str | None] | None = None,
) -> None:
    """clusters/: the summary with the clusters each topic merged (``topic_of``: cluster.n_topics), the model
    each topic first appeared in (``first_models``; a topic it lacks, or None, is ``model_id``'s), run and model ids."""
    written.summary["merged_from"] = _merged_from(written.summary[CLUSTER_COL], topic_of)
    first = first_models or {}
    written.summary[FIRST_MODEL_COL] = [first.get(int(c)) or model_id for c in written.summary[CLUSTER_COL]]
    summary = written.summary.assign(**{RUN_ID_COL: run.run_id, MODEL_ID_COL: model_id})
    schema = _summary_schema(id_type)
    ordered = summary[[f.name for f in schema.fields]]
    run.spark.createDataFrame(ordered, schema).coalesce(1).write.parquet(f"{staging}/{CLUSTERS_DIR}")


def write_neighbours(run: Run, staging: str, embedded: Embedded, model_id: str) -> dict | None:
    """neighbours/: each embedded row's ``similar.k`` most similar rows (rows/neighbours.py), with run and
    model ids; embeddings/: each row's embedding, which ``n2d-spark similar`` searches.

    The search's cells are fitted on a seeded sample of the embeddings; returns what run.json says of it.
    """
    config = run.config.similar
    if config.k == 0:
        return None
    embedded.rows.select(ID_COL, EMBEDDING_COL).write.parquet(f"{staging}/{EMBEDDINGS_DIR}")
    found = _searched(run, embedded.rows, embedded.n_rows)
    _with_ids(found.table, run, model_id).write.parquet(f"{staging}/{NEIGHBOURS_DIR}")
    # From the table written, not a second search.
    fewer = rows_with_fewer_than_k(run.spark.read.parquet(f"{staging}/{NEIGHBOURS_DIR}"), embedded.n_rows, config.k)
    return {
        "k": config.k, "similarity": "cosine of the autoencoder's embeddings", "cells": found.cells, "probes": found.probes,
        "rows_with_fewer_than_k": fewer,
    }


def write_users(
    run: Run, staging: str, vectors: DataFrame, assigned: DataFrame, embedded: Embedded, summary: pd.DataFrame, model_id: str
) -> dict:
    """users/ (input.user_col): each user's labelled rows and largest topics; similar_users/: for the
    users with at least ``similar.min_user_rows`` rows, the ``similar.k`` most similar (rows/users.py)."""
    config = run.config
    users_of = with_user(vectors, F.col(quoted(config.input.user_col)))
    names = run.spark.createDataFrame(summary[[CLUSTER_COL, "name"]], f"{CLUSTER_COL} int, name string")
    topics = user_topics(assigned.select(ID_COL, CLUSTER_COL).join(users_of, ID_COL), names)
    _with_ids(topics, run, model_id).write.parquet(f"{staging}/{USERS_DIR}")
    written = run.spark.read.parquet(f"{staging}/{USERS_DIR}")
    eligible = written.filter(F.col(ROWS_COL) >= config.similar.min_user_rows).select(USER_COL)
    about = {"users": written.count(), "min_user_rows": config.similar.min_user_rows, "with_similar_users": eligible.count()}
    if config.similar.k == 0 or about["with_similar_users"] < 2:
        return about
    profiles = user_profiles(embedded.rows.join(users_of, ID_COL).join(eligible, USER_COL))
    found = _searched(run, profiles, about["with_similar_users"])
    similar_users = found.table.select(
        F.col(ID_COL).alias(USER_COL), F.col(NEIGHBOUR_COL).alias("neighbour"), RANK_COL, SIMILARITY_COL
    )
    _with_ids(similar_users, run, model_id).write.parquet(f"{staging}/{SIMILAR_USERS_DIR}")
    return about


def _searched(run: Run, vectors: DataFrame, n_rows: int):
    """The cell search of rows/neighbours.py over ``vectors`` (id, embedding), its cells fitted on a seeded sample."""
    seed = run.config.manifold.seed
    _, sample = collect_sample(vectors, EMBEDDING_COL, min(CELL_SAMPLE_ROWS, n_rows), seed)
    return neighbours(vectors, sample, n_rows, run.config.similar, seed)


def _with_ids(table: DataFrame, run: Run, model_id: str) -> DataFrame:
    return table.withColumn(RUN_ID_COL, F.lit(run.run_id)).withColumn(MODEL_ID_COL, F.lit(model_id))


def write_tree(run: Run, staging: str, tree: pd.DataFrame) -> None:
    """topic_tree/: a row per merge of two nodes of the cluster hierarchy (cluster.topic_tree)."""
    run.spark.createDataFrame(tree, _TREE_SCHEMA).coalesce(1).write.parquet(f"{staging}/{TOPIC_TREE_DIR}")


@dataclass
class TopicsOverTime:
    table: pd.DataFrame
    # For run.json: the time column, the bucket, the periods, the rows without a readable time.
    about: dict


def write_topics_over_time(run: Run, staging: str, labelled: DataFrame, features: Featurized) -> TopicsOverTime:
    """topics_over_time/: rows per period and topic, their share and the period's top terms (input.time_col)."""
    time_col = run.config.input.time_col
    span = time_span(labelled, time_col)
    bucket = choose_bucket(span, run.config.evaluate.time_bucket)
    if span.rows_without_time:
        log.warning("topics over time: %d labelled rows have no readable %s and are in no period", span.rows_without_time, time_col)
    table = topics_over_time(labelled, time_col, bucket, features.vocabulary, run.config.output.top_terms)
    table.coalesce(1).write.parquet(f"{staging}/{TOPICS_OVER_TIME_DIR}")
    written = run.spark.read.parquet(f"{staging}/{TOPICS_OVER_TIME_DIR}").toPandas().sort_values([PERIOD_COL, CLUSTER_COL])
    about = {
        "time_col": time_col,
        "bucket": bucket,
        "periods": int(written[PERIOD_COL].nunique()),
        "first": span.first.isoformat() if span.first else None,
        "last": span.last.isoformat() if span.last else None,
        "rows_without_time": span.rows_without_time,
    }
    return TopicsOverTime(table=written.reset_index(drop=True), about=about)


def _summary_schema(id_type: T.DataType) -> T.StructType:
    """clusters/: one row per cluster; example ids have the type of the input's ids."""
    return T.StructType(
        [
            T.StructField(CLUSTER_COL, T.IntegerType(), False),
            T.StructField("name", T.StringType(), False),
            T.StructField("size", T.LongType(), False),
            T.StructField("top_terms", T.ArrayType(T.StringType(), False), False),
            T.StructField("coherence", T.DoubleType(), True),
            T.StructField("example_ids", T.ArrayType(id_type, False), False),
            T.StructField("merged_from", T.ArrayType(T.IntegerType(), False), False),
            T.StructField(FIRST_MODEL_COL, T.StringType(), False),
            T.StructField(RUN_ID_COL, T.StringType(), False),
            T.StructField(MODEL_ID_COL, T.StringType(), False),
        ]
    )


# topic_tree/: a row per merge of two nodes of the cluster hierarchy (cluster.topic_tree).
_TREE_SCHEMA = T.StructType(
    [
        T.StructField("node", T.IntegerType(), False),
        T.StructField("left", T.IntegerType(), False),
        T.StructField("right", T.IntegerType(), False),
        T.StructField("distance", T.DoubleType(), False),
        T.StructField("clusters", T.ArrayType(T.IntegerType(), False), False),
    ]
)


def _merged_from(topics: pd.Series, topic_of: np.ndarray | None) -> list[list[int]]:
    """For each topic, the clusters the algorithm found that cluster.n_topics merged into it (itself when none)."""
    if topic_of is None:
        return [[int(t)] for t in topics]
    return [np.flatnonzero(topic_of == t).astype(int).tolist() if t != NOISE else [NOISE] for t in topics]


def _examples(labelled: DataFrame, text_col: str | None, config: JobConfig) -> pd.DataFrame:
    """``output.examples`` rows per cluster (a seeded hash of the id picks them): cluster, id and the text."""
    order = Window.partitionBy(CLUSTER_COL).orderBy(F.xxhash64(F.col(ID_COL), F.lit(config.cluster.seed)), ID_COL)
    columns = [CLUSTER_COL, ID_COL] + ([F.col(quoted(text_col))] if text_col else [])
    return (
        labelled.withColumn("_rank", F.row_number().over(order))
        .filter(F.col("_rank") <= config.output.examples)
        .orderBy(CLUSTER_COL, "_rank")
        .select(*columns)
        .toPandas()
    )


def _attach_labels(vectors: DataFrame, assigned: DataFrame) -> DataFrame:
    """``vectors`` with ``assigned``'s columns joined on id: id, cluster, umap, confidence, second_cluster, then the input's."""
    joined = vectors.join(assigned, on=ID_COL, how="inner")
    rest = [c for c in vectors.columns if c != ID_COL]
    return joined.select(*assigned.columns, *[F.col(quoted(c)) for c in rest])

"""The N2D job, stage by stage: read, vectorize, autoencoder, embed, manifold, cluster, assign, evaluate, write, report."""

from __future__ import annotations

import logging
import os
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from pyspark import Broadcast
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.columns import CLUSTER_COL, EMBEDDING_COL, ID_COL, MODEL_ID_COL, NOISE, REASON_COL, RUN_ID_COL, UMAP_COL
from n2d_spark.assign import ClusterAssigner, assign, fitted_assignments
from n2d_spark.autoencoder import fit_embedding_model
from n2d_spark.bundle import load_bundle, save_bundle
from n2d_spark.bundle_manifest import package_versions
from n2d_spark.catalog import check_tables, write_tables
from n2d_spark.cluster import check_enough_rows, fit_clusters, topic_tree
from n2d_spark.assign_policy import assign_config
from n2d_spark.config import JobConfig
from n2d_spark.embed import collect_sample, dense_rows, embed, rows_to_csr
from n2d_spark.encoder import EmbeddingModel
from n2d_spark.errors import InputError
from n2d_spark.evaluate import compare_baselines, stability
from n2d_spark.manifold import fit_manifold
from n2d_spark.progress import spark_progress
from n2d_spark.metrics import (
    NPMI_WINDOW,
    label_shape,
    npmi_from_counts,
    silhouette_on_sample,
    sizes_shape,
    table_agreement,
    topic_diversity,
    topic_terms,
)
from n2d_spark.output import (
    CLUSTERS_DIR,
    LABELS_DIR,
    MODEL_DIR,
    REJECTED_DIR,
    REPORT_DIR,
    TOPIC_TREE_DIR,
    TOPICS_OVER_TIME_DIR,
    refuse_unsafe_output,
    staged_output,
    write_manifest,
)
from n2d_spark.report import ReportInputs, write_report
from n2d_spark.report_views import HOVER_CHARS
from n2d_spark.topics_over_time import PERIOD_COL, choose_bucket, time_span, topics_over_time
from n2d_spark.fs import FileSystem
from n2d_spark.held import broadcast, persisted
from n2d_spark.read import CORRUPT_COL, read_rows
from n2d_spark.rejects import (
    NO_VOCABULARY_TERMS,
    RejectTally,
    as_rejects,
    reason_counts,
    with_input_reason,
)
from n2d_spark.summary import cluster_summary
from n2d_spark.featurize import Featurized, check_usable, featurize
from n2d_spark.text import count_term_windows

log = logging.getLogger(__name__)

_VERSIONED_PACKAGES = ("pyspark", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "umap-learn", "tensorflow", "keras")


@dataclass
class StageTimer:
    """Wall seconds per stage, logged as each stage starts and ends."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str):
        log.info("stage %s: started", name)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)
        log.info("stage %s: done in %.1f s", name, self.seconds[name])


@dataclass(frozen=True)
class RunResult:
    output: str
    manifest: dict


@dataclass
class _Run:
    """What every stage of one run shares: the session, config, output staging, timer, caches and reject tally."""

    spark: SparkSession
    config: JobConfig
    input_path: str
    output_path: str
    fs: FileSystem
    cached: ExitStack
    run_id: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8])
    started: float = field(default_factory=time.perf_counter)
    timer: StageTimer = field(default_factory=StageTimer)
    tally: RejectTally | None = None

    def persist(self, frame: DataFrame) -> DataFrame:
        return persisted(self.cached, frame)

    def share(self, value) -> Broadcast:
        """``value`` broadcast to the executors until the run ends, then destroyed there and here."""
        return broadcast(self.cached, self.spark, value)


@dataclass
class _Embedded:
    """The embed stage's result: usable rows with an embedding, and the ids of rows with nothing to embed."""

    rows: DataFrame
    n_rows: int
    unembedded_ids: DataFrame
    n_unembedded: int


def run_job(spark: SparkSession, config: JobConfig, input_path: str, output_path: str) -> RunResult:
    """Cluster the rows at ``input_path``; publish labels, summary, model bundle, report and manifest at ``output_path``."""
    _check_table_first(spark, config)
    refuse_unsafe_output(output_path, [input_path, os.getcwd(), os.path.expanduser("~")])
    with ExitStack() as cached:
        run = _Run(spark, config, input_path, output_path, FileSystem(spark, output_path), cached)
        with staged_output(run.fs, output_path, config.output.mode, run.run_id) as staging:
            rows, input_columns, label_col = _read(run)
            features, vectors = _vectorize(run, rows, text_model=None)
            usable = vectors.filter(F.col(REASON_COL).isNull())

            with run.timer.stage("autoencoder"):
                sample_ids, sample = collect_sample(usable, features.column, config.autoencoder.sample_rows, config.autoencoder.seed)
                embedding_model, trained = fit_embedding_model(sample, config)
                scaler = embedding_model.scaler
                log.info("autoencoder: trained on %d rows in %s", len(sample_ids), trained.precision)

            embedded = _embed(run, usable, features, embedding_model, label_col)

            with run.timer.stage("manifold"):
                check_enough_rows(embedded.n_rows, config.cluster)
                fit_ids, fit_embeddings = collect_sample(embedded.rows, EMBEDDING_COL, config.manifold.fit_rows, config.manifold.seed)
                reducer, fit_coordinates = fit_manifold(fit_embeddings, config.manifold)

            with run.timer.stage("cluster"):
                clusters, fit_labels = fit_clusters(fit_coordinates, config.cluster)
                tree = topic_tree(fit_coordinates, fit_labels) if label_shape(fit_labels)["n_clusters"] > 1 else None
            assigner = ClusterAssigner(reducer=reducer, clusters=clusters)

            with run.timer.stage("assign"):
                id_type = vectors.schema[ID_COL].dataType
                assigned = fitted_assignments(spark, fit_ids, fit_labels, fit_coordinates, id_type)
                n_assigned = embedded.n_rows - len(fit_ids)
                if n_assigned:
                    outside_fit = embedded.rows.join(F.broadcast(assigned.select(ID_COL)), on=ID_COL, how="left_anti")
                    assigned = assigned.unionByName(
                        assign(outside_fit, run.share(assigner), n_assigned, config.manifold.batch_rows, config.manifold.seed)
                    )
                assigned = run.persist(assigned)
                with spark_progress(spark, "assign", n_assigned):
                    assigned.count()
                log.info("assign: %d rows fitted on the driver, %d assigned on the executors", len(fit_ids), n_assigned)

            with run.timer.stage("evaluate"):
                fit_classes = None
                if label_col:
                    fit_classes = np.array(
                        [_class_of(r[label_col]) for r in _collect_for_ids(embedded.rows, fit_ids, [label_col])]
                    )
                baselines = None
                if config.evaluate.baselines or config.evaluate.stability:
                    fit_inputs = _as_matrix(_collect_for_ids(vectors, fit_ids, [features.column]), features.column)
                if config.evaluate.baselines:
                    baselines = compare_baselines(scaler.transform(fit_inputs), fit_embeddings, fit_labels, fit_classes, config)
                stability_scores = (
                    stability(sample, fit_inputs, fit_labels, embedding_model, config) if config.evaluate.stability else None
                )

            with run.timer.stage("write"):
                model_id = save_bundle(run.fs, f"{staging}/{MODEL_DIR}", config, embedding_model, assigner, features.text_model)
                written = _write_rows(run, staging, vectors, features, assigned, embedded, input_columns, model_id)
                topics = _topic_quality(run, vectors, features, written.summary)
                written.summary["merged_from"] = _merged_from(written.summary[CLUSTER_COL], clusters.topic_of)
                _write_summary(run, staging, written.summary, model_id, vectors.schema[ID_COL].dataType)
                if tree is not None:
                    spark.createDataFrame(tree, _TREE_SCHEMA).coalesce(1).write.parquet(f"{staging}/{TOPIC_TREE_DIR}")
                over_time = _write_topics_over_time(run, staging, vectors, features, assigned) if config.input.time_col else None

            manifest = _manifest(run, features, written, model_id, assigned, embedded, label_col, n_assigned)
            manifest["rows"]["autoencoder_sample"] = int(len(sample_ids))
            manifest["rows"]["manifold_fit"] = int(len(fit_ids))
            manifest["autoencoder_history"] = trained.history
            manifest["autoencoder_precision"] = trained.precision
            manifest["autoencoder_epochs"] = {
                "planned": trained.epochs_planned, "run": len(trained.history["loss"]), "best": trained.best_epoch
            }
            manifest["topics"] = topics
            manifest["clusters"]["noise_share_before_reduction"] = clusters.fit_noise_share
            if clusters.k_scores is not None:
                manifest["clusters"]["k_silhouettes"] = clusters.k_scores
            manifest["clusters"]["silhouette"] = silhouette_on_sample(
                fit_coordinates, fit_labels, config.evaluate.silhouette_rows, seed=config.cluster.seed
            )
            if baselines is not None:
                manifest["baselines"] = baselines.scores
            if stability_scores is not None:
                manifest["stability"] = stability_scores
            if over_time is not None:
                manifest["topics_over_time"] = over_time.about
            with run.timer.stage("report"):
                on_map = _map_sample(len(fit_ids), config)
                report = ReportInputs(
                    manifest=manifest,
                    embeddings=fit_embeddings[on_map],
                    labels=fit_labels[on_map],
                    truth=fit_classes[on_map] if fit_classes is not None else None,
                    baseline_labels=baselines.raw_labels[on_map] if baselines is not None else None,
                    summary=written.summary,
                    examples=written.example_texts,
                    tree=tree,
                    texts=_texts_for_ids(vectors, fit_ids[on_map], features),
                    topics_over_time=over_time.table if over_time is not None else None,
                )
                write_report(report, lambda name, data: run.fs.write_bytes(f"{staging}/{REPORT_DIR}/{name}", data), seed=config.manifold.seed)
            manifest["total_seconds"] = round(time.perf_counter() - run.started, 3)
            write_manifest(run.fs, staging, manifest)
    _publish_tables(spark, config, output_path, manifest)
    return RunResult(output=output_path, manifest=manifest)


def run_assign(
    spark: SparkSession, model_path: str, input_path: str, output_path: str, overrides: list[str] = (), allow_pickle: bool = False
) -> RunResult:
    """Label the rows at ``input_path`` with the saved model at ``model_path``, without training anything.

    Every row is vectorized with the model's vocabulary, embedded with its encoder, placed on
    its UMAP and assigned by its clusterer on the executors, as the training run's rows outside
    its fit sample were. ``overrides`` may set the keys that do not change the model;
    ``allow_pickle`` lets a trusted bundle's pickles load (bundle.load_bundle).
    """
    bundle = load_bundle(spark, FileSystem(spark, model_path), model_path, allow_pickle=allow_pickle)
    config = assign_config(bundle.config, overrides)
    _check_table_first(spark, config)
    refuse_unsafe_output(output_path, [input_path, model_path, os.getcwd(), os.path.expanduser("~")])
    with ExitStack() as cached:
        run = _Run(spark, config, input_path, output_path, FileSystem(spark, output_path), cached)
        with staged_output(run.fs, output_path, config.output.mode, run.run_id) as staging:
            rows, input_columns, label_col = _read(run)
            features, vectors = _vectorize(run, rows, text_model=bundle.text_model)
            usable = vectors.filter(F.col(REASON_COL).isNull())
            embedded = _embed(run, usable, features, bundle.embedding_model, label_col)
            with run.timer.stage("assign"):
                if embedded.n_rows == 0:
                    raise InputError("no row of the input has anything to embed with this model's vocabulary")
                assigned = run.persist(
                    assign(embedded.rows, run.share(bundle.assigner), embedded.n_rows, config.manifold.batch_rows, config.manifold.seed)
                )
                with spark_progress(spark, "assign", embedded.n_rows):
                    assigned.count()
            with run.timer.stage("write"):
                written = _write_rows(run, staging, vectors, features, assigned, embedded, input_columns, bundle.model_id)
                written.summary["coherence"] = None
                written.summary["merged_from"] = _merged_from(written.summary[CLUSTER_COL], bundle.assigner.clusters.topic_of)
                _write_summary(run, staging, written.summary, bundle.model_id, vectors.schema[ID_COL].dataType)
            manifest = _manifest(run, features, written, bundle.model_id, assigned, embedded, label_col, embedded.n_rows)
            manifest["model"] = model_path
            manifest["total_seconds"] = round(time.perf_counter() - run.started, 3)
            write_manifest(run.fs, staging, manifest)
    _publish_tables(spark, config, output_path, manifest)
    return RunResult(output=output_path, manifest=manifest)


def _read(run: _Run) -> tuple[DataFrame, list[str], str | None]:
    """The input with its reject reasons, persisted; its columns and the label column, if any."""
    with run.timer.stage("read"):
        rows = read_rows(run.spark, run.input_path, run.config.input)
        input_columns = [c for c in rows.columns if c != CORRUPT_COL]
        label_col = _checked_label_col(input_columns, run.config)
        rows = run.persist(_spread(with_input_reason(rows, run.config.input)))
        rows_in = rows.count()
        if rows_in == 0:
            raise InputError(f"the input has no rows: {run.input_path}")
        run.tally = RejectTally(rows_in=rows_in, max_share=run.config.input.max_reject_share)
    return rows, input_columns, label_col


def _vectorize(run: _Run, rows: DataFrame, text_model: PipelineModel | None) -> tuple[Featurized, DataFrame]:
    with run.timer.stage("vectorize"):
        features = featurize(rows, run.config, text_model)
        vectors = run.persist(features.rows)
        run.tally.add(reason_counts(vectors))
        rows.unpersist()
        check_usable(run.tally.rows_in - run.tally.total, features, run.config)
        log.info("vectorize: %d rows, %d rejected, %s", run.tally.rows_in, run.tally.total, features.dimension_text)
    return features, vectors


def _embed(run: _Run, usable: DataFrame, features: Featurized, model: EmbeddingModel, label_col: str | None) -> _Embedded:
    with run.timer.stage("embed"):
        extra = [label_col] if label_col else []
        embedded = run.persist(
            embed(usable, features.column, run.share(model), run.config.embed.batch_rows).select(ID_COL, EMBEDDING_COL, *extra)
        )
        with spark_progress(run.spark, "embed", run.tally.rows_in - run.tally.total):
            n_embedded = embedded.count()
        unembedded = embedded.filter(F.col(EMBEDDING_COL).isNull()).select(ID_COL)
        n_unembedded = unembedded.count()
        run.tally.add({NO_VOCABULARY_TERMS: n_unembedded})
    return _Embedded(
        rows=embedded.filter(F.col(EMBEDDING_COL).isNotNull()),
        n_rows=n_embedded - n_unembedded,
        unembedded_ids=unembedded,
        n_unembedded=n_unembedded,
    )


@dataclass
class _Written:
    rows_out: int
    rows_rejected: int
    summary: pd.DataFrame
    example_texts: dict[int, list[str]]


def _write_rows(
    run: _Run, staging: str, vectors: DataFrame, features: Featurized, assigned: DataFrame,
    embedded: _Embedded, input_columns: list[str], model_id: str,
) -> _Written:
    """labels/ and rejected/, checked against the rows read; the per-cluster summary, not yet written."""
    config = run.config
    labelled = _attach_labels(vectors, assigned)
    passthrough = [c for c in input_columns if c != ID_COL and (config.output.include_text or c != features.source)]
    labelled.select(
        ID_COL, CLUSTER_COL, UMAP_COL, F.lit(run.run_id).alias(RUN_ID_COL), F.lit(model_id).alias(MODEL_ID_COL), *passthrough
    ).write.parquet(f"{staging}/{LABELS_DIR}")
    rejected = vectors.filter(F.col(REASON_COL).isNotNull()).unionByName(
        vectors.join(embedded.unembedded_ids, on=ID_COL, how="left_semi").withColumn(REASON_COL, F.lit(NO_VOCABULARY_TERMS))
    )
    as_rejects(rejected, input_columns).write.parquet(f"{staging}/{REJECTED_DIR}")
    rows_out = run.spark.read.parquet(f"{staging}/{LABELS_DIR}").count()
    rows_rejected = run.spark.read.parquet(f"{staging}/{REJECTED_DIR}").count()
    rows_in, expected_rejects = run.tally.rows_in, run.tally.total
    if rows_out + rows_rejected != rows_in or rows_rejected != expected_rejects:
        raise RuntimeError(
            f"row accounting failed: {rows_in} rows in, {rows_out} labelled, {rows_rejected} rejected "
            f"({expected_rejects} expected); output not published"
        )
    summary = cluster_summary(labelled, features.vocabulary, config.output.top_terms)
    text_col = features.source if features.vocabulary is not None else None
    examples = _examples(labelled, text_col, config)
    summary["example_ids"] = [examples.loc[examples[CLUSTER_COL] == c, ID_COL].tolist() for c in summary[CLUSTER_COL]]
    example_texts = {int(c): group[text_col].tolist() for c, group in examples.groupby(CLUSTER_COL)} if text_col else {}
    return _Written(rows_out, rows_rejected, summary, example_texts)


def _write_summary(run: _Run, staging: str, summary: pd.DataFrame, model_id: str, id_type: T.DataType) -> None:
    summary = summary.assign(**{RUN_ID_COL: run.run_id, MODEL_ID_COL: model_id})
    schema = _summary_schema(id_type)
    ordered = summary[[f.name for f in schema.fields]]
    run.spark.createDataFrame(ordered, schema).coalesce(1).write.parquet(f"{staging}/{CLUSTERS_DIR}")


def _manifest(
    run: _Run, features: Featurized, written: _Written, model_id: str, assigned: DataFrame,
    embedded: _Embedded, label_col: str | None, n_assigned: int,
) -> dict:
    cores = run.spark.sparkContext.defaultParallelism
    seconds = run.timer.seconds
    summary = written.summary
    manifest = {
        "run_id": run.run_id,
        "model_id": model_id,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": run.input_path,
        "output": run.output_path,
        "spark": {"master": run.spark.sparkContext.master, "default_parallelism": cores},
        "config": run.config.to_dict(),
        "versions": package_versions(_VERSIONED_PACKAGES),
        "rows": {
            "in": run.tally.rows_in,
            "labelled": written.rows_out,
            "rejected": written.rows_rejected,
            "assigned_on_executors": int(n_assigned),
        },
        "rejected_by_reason": dict(sorted(run.tally.by_reason.items())),
        "input_dimension": features.dimension,
        "clusters": {**sizes_shape(dict(zip(summary[CLUSTER_COL].tolist(), summary["size"].tolist()))), "largest": _largest(summary)},
        "stage_seconds": seconds,
        "rows_per_second_per_core": {
            "embed": _per_core_second(embedded.n_rows + embedded.n_unembedded, seconds["embed"], cores),
            "assign": _per_core_second(n_assigned, seconds["assign"], cores),
        },
    }
    if label_col:
        manifest["evaluation"] = {"label_col": label_col, **_agreement(assigned, embedded.rows, label_col)}
    return manifest


def _largest(summary: pd.DataFrame, n: int = 5) -> list[dict]:
    """The ``n`` largest clusters (noise left out): cluster, name and share of the labelled rows."""
    total = int(summary["size"].sum())
    top = summary[summary[CLUSTER_COL] != NOISE].sort_values(["size", CLUSTER_COL], ascending=[False, True]).head(n)
    return [{"cluster": int(c), "name": name, "share": int(size) / total} for c, name, size in zip(top[CLUSTER_COL], top["name"], top["size"])]


def _check_table_first(spark: SparkSession, config: JobConfig) -> None:
    if config.output.table is not None:
        check_tables(spark, config.output.table, config.output.table_mode)


def _publish_tables(spark: SparkSession, config: JobConfig, output_path: str, manifest: dict) -> None:
    """The published labels/ and clusters/ as catalog tables (``output.table``), once the output is complete."""
    if config.output.table is None:
        return
    labels = spark.read.parquet(f"{output_path}/{LABELS_DIR}")
    clusters = spark.read.parquet(f"{output_path}/{CLUSTERS_DIR}")
    names = write_tables(labels, clusters, config.output.table, config.output.table_mode)
    manifest["tables"] = list(names)
    log.info("tables written: %s (mode %s)", ", ".join(names), config.output.table_mode)


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


def _collect_for_ids(rows: DataFrame, ids: np.ndarray, columns: list[str]) -> list:
    """The rows of ``rows`` whose id is in ``ids`` (a driver-side sample), with ``columns``, in id order."""
    spark = rows.sparkSession
    wanted = spark.createDataFrame(pd.DataFrame({ID_COL: ids}), T.StructType([rows.schema[ID_COL]]))
    picked = rows.join(F.broadcast(wanted), on=ID_COL, how="left_semi").select(ID_COL, *columns).collect()
    picked.sort(key=lambda row: row[ID_COL])
    return picked


def _as_matrix(rows: list, column: str):
    if rows and not isinstance(rows[0][column], (list, np.ndarray)):
        return rows_to_csr(rows, column)
    return dense_rows([row[column] for row in rows], None)


def _examples(labelled: DataFrame, text_col: str | None, config: JobConfig) -> pd.DataFrame:
    """``output.examples`` rows per cluster (a seeded hash of the id picks them): cluster, id and the text."""
    order = Window.partitionBy(CLUSTER_COL).orderBy(F.xxhash64(F.col(ID_COL), F.lit(config.cluster.seed)), ID_COL)
    columns = [CLUSTER_COL, ID_COL] + ([text_col] if text_col else [])
    return (
        labelled.withColumn("_rank", F.row_number().over(order))
        .filter(F.col("_rank") <= config.output.examples)
        .orderBy(CLUSTER_COL, "_rank")
        .select(*columns)
        .toPandas()
    )


def _texts_for_ids(vectors: DataFrame, ids: np.ndarray, features: Featurized) -> list[str] | None:
    """The start of each row's text, in the order of ``ids`` (text mode; None in vector mode): the map's hover texts."""
    if features.vocabulary is None:
        return None
    # Twice what a hover label shows: runs of whitespace collapse before it is cut.
    text = F.substring(F.col(features.source), 1, 2 * HOVER_CHARS).alias(features.source)
    by_id = {row[ID_COL]: row[features.source] or "" for row in _collect_for_ids(vectors.select(ID_COL, text), ids, [features.source])}
    return [by_id[i] for i in ids.tolist()]


@dataclass
class _TopicsOverTime:
    table: pd.DataFrame
    # For run.json: the time column, the bucket, the periods, the rows without a readable time.
    about: dict


def _write_topics_over_time(run: _Run, staging: str, vectors: DataFrame, features: Featurized, assigned: DataFrame) -> _TopicsOverTime:
    """topics_over_time/: rows per period and topic, their share and the period's top terms (input.time_col)."""
    time_col = run.config.input.time_col
    labelled = _attach_labels(vectors, assigned)
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
    return _TopicsOverTime(table=written.reset_index(drop=True), about=about)


def _map_sample(n_rows: int, config: JobConfig) -> np.ndarray:
    """Positions of the fit rows drawn on the report's maps: a seeded sample, in id order."""
    picked = np.random.default_rng(config.manifold.seed).permutation(n_rows)[: config.evaluate.map_rows]
    return np.sort(picked)


def _topic_quality(run: _Run, vectors: DataFrame, features: Featurized, summary: pd.DataFrame) -> dict | None:
    """Each cluster's NPMI (into ``summary``), and the run's mean NPMI and topic diversity, noise left out.

    Text mode only: counted over the terms of ``evaluate.coherence_rows`` usable rows (a seeded sample).
    """
    summary["coherence"] = None
    if features.text_model is None:
        return None
    usable = vectors.filter(F.col(REASON_COL).isNull())
    topic_lists = summary["top_terms"].tolist()
    counts = count_term_windows(
        features.text_model, usable, run.config.evaluate.coherence_rows, run.config.cluster.seed, topic_terms(topic_lists)
    )
    summary["coherence"] = npmi_from_counts(counts, topic_lists)
    topics = summary[summary[CLUSTER_COL] != NOISE]
    scores = [c for c in topics["coherence"] if c is not None]
    return {
        "npmi": float(np.mean(scores)) if scores else None,
        "diversity": topic_diversity(topics["top_terms"].tolist(), run.config.output.top_terms),
        "documents": counts.n_documents,
        "definition": (
            f"NPMI of each topic's top {run.config.output.top_terms} terms in boolean sliding windows of "
            f"{NPMI_WINDOW} terms over {counts.n_documents} sampled documents (gensim's c_npmi), averaged over "
            f"topics; diversity: unique terms among all topics' top {run.config.output.top_terms} / "
            f"({run.config.output.top_terms} x topics); noise left out of both"
        ),
    }


def _spread(rows: DataFrame) -> DataFrame:
    """Hash-partition by id when the input has few partitions (a .gz file is read as one).

    At least one partition per core, and no fewer than ``spark.sql.shuffle.partitions``: a
    million reviews in two partitions of half a million each ran the 4 GiB JVM out of heap
    while caching them.
    """
    spark = rows.sparkSession
    wanted = max(spark.sparkContext.defaultParallelism, int(spark.conf.get("spark.sql.shuffle.partitions")))
    if rows.rdd.getNumPartitions() >= wanted:
        return rows
    return rows.repartition(wanted, ID_COL)


def _per_core_second(n_rows: int, seconds: float, cores: int) -> float | None:
    return round(n_rows / seconds / cores, 1) if n_rows and seconds > 0 else None


# Rows without a known class are scored as one class of their own.
_NULL_CLASS = "<null>"


def _class_of(value) -> str:
    return _NULL_CLASS if value is None else str(value)


def _agreement(assigned: DataFrame, embedded: DataFrame, label_col: str) -> dict:
    """Scores against ``label_col`` from a contingency table counted by Spark (null labels form a class)."""
    label = F.coalesce(F.col(label_col).cast("string"), F.lit(_NULL_CLASS)).alias(label_col)
    counts = (
        assigned.join(embedded.select(ID_COL, label), on=ID_COL)
        .groupBy(label_col, CLUSTER_COL)
        .count()
        .toPandas()
    )
    table = counts.pivot(index=label_col, columns=CLUSTER_COL, values="count").fillna(0)
    noise = table[NOISE].sum() / table.to_numpy().sum() if NOISE in table.columns else 0.0
    return table_agreement(table.to_numpy(), float(noise))


def _checked_label_col(input_columns: list[str], config: JobConfig) -> str | None:
    label_col = config.evaluate.label_col
    if label_col is not None and label_col not in input_columns:
        raise InputError(f"evaluate.label_col {label_col!r} not in the input; columns found: {', '.join(input_columns)}")
    return label_col


def _attach_labels(vectors: DataFrame, assigned: DataFrame) -> DataFrame:
    """``vectors`` with ``cluster`` and ``umap`` joined on id; columns: id, cluster, umap, then the input's."""
    joined = vectors.join(assigned, on=ID_COL, how="inner")
    rest = [c for c in vectors.columns if c != ID_COL]
    return joined.select(ID_COL, CLUSTER_COL, UMAP_COL, *rest)

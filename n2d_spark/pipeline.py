"""The N2D job, stage by stage: read, vectorize, autoencoder, embed, manifold, cluster, assign, evaluate, write, report."""

from __future__ import annotations

import logging
import platform
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata

import numpy as np
import pandas as pd
from pyspark import StorageLevel
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.autoencoder import train_autoencoder
from n2d_spark.assign import UMAP_COL, ClusterAssigner, assign, fitted_assignments
from n2d_spark.cluster import NOISE, check_enough_rows, fit_clusters
from n2d_spark.config import JobConfig
from n2d_spark.embed import EMBEDDING_COL, collect_sample, dense_rows, embed, rows_to_csr
from n2d_spark.evaluate import compare_baselines, stability
from n2d_spark.encoder import DenseScaler, EmbeddingModel, InputScaler
from n2d_spark.manifold import fit_manifold
from n2d_spark.metrics import npmi_coherence, silhouette_on_sample, sizes_shape, table_agreement
from n2d_spark.report import ReportInputs, write_report
from n2d_spark.output import (
    CLUSTERS_DIR,
    REPORT_DIR,
    LABELS_DIR,
    MODEL_DIR,
    REJECTED_DIR,
    save_embedding_model,
    staged_output,
    write_manifest,
)
from n2d_spark.errors import InputError
from n2d_spark.fs import FileSystem
from n2d_spark.read import CORRUPT_COL, ID_COL, read_reviews
from n2d_spark.rejects import (
    NO_VOCABULARY_TERMS,
    REASON_COL,
    RejectTally,
    as_rejects,
    reason_counts,
    with_input_reason,
    with_text_reason,
    with_vector_reason,
)
from n2d_spark.summary import CLUSTER_COL, cluster_summary
from n2d_spark.features import FEATURES_COL, as_feature_arrays, most_common_length
from n2d_spark.text import COUNTS_COL, fit_text_model, vectorize, vocabulary

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


def run_job(spark: SparkSession, config: JobConfig, input_path: str, output_path: str) -> RunResult:
    """Cluster the reviews at ``input_path``; publish labels, summary, model and manifest at ``output_path``."""
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]
    started = time.perf_counter()
    timer = StageTimer()
    fs = FileSystem(spark, output_path)
    with ExitStack() as cached, staged_output(fs, output_path, config.output.mode, run_id) as staging:
        with timer.stage("read"):
            reviews = read_reviews(spark, input_path, config.input)
            input_columns = [c for c in reviews.columns if c != CORRUPT_COL]
            label_col = _checked_label_col(input_columns, config)
            reviews = _spread(with_input_reason(reviews, config.input)).persist(StorageLevel.MEMORY_AND_DISK)
            cached.callback(reviews.unpersist)
            rows_in = reviews.count()
            if rows_in == 0:
                raise InputError(f"the input has no rows: {input_path}")

        with timer.stage("vectorize"):
            features = _featurize(reviews, config)
            vectors = features.rows.persist(StorageLevel.MEMORY_AND_DISK)
            cached.callback(vectors.unpersist)
            tally = RejectTally(rows_in=rows_in, max_share=config.input.max_reject_share)
            tally.add(reason_counts(vectors))
            reviews.unpersist()
            _check_usable(rows_in - tally.total, features, config)
            usable = vectors.filter(F.col(REASON_COL).isNull())
            log.info("vectorize: %d rows, %d rejected, %s", rows_in, tally.total, features.dimension_text)

        with timer.stage("autoencoder"):
            sample_ids, sample = collect_sample(usable, features.column, config.autoencoder.sample_rows, config.autoencoder.seed)
            if features.vocabulary is None:
                scaler = DenseScaler.fit(sample, config.features.scaling)
            else:
                scaler = InputScaler.fit(sample, config.text.scaling, config.text.l2_normalize)
            trained = train_autoencoder(scaler.transform(sample), config.autoencoder)
            embedding_model = EmbeddingModel(scaler=scaler, encoder=trained.encoder)
            log.info("autoencoder: trained on %d rows", len(sample_ids))

        with timer.stage("embed"):
            extra = [label_col] if label_col else []
            embedded = (
                embed(usable, features.column, embedding_model, config.embed.batch_rows)
                .select(ID_COL, EMBEDDING_COL, *extra)
                .persist(StorageLevel.MEMORY_AND_DISK)
            )
            cached.callback(embedded.unpersist)
            n_embedded = embedded.count()
            unembedded = embedded.filter(F.col(EMBEDDING_COL).isNull()).select(ID_COL)
            n_unembedded = unembedded.count()
            tally.add({NO_VOCABULARY_TERMS: n_unembedded})
            embedded_ok = embedded.filter(F.col(EMBEDDING_COL).isNotNull())
            n_embedded -= n_unembedded

        with timer.stage("manifold"):
            check_enough_rows(n_embedded, config.cluster)
            fit_ids, fit_embeddings = collect_sample(embedded_ok, EMBEDDING_COL, config.manifold.fit_rows, config.manifold.seed)
            reducer, fit_coordinates = fit_manifold(fit_embeddings, config.manifold)

        with timer.stage("cluster"):
            clusters, fit_labels = fit_clusters(fit_coordinates, config.cluster)

        with timer.stage("assign"):
            id_type = vectors.schema[ID_COL].dataType
            assigned = fitted_assignments(spark, fit_ids, fit_labels, fit_coordinates, id_type)
            n_assigned = n_embedded - len(fit_ids)
            if n_assigned:
                outside_fit = embedded_ok.join(F.broadcast(assigned.select(ID_COL)), on=ID_COL, how="left_anti")
                assigner = ClusterAssigner(reducer=reducer, clusters=clusters)
                assigned = assigned.unionByName(
                    assign(outside_fit, assigner, n_assigned, config.manifold.batch_rows, config.manifold.seed)
                )
            assigned = assigned.persist(StorageLevel.MEMORY_AND_DISK)
            cached.callback(assigned.unpersist)
            assigned.count()
            log.info("assign: %d rows fitted on the driver, %d assigned on the executors", len(fit_ids), n_assigned)

        with timer.stage("evaluate"):
            fit_classes = None
            if label_col:
                fit_classes = np.array(
                    [_NULL_CLASS if r[label_col] is None else str(r[label_col]) for r in _collect_for_ids(embedded_ok, fit_ids, extra)]
                )
            baselines = None
            if config.evaluate.baselines or config.evaluate.stability:
                fit_inputs = _as_matrix(_collect_for_ids(vectors, fit_ids, [features.column]), features.column)
            if config.evaluate.baselines:
                baselines = compare_baselines(
                    embedding_model.scaler.transform(fit_inputs), fit_embeddings, fit_labels, fit_classes, config
                )
            stability_scores = (
                stability(sample, fit_inputs, fit_labels, embedding_model, config) if config.evaluate.stability else None
            )

        with timer.stage("write"):
            labelled = _attach_labels(vectors, assigned)
            passthrough = [c for c in input_columns if c != ID_COL and (config.output.include_text or c != features.source)]
            labelled.select(ID_COL, CLUSTER_COL, UMAP_COL, *passthrough).write.parquet(f"{staging}/{LABELS_DIR}")
            rejected = vectors.filter(F.col(REASON_COL).isNotNull()).unionByName(
                vectors.join(unembedded, on=ID_COL, how="left_semi").withColumn(REASON_COL, F.lit(NO_VOCABULARY_TERMS))
            )
            as_rejects(rejected, input_columns).write.parquet(f"{staging}/{REJECTED_DIR}")
            rows_out = spark.read.parquet(f"{staging}/{LABELS_DIR}").count()
            rows_rejected = spark.read.parquet(f"{staging}/{REJECTED_DIR}").count()
            if rows_out + rows_rejected != rows_in or rows_rejected != tally.total:
                raise RuntimeError(
                    f"row accounting failed: {rows_in} rows in, {rows_out} labelled, {rows_rejected} rejected "
                    f"({tally.total} expected); output not published"
                )
            summary = cluster_summary(labelled, features.vocabulary, config.output.top_terms)
            summary["coherence"] = _coherence(summary["top_terms"], features.vocabulary, sample)
            examples = _examples(labelled, features.source if features.vocabulary is not None else None, config)
            summary["example_ids"] = [
                examples.loc[examples[CLUSTER_COL] == c, ID_COL].tolist() for c in summary[CLUSTER_COL]
            ]
            spark.createDataFrame(summary, _SUMMARY_SCHEMA).coalesce(1).write.parquet(f"{staging}/{CLUSTERS_DIR}")
            if features.text_model is not None:
                features.text_model.write().save(f"{staging}/{MODEL_DIR}/text_pipeline")
            save_embedding_model(fs, f"{staging}/{MODEL_DIR}", embedding_model)

        cores = spark.sparkContext.defaultParallelism
        manifest = {
            "run_id": run_id,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "input": input_path,
            "output": output_path,
            "spark": {"master": spark.sparkContext.master, "default_parallelism": spark.sparkContext.defaultParallelism},
            "config": config.to_dict(),
            "versions": _versions(),
            "rows": {
                "in": rows_in,
                "labelled": rows_out,
                "rejected": rows_rejected,
                "autoencoder_sample": int(len(sample_ids)),
                "manifold_fit": int(len(fit_ids)),
                "assigned_on_executors": int(n_assigned),
            },
            "rejected_by_reason": dict(sorted(tally.by_reason.items())),
            "input_dimension": features.dimension,
            "autoencoder_history": trained.history,
            "clusters": {
                **sizes_shape(dict(zip(summary[CLUSTER_COL].tolist(), summary["size"].tolist()))),
                # On the fit sample: the coordinates of every row are not on the driver.
                "silhouette": silhouette_on_sample(
                    fit_coordinates, fit_labels, config.evaluate.silhouette_rows, seed=config.cluster.seed
                ),
            },
            "stage_seconds": timer.seconds,
            "rows_per_second_per_core": {
                "embed": _per_core_second(n_embedded + n_unembedded, timer.seconds["embed"], cores),
                "assign": _per_core_second(n_assigned, timer.seconds["assign"], cores),
            },
            "total_seconds": round(time.perf_counter() - started, 3),
        }
        if label_col:
            manifest["evaluation"] = {"label_col": label_col, **_agreement(assigned, embedded, label_col)}
        if baselines is not None:
            manifest["baselines"] = baselines.scores
        if stability_scores is not None:
            manifest["stability"] = stability_scores
        with timer.stage("report"):
            on_map = _map_sample(len(fit_ids), config)
            report = ReportInputs(
                manifest=manifest,
                embeddings=fit_embeddings[on_map],
                labels=fit_labels[on_map],
                truth=fit_classes[on_map] if fit_classes is not None else None,
                baseline_labels=baselines.raw_labels[on_map] if baselines is not None else None,
                summary=summary,
                examples={
                    int(c): group[features.source].tolist()
                    for c, group in examples.groupby(CLUSTER_COL)
                    if features.source in group
                },
            )
            write_report(report, lambda name, data: fs.write_bytes(f"{staging}/{REPORT_DIR}/{name}", data), seed=config.manifold.seed)
        manifest["total_seconds"] = round(time.perf_counter() - started, 3)
        write_manifest(fs, staging, manifest)
    return RunResult(output=output_path, manifest=manifest)


_SUMMARY_SCHEMA = T.StructType(
    [
        T.StructField(CLUSTER_COL, T.IntegerType(), False),
        T.StructField("size", T.LongType(), False),
        T.StructField("top_terms", T.ArrayType(T.StringType(), False), False),
        T.StructField("coherence", T.DoubleType(), True),
        T.StructField("example_ids", T.ArrayType(T.LongType(), False), False),
    ]
)


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


def _map_sample(n_rows: int, config: JobConfig) -> np.ndarray:
    """Positions of the fit rows drawn on the report's maps: a seeded sample, in id order."""
    picked = np.random.default_rng(config.manifold.seed).permutation(n_rows)[: config.evaluate.map_rows]
    return np.sort(picked)


def _coherence(top_terms: pd.Series, vocab: list[str] | None, documents) -> list[float | None]:
    """Each cluster's top-term NPMI over the autoencoder's sample of the corpus (text mode only)."""
    if vocab is None:
        return [None] * len(top_terms)
    index = {term: i for i, term in enumerate(vocab)}
    return [npmi_coherence(documents, [index[t] for t in terms]) for terms in top_terms]


def _spread(reviews: DataFrame) -> DataFrame:
    """Hash-partition by id when the input has fewer partitions than cores (a .gz file is read as one)."""
    cores = reviews.sparkSession.sparkContext.defaultParallelism
    if reviews.rdd.getNumPartitions() >= cores:
        return reviews
    return reviews.repartition(cores, ID_COL)


@dataclass(frozen=True)
class Featurized:
    """The vectorize stage's result: every row with its input vector and reject reason."""

    rows: DataFrame
    # The column the autoencoder and the embedding read, and the input column it came from.
    column: str
    source: str
    dimension: int
    # Text mode only.
    text_model: PipelineModel | None = None
    vocabulary: list[str] | None = None

    @property
    def dimension_text(self) -> str:
        if self.vocabulary is not None:
            return f"the vocabulary has {self.dimension} terms"
        return f"the feature vectors have {self.dimension} values"


def _featurize(reviews: DataFrame, config: JobConfig) -> Featurized:
    """Text mode: Spark ML count vectors; vector mode: the checked numeric column."""
    if config.input.features_col is not None:
        arrays = as_feature_arrays(reviews, config.input.features_col)
        length = most_common_length(arrays.filter(F.col(REASON_COL).isNull()))
        return Featurized(
            rows=with_vector_reason(arrays, length),
            column=FEATURES_COL,
            source=config.input.features_col,
            dimension=length,
        )
    # The vocabulary comes from the accepted rows only; every row is vectorized, so that
    # the rejects keep their place in one DataFrame with the rest.
    text_model = fit_text_model(reviews.filter(F.col(REASON_COL).isNull()), config.input.text_col, config.text)
    vocab = vocabulary(text_model)
    return Featurized(
        rows=with_text_reason(vectorize(text_model, reviews)),
        column=COUNTS_COL,
        source=config.input.text_col,
        dimension=len(vocab),
        text_model=text_model,
        vocabulary=vocab,
    )


def _check_usable(n_usable: int, features: Featurized, config: JobConfig) -> None:
    """Fail before training when the rows or the input vectors cannot support the configured model."""
    check_enough_rows(n_usable, config.cluster)
    if features.dimension <= config.autoencoder.bottleneck:
        advice = "lower text.min_df or give more text" if features.vocabulary is not None else "lower the bottleneck"
        raise InputError(
            f"{features.dimension_text}, not more than autoencoder.bottleneck={config.autoencoder.bottleneck}: {advice}"
        )


def _per_core_second(n_rows: int, seconds: float, cores: int) -> float | None:
    return round(n_rows / seconds / cores, 1) if n_rows and seconds > 0 else None


# Rows without a known class are scored as one class of their own.
_NULL_CLASS = "<null>"


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


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions

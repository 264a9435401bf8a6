"""The N2D job, stage by stage: read, vectorize, autoencoder, embed, manifold, cluster, assign, evaluate,
write, report, publish. Each stage lives in its own module; this one only composes them.

- read, vectorize, embed, assign: rows/job_stages.py (rows on the executors)
- autoencoder, embed, manifold, cluster: rows/fit.py, the fit the estimator runs too (model/autoencoder.py, model/manifold.py,
  model/cluster.py: the fit samples on the driver)
- evaluate: evaluation/scoring.py and evaluation/baselines.py
- write: outputs/tables.py (row outputs, checked), model/bundle.py (the model); run.json: outputs/run_json.py
- report: evaluation/report.py (an update's: evaluation/update_report.py); publish: outputs/publish.py (staged folder), outputs/catalog.py (tables)

Over 300 lines: the three runs (training, assign, update) side by side, each composing the same stages.
"""

from __future__ import annotations

from contextlib import ExitStack

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from n2d_spark.core.columns import CLUSTER_COL, ID_COL, REASON_COL, WORD_COUNT_COL
from n2d_spark.core.config import JobConfig
from n2d_spark.core.errors import BundleError
from n2d_spark.core.fs import FileSystem
from n2d_spark.core.metrics import silhouette_on_sample
from n2d_spark.core.run_context import Run, RunResult
from n2d_spark.evaluation.report import ReportInputs, write_report
from n2d_spark.evaluation.update_report import UPDATE_HTML, render_update_html
from n2d_spark.evaluation.scoring import (
    evaluate_fit,
    label_agreement,
    map_sample,
    nearest_for_ids,
    texts_for_ids,
    topic_quality,
)
from n2d_spark.model.assign_policy import assign_config, updated_model_config
from n2d_spark.model.bundle import ModelBundle, load_bundle, save_bundle
from n2d_spark.model.novelty import NOVELTY_NEIGHBOURS
from n2d_spark.model.topics import ModelTopics, topics_of
from n2d_spark.outputs import tables
from n2d_spark.outputs.catalog import check_table_first, publish_tables
from n2d_spark.outputs.publish import (
    MODEL_DIR,
    NEIGHBOURS_DIR,
    REPORT_DIR,
    refuse_unsafe_output,
    staged_output,
    write_manifest,
)
from n2d_spark.outputs.drift import drift
from n2d_spark.outputs.run_json import RunRecord, Training, run_manifest
from n2d_spark.rows import job_stages
from n2d_spark.rows import update as update_rows
from n2d_spark.rows.fit import fit_model
from n2d_spark.rows.vectorize import out_of_vocabulary_share


# A click on a point of the report's map lists this many of its most similar rows.
MAP_NEIGHBOURS = 5


def run_job(spark: SparkSession, config: JobConfig, input_path: str, output_path: str) -> RunResult:
    """Cluster the rows at ``input_path``; publish labels, summary, model bundle, report and manifest at ``output_path``."""
    check_table_first(spark, config)
    output_fs = FileSystem(spark, output_path)
    refuse_unsafe_output(output_path, [input_path], output_fs)
    with ExitStack() as cached:
        run = Run(spark, config, input_path, output_path, output_fs, cached)
        with staged_output(run.fs, output_path, config.output.mode, run.run_id) as staging:
            read = job_stages.read(run, _tables_check(spark, config))
            features, vectors = job_stages.vectorize(run, read, learned_text=None)
            usable = vectors.filter(F.col(REASON_COL).isNull())

            # The stages autoencoder, embed, manifold and cluster (rows/fit.py), each timed for run.json.
            fit = fit_model(
                usable, features, config, read.tally, run.cached,
                stage=run.timer.stage, label_col=read.label_col, progress=True, with_tree=True,
            )

            assigned, n_assigned = job_stages.assign_fitted(
                run, fit.embedded, fit.assigner, fit.fit_ids, fit.fit_labels, fit.fit_coordinates
            )

            with run.timer.stage("evaluate"):
                evaluation = evaluate_fit(
                    fit.embedded.rows, vectors, features, read.label_col, fit.fit_ids, fit.fit_embeddings, fit.fit_labels,
                    fit.sample, fit.embedding_model, config,
                )

            with run.timer.stage("write"):
                labelled_rows = tables.labelled_rows(run, vectors, assigned)
                summary = tables.summarize(run, labelled_rows, features)
                learned_topics = topics_of(summary.table, out_of_vocabulary_share(usable, features))
                model_id = save_bundle(
                    run.fs, f"{staging}/{MODEL_DIR}", config, fit.embedding_model, fit.assigner, features.learned_text,
                    learned_topics, fit.novelty,
                )
                out = tables.write_rows(run, staging, vectors, summary, labelled_rows, fit.embedded, read.columns, model_id, read.tally)
                topics = topic_quality(config, vectors, features, out.summary)
                tables.write_summary(run, staging, out, fit.assigner.clusters.topic_of, model_id, vectors.schema[ID_COL].dataType)
                if fit.tree is not None:
                    tables.write_tree(run, staging, fit.tree)
                over_time = tables.write_topics_over_time(run, staging, labelled_rows, features) if config.input.time_col else None
            with run.timer.stage("neighbours"):
                found = tables.write_neighbours(run, staging, fit.embedded, model_id)
            users = _users(run, staging, vectors, assigned, fit.embedded, out.summary, model_id)

            record = RunRecord(
                run=run,
                model_id=model_id,
                tally=read.tally,
                input_dimension=features.dimension,
                written=out,
                embedded=fit.embedded,
                n_assigned=n_assigned,
                label_col=read.label_col,
                agreement=label_agreement(assigned, fit.embedded.rows, read.label_col) if read.label_col else None,
                neighbours=found,
                users=users,
                training=Training(
                    autoencoder_sample=len(fit.sample_ids),
                    manifold_fit=len(fit.fit_ids),
                    trained=fit.trained,
                    clusters=fit.assigner.clusters,
                    silhouette=silhouette_on_sample(
                        fit.fit_coordinates, fit.fit_labels, config.evaluate.silhouette_rows, seed=config.cluster.seed
                    ),
                    topics=topics,
                    baselines=evaluation.baselines,
                    stability=evaluation.stability,
                    topics_over_time=over_time.about if over_time is not None else None,
                ),
            )
            with run.timer.stage("report"):
                on_map = map_sample(len(fit.fit_ids), config)
                baselines = evaluation.baselines
                report = ReportInputs(
                    manifest=run_manifest(record),
                    embeddings=fit.fit_embeddings[on_map],
                    labels=fit.fit_labels[on_map],
                    truth=evaluation.classes[on_map] if evaluation.classes is not None else None,
                    baseline_labels=baselines.raw_labels[on_map] if baselines is not None else None,
                    summary=out.summary,
                    examples=out.example_texts,
                    tree=fit.tree,
                    texts=texts_for_ids(vectors, fit.fit_ids[on_map], features),
                    confidence=fit.assigner.clusters.confidence(fit.fit_coordinates[on_map], fit.fit_labels[on_map])[0],
                    topics_over_time=over_time.table if over_time is not None else None,
                    nearest=(
                        nearest_for_ids(spark.read.parquet(f"{staging}/{NEIGHBOURS_DIR}"), vectors, fit.fit_ids[on_map], features, MAP_NEIGHBOURS)
                        if found is not None else None
                    ),
                )
                write_report(report, lambda name, data: run.fs.write_bytes(f"{staging}/{REPORT_DIR}/{name}", data), seed=config.manifold.seed)
            manifest = run_manifest(record, total_seconds=run.elapsed())
            write_manifest(run.fs, staging, manifest)
    return _published(spark, config, output_path, manifest)


def run_assign(
    spark: SparkSession, model_path: str, input_path: str, output_path: str, overrides: list[str] = (), allow_pickle: bool = False
) -> RunResult:
    """Label the rows at ``input_path`` with the saved model at ``model_path``, without training anything.

    Every row is vectorized with the model's vocabulary, embedded with its encoder, placed on
    its UMAP and assigned by its clusterer on the executors, as the training run's rows outside
    its fit sample were. ``overrides`` may set the keys that do not change the model
    (model/assign_policy.py); ``allow_pickle`` lets a trusted bundle's pickles load (bundle.load_bundle).
    """
    bundle = load_bundle(spark, FileSystem(spark, model_path), model_path, allow_pickle=allow_pickle)
    config = assign_config(bundle.config, overrides)
    check_table_first(spark, config)
    output_fs = FileSystem(spark, output_path)
    refuse_unsafe_output(output_path, [input_path, model_path], output_fs)
    with ExitStack() as cached:
        run = Run(spark, config, input_path, output_path, output_fs, cached)
        with staged_output(run.fs, output_path, config.output.mode, run.run_id) as staging:
            labelled = job_stages.label_with(run, bundle, _tables_check(spark, config))
            read, features, vectors, embedded, assigned = (
                labelled.input, labelled.features, labelled.vectors, labelled.embedded, labelled.assigned
            )
            with run.timer.stage("write"):
                labelled_rows = tables.labelled_rows(run, vectors, assigned)
                summary = tables.summarize(run, labelled_rows, features)
                out = tables.write_rows(run, staging, vectors, summary, labelled_rows, embedded, read.columns, bundle.model_id, read.tally)
                out.summary["coherence"] = None
                topic_of = bundle.assigner.clusters.topic_of
                tables.write_summary(
                    run, staging, out, topic_of, bundle.model_id, vectors.schema[ID_COL].dataType, first_models(bundle),
                )
            manifest = _finished_with_model(run, staging, labelled, assigned, out, bundle.model_id, model_path)
    return _published(spark, config, output_path, manifest)


def run_update(
    spark: SparkSession, model_path: str, input_path: str, output_path: str, overrides: list[str] = (), allow_pickle: bool = False
) -> RunResult:
    """Label the rows at ``input_path`` with the saved model, find the rows it does not describe and the
    topics they form, and publish an updated model with them beside the labels (docs/reuse.md,
    "Keeping a model current").

    Every row is embedded and assigned by the old model, as in ``run_assign``; each gets its novelty
    (rows/update.py). Novel rows that form groups of their own become new topics, numbered after the
    old ones; a novel row that lies among one's rows joins it (a new row), and every other row keeps
    the old model's label. The vocabulary, the encoder, the UMAP and the old topics stay as they were.
    """
    bundle = load_bundle(spark, FileSystem(spark, model_path), model_path, allow_pickle=allow_pickle)
    check_updatable(bundle, model_path)
    config = assign_config(bundle.config, overrides, command="update")
    check_table_first(spark, config)
    output_fs = FileSystem(spark, output_path)
    refuse_unsafe_output(output_path, [input_path, model_path], output_fs)
    with ExitStack() as cached:
        run = Run(spark, config, input_path, output_path, output_fs, cached)
        with staged_output(run.fs, output_path, config.output.mode, run.run_id) as staging:
            labelled = job_stages.label_with(run, bundle, _tables_check(spark, config, novelty=True))
            read, features, vectors, embedded, assigned = (
                labelled.input, labelled.features, labelled.vectors, labelled.embedded, labelled.assigned
            )
            with run.timer.stage("new rows and topics"):
                rows, terms_col = embedded.rows, None
                if bundle.novelty.terms is not None:
                    terms_col = features.column
                    rows = run.persist(rows.join(vectors.select(ID_COL, terms_col, WORD_COUNT_COL), ID_COL))
                update = update_rows.find_new(
                    rows, assigned, bundle.assigner, bundle.novelty, config, run.cached, terms_col, bundle.topics.out_of_vocabulary_share,
                )
                done = update_rows.labelled_by_update(assigned, rows, update, bundle.assigner, bundle.novelty, config, terms_col, run.cached)
                new_topic_ids = done.update.topics.topic_ids
                assigned = run.persist(done.assigned.join(update.novelty.scores, ID_COL))
                assigned.count()
            with run.timer.stage("write"):
                labelled_rows = tables.labelled_rows(run, vectors, assigned)
                summary = tables.named_as_the_model(tables.summarize(run, labelled_rows, features), bundle.topics)
                summary = tables.named_afresh(run, summary, vectors, features, assigned, new_topic_ids)
                oov = out_of_vocabulary_share(vectors.filter(F.col(REASON_COL).isNull()), features)
                topics = updated_topics(bundle, summary.table, new_topic_ids)
                model_id = save_bundle(
                    run.fs, f"{staging}/{MODEL_DIR}", updated_model_config(bundle.config, config), bundle.embedding_model,
                    done.assigner, bundle.learned_text, topics, done.signals, parent_model_id=bundle.model_id,
                )
                out = tables.write_rows(run, staging, vectors, summary, labelled_rows, embedded, read.columns, model_id, read.tally)
                out.summary["coherence"] = None
                tables.write_summary(
                    run, staging, out, bundle.assigner.clusters.topic_of, model_id, vectors.schema[ID_COL].dataType,
                    {t.cluster: t.first_model for t in topics.topics},
                )
            account = drift(bundle, config, out, done, embedded.n_rows, oov)
            manifest = _finished_with_model(run, staging, labelled, assigned, out, model_id, model_path, account)
            run.fs.write_bytes(f"{staging}/{REPORT_DIR}/{UPDATE_HTML}", render_update_html(manifest).encode())
    return _published(spark, config, output_path, manifest)


def check_updatable(bundle: ModelBundle, model_path: str) -> None:
    """A bundle from before update (format 3 or older), or without a novelty calibration, is refused in one line."""
    if bundle.topics is None:
        raise BundleError(
            f"model bundle {model_path}: format version {bundle.format_version} predates update (it keeps no topic names "
            f"or novelty calibration); assign still reads it: train a new model to update it"
        )
    if bundle.novelty is None:
        raise BundleError(
            f"model bundle {model_path}: its fit had too few rows to calibrate novelty "
            f"(more than {2 * NOVELTY_NEIGHBOURS + 1} are needed): train it on more rows to update it"
        )


def updated_topics(bundle: ModelBundle, summary: pd.DataFrame, new_topic_ids: list[int]) -> ModelTopics:
    """The updated model's topics: the old ones as they were (first appeared in the parent or before), the new ones
    named from the new data, with their share of it."""
    new = topics_of(summary[summary[CLUSTER_COL].isin(new_topic_ids)], None, total=int(summary["size"].sum()))
    return bundle.topics.updated(bundle.model_id, new.topics)


def _finished_with_model(
    run: Run, staging: str, labelled: job_stages.Labelled, assigned: DataFrame, written: tables.Written, model_id: str,
    model_path: str, update: dict | None = None,
) -> dict:
    """The end of a run with a saved model (assign, update): neighbours/, users/ and run.json; returns the manifest."""
    read, embedded = labelled.input, labelled.embedded
    with run.timer.stage("neighbours"):
        found = tables.write_neighbours(run, staging, embedded, model_id)
    users = _users(run, staging, labelled.vectors, assigned, embedded, written.summary, model_id)
    record = RunRecord(
        run=run,
        model_id=model_id,
        tally=read.tally,
        input_dimension=labelled.features.dimension,
        written=written,
        embedded=embedded,
        n_assigned=embedded.n_rows,
        label_col=read.label_col,
        agreement=label_agreement(assigned, embedded.rows, read.label_col) if read.label_col else None,
        model_path=model_path,
        neighbours=found,
        users=users,
        update=update,
    )
    manifest = run_manifest(record, total_seconds=run.elapsed())
    write_manifest(run.fs, staging, manifest)
    return manifest


def first_models(bundle: ModelBundle) -> dict[int, str]:
    """The model each of the bundle's topics first appeared in (a format 3 bundle's: its own)."""
    if bundle.topics is None:
        return {}
    return {t.cluster: t.first_model or bundle.model_id for t in bundle.topics.topics}


def _users(
    run: Run, staging: str, vectors: DataFrame, assigned: DataFrame, embedded: job_stages.Embedded, summary: pd.DataFrame,
    model_id: str,
) -> dict | None:
    """users/ and similar_users/ when input.user_col names who wrote each row; timed as the stage users."""
    if run.config.input.user_col is None:
        return None
    with run.timer.stage("users"):
        return tables.write_users(run, staging, vectors, assigned, embedded, summary, model_id)


def _tables_check(spark: SparkSession, config: JobConfig, novelty: bool = False):
    """The check of ``output.table``'s tables against the columns the input will give them, run before any row is read."""
    if config.output.table is None:
        return None
    return lambda schema, columns: check_table_first(spark, config, tables.table_schemas(schema, columns, config, novelty))


def _published(spark: SparkSession, config: JobConfig, output_path: str, manifest: dict) -> RunResult:
    """The run's result once its output is published, and its tables too where ``output.table`` asks."""
    tables = publish_tables(spark, config, output_path)
    if tables is not None:
        manifest = {**manifest, "tables": tables}
    return RunResult(output=output_path, manifest=manifest)

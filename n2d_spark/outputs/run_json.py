"""run.json: what a run did, built in one place from the stages' results.

A training run records its samples, the autoencoder's training, the clusters' scores and the
evaluation (``Training``); an assign run records the model it used (``RunRecord.model_path``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import pandas as pd

from n2d_spark.core.columns import CLUSTER_COL, NOISE
from n2d_spark.core.metrics import sizes_shape
from n2d_spark.core.run_context import Run
from n2d_spark.evaluation.baselines import Baselines
from n2d_spark.model.autoencoder import TrainedAutoencoder
from n2d_spark.model.bundle_json import run_versions
from n2d_spark.model.cluster import FittedClusters
from n2d_spark.outputs.tables import Written
from n2d_spark.rows.job_stages import Embedded
from n2d_spark.rows.rejects import RejectTally


@dataclass(frozen=True)
class Training:
    """What only a training run records."""

    autoencoder_sample: int
    manifold_fit: int
    trained: TrainedAutoencoder
    clusters: FittedClusters
    silhouette: float | None
    # evaluation/scoring.py's topic_quality; None in vector mode.
    topics: dict | None
    baselines: Baselines | None = None
    stability: dict | None = None
    # tables.TopicsOverTime.about, with input.time_col.
    topics_over_time: dict | None = None


@dataclass(frozen=True)
class RunRecord:
    """A run's results, from read to write: run.json is made from it alone."""

    run: Run
    model_id: str
    tally: RejectTally
    input_dimension: int
    written: Written
    embedded: Embedded
    # Rows the executors assigned (all embedded rows in an assign run; those outside the fit sample in training).
    n_assigned: int
    # scoring.label_agreement against this column, when one is scored.
    label_col: str | None = None
    agreement: dict | None = None
    training: Training | None = None
    # Assign runs: the model bundle used.
    model_path: str | None = None
    # neighbours/ (similar.k > 0): what tables.write_neighbours says of its search.
    neighbours: dict | None = None
    # users/ (input.user_col): what tables.write_users says of it.
    users: dict | None = None
    # Update runs: outputs/drift.py's account of the new data against the model.
    update: dict | None = None
    finished_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))


def run_manifest(record: RunRecord, total_seconds: float | None = None) -> dict:
    """run.json's content; ``total_seconds`` once the run is done (the report is made from it before)."""
    run, written = record.run, record.written
    cores = run.spark.sparkContext.defaultParallelism
    seconds = dict(run.timer.seconds)
    summary = written.summary
    manifest = {
        "run_id": run.run_id,
        "model_id": record.model_id,
        "finished_at": record.finished_at,
        "input": run.input_path,
        "output": run.output_path,
        "spark": {"master": run.spark.sparkContext.master, "default_parallelism": cores},
        "config": run.config.to_dict(),
        "versions": run_versions(),
        "rows": {
            "in": record.tally.rows_in,
            "labelled": written.rows_out,
            "rejected": written.rows_rejected,
            "assigned_on_executors": int(record.n_assigned),
        },
        "rejected_by_reason": dict(sorted(record.tally.by_reason.items())),
        "input_dimension": record.input_dimension,
        "clusters": {**sizes_shape(dict(zip(summary[CLUSTER_COL].tolist(), summary["size"].tolist()))), "largest": _largest(summary)},
        "stage_seconds": seconds,
        "rows_per_second_per_core": {
            "embed": _per_core_second(record.embedded.n_rows + record.embedded.n_unembedded, seconds["embed"], cores),
            "assign": _per_core_second(record.n_assigned, seconds["assign"], cores),
        },
    }
    if record.label_col:
        manifest["evaluation"] = {"label_col": record.label_col, **record.agreement}
    if record.training is not None:
        _add_training(manifest, record.training)
    if record.model_path is not None:
        manifest["model"] = record.model_path
    if record.neighbours is not None:
        manifest["neighbours"] = record.neighbours
    if record.users is not None:
        manifest["users"] = record.users
    if record.update is not None:
        manifest["update"] = record.update
    if total_seconds is not None:
        manifest["total_seconds"] = total_seconds
    return manifest


def _add_training(manifest: dict, training: Training) -> None:
    trained, clusters = training.trained, training.clusters
    manifest["rows"]["autoencoder_sample"] = training.autoencoder_sample
    manifest["rows"]["manifold_fit"] = training.manifold_fit
    manifest["autoencoder_history"] = trained.history
    manifest["autoencoder_precision"] = trained.precision
    manifest["autoencoder_epochs"] = {"planned": trained.epochs_planned, "run": len(trained.history["loss"]), "best": trained.best_epoch}
    manifest["topics"] = training.topics
    manifest["clusters"]["noise_share_before_reduction"] = clusters.fit_noise_share
    if clusters.k_scores is not None:
        manifest["clusters"]["k_silhouettes"] = clusters.k_scores
    manifest["clusters"]["silhouette"] = training.silhouette
    if training.baselines is not None:
        manifest["baselines"] = training.baselines.scores
    if training.stability is not None:
        manifest["stability"] = training.stability
    if training.topics_over_time is not None:
        manifest["topics_over_time"] = training.topics_over_time


def _largest(summary: pd.DataFrame, n: int = 5) -> list[dict]:
    """The ``n`` largest clusters (noise left out): cluster, name and share of the labelled rows."""
    total = int(summary["size"].sum())
    top = summary[summary[CLUSTER_COL] != NOISE].sort_values(["size", CLUSTER_COL], ascending=[False, True]).head(n)
    return [{"cluster": int(c), "name": name, "share": int(size) / total} for c, name, size in zip(top[CLUSTER_COL], top["name"], top["size"])]


def _per_core_second(n_rows: int, seconds: float, cores: int) -> float | None:
    return round(n_rows / seconds / cores, 1) if n_rows and seconds > 0 else None

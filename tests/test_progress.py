import logging
import time

import numpy as np

import n2d_spark.model.manifold as manifold
from n2d_spark.core.progress import spark_progress, umap_progress


def test_spark_jobs_report_tasks_done_and_rows_per_second(spark, caplog):
    def slow(batches):
        for batch in batches:
            time.sleep(0.5)
            yield batch

    rows = spark.range(800).repartition(8).mapInPandas(slow, "id long")
    with caplog.at_level(logging.INFO, logger="n2d_spark.core.progress"):
        with spark_progress(spark, "assign", 800, every_seconds=0.3):
            assert rows.count() == 800
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("assign: ") and " of 8 tasks done, " in line for line in lines[:-1]), lines
    assert lines[-1].startswith("assign: 800 rows in ") and lines[-1].endswith(" rows/s"), lines
    # The job group was the block's own: later jobs are not counted as its tasks.
    assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") is None


def test_umap_layout_epochs_are_logged_and_transform_stays_silent(caplog, monkeypatch):
    monkeypatch.setattr(manifold, "umap_progress", lambda stage: umap_progress(stage, every_seconds=0.0))
    points = np.random.default_rng(0).normal(size=(300, 5)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="n2d_spark.core.progress"):
        reducer, _ = manifold.seeded_umap(points, 2, 10, 0.1, "euclidean", seed=0)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[-1].startswith("manifold: layout epoch 500 of 500, "), lines
    assert not any("epoch 0 of" in line for line in lines)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="n2d_spark.core.progress"):
        reducer.transform(points[:20])
    assert caplog.records == []

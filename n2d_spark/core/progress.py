"""Progress lines for the long, otherwise silent parts of a run: Spark jobs and UMAP's layout epochs."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from contextlib import contextmanager

log = logging.getLogger("n2d_spark.core.progress")


@contextmanager
def spark_progress(spark, stage: str, n_rows: int, every_seconds: float = 30.0):
    """Log, every ``every_seconds`` while the block runs, how many tasks of its busiest running
    Spark stage are done and the rows per second that share implies (``n_rows`` in all), then
    the block's rows per second at the end. The block's jobs are found by a job group of their own."""
    sc = spark.sparkContext
    group = f"n2d-{stage}-{uuid.uuid4().hex[:8]}"
    sc.setJobGroup(group, f"n2d-spark {stage}")
    stop = threading.Event()
    started = time.perf_counter()

    def report() -> None:
        while not stop.wait(every_seconds):
            busiest = _busiest_active_stage(sc.statusTracker(), group)
            if busiest is not None:
                done, total = busiest
                elapsed = time.perf_counter() - started
                log.info(
                    "%s: %d of %d tasks done, %.0f s in, about %.0f rows/s",
                    stage, done, total, elapsed, n_rows * done / total / elapsed,
                )

    reporter = threading.Thread(target=report, name=f"{stage}-progress", daemon=True)
    reporter.start()
    try:
        yield
    finally:
        stop.set()
        reporter.join()
        sc._jsc.clearJobGroup()
    seconds = time.perf_counter() - started
    log.info("%s: %d rows in %.1f s, %.0f rows/s", stage, n_rows, seconds, n_rows / seconds if seconds else 0.0)


def _busiest_active_stage(tracker, group: str) -> tuple[int, int] | None:
    """(completed, all) tasks of the group's running stage with the most tasks: the one where
    the rows are, rather than a small shuffle before it."""
    stage_ids = {sid for job_id in tracker.getJobIdsForGroup(group) if (job := tracker.getJobInfo(job_id)) for sid in job.stageIds}
    infos = [tracker.getStageInfo(sid) for sid in tracker.getActiveStageIds() if sid in stage_ids]
    infos = [info for info in infos if info is not None and info.numTasks]
    if not infos:
        return None
    busiest = max(infos, key=lambda info: info.numTasks)
    return busiest.numCompletedTasks, busiest.numTasks


class EpochLog:
    """A file for tqdm that logs its progress line, as UMAP's layout epochs advance."""

    def __init__(self, stage: str):
        self.stage = stage

    def write(self, text: str) -> None:
        line = re.sub(r"\s+", " ", text).strip()
        # tqdm's first display, before any epoch, says nothing yet.
        if line and not line.startswith("layout epoch 0 of"):
            log.info("%s: %s", self.stage, line)

    def flush(self) -> None:
        pass


def umap_progress(stage: str, every_seconds: float = 30.0) -> dict:
    """``tqdm_kwds`` for ``umap.UMAP``: its layout epochs logged at most every ``every_seconds``."""
    return {
        "disable": False,
        "file": EpochLog(stage),
        "mininterval": every_seconds,
        "bar_format": "layout epoch {n_fmt} of {total_fmt}, {elapsed} elapsed, {remaining} to go",
    }

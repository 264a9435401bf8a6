"""What every stage of one job run shares: the session, config, paths, stage timer, and what it holds on the cluster."""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession

from n2d_spark.core.config import JobConfig
from n2d_spark.core.fs import FileSystem
from n2d_spark.core.resources import persisted

log = logging.getLogger(__name__)


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


# A run id as Run makes it: its start in UTC and 8 random hex digits (20261126T204113Z-1a2b3c4d).
RUN_ID_PATTERN = r"\d{8}T\d{6}Z-[0-9a-f]{8}"


def new_run_id() -> str:
    """A run id as RUN_ID_PATTERN matches it: the UTC time, then 8 random hex digits."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


@dataclass
class Run:
    """One run's session, config, paths, output file system, timer, and the cached rows it holds."""

    spark: SparkSession
    config: JobConfig
    input_path: str
    output_path: str
    fs: FileSystem
    cached: ExitStack
    run_id: str = field(default_factory=new_run_id)
    started: float = field(default_factory=time.perf_counter)
    timer: StageTimer = field(default_factory=StageTimer)

    def persist(self, frame: DataFrame) -> DataFrame:
        return persisted(self.cached, frame)

    def elapsed(self) -> float:
        return round(time.perf_counter() - self.started, 3)

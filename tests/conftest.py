"""One local SparkSession for the whole suite, and the paths tests share."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IMDB_CSV = REPO.parent / "shared" / "data" / "imdb_reviews.csv.gz"

requires_imdb = pytest.mark.skipif(not IMDB_CSV.is_file(), reason=f"{IMDB_CSV} is absent")


@pytest.fixture(scope="session")
def spark():
    # Executors (Python workers) must run this interpreter, which has the project installed.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("n2d-spark-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()

"""One local SparkSession for the whole suite, and the paths and helpers tests share."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
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


def legacy_pickle(value) -> bytes:
    """``value`` pickled as format 1 bundles hold it: its classes named at the package's top level,
    where they lived before the package was grouped into sub-packages (n2d_spark.cluster, ...)."""
    # Protocol 2 names a class as a text line (GLOBAL), so the module's name can be swapped in place.
    data = pickle.dumps(value, protocol=2)
    for old in (b"cluster", b"manifold", b"encoder"):
        data = data.replace(b"cn2d_spark.model." + old + b"\n", b"cn2d_spark." + old + b"\n")
    assert b"n2d_spark.model." not in data
    return data


def as_format_1(spark, model: Path) -> None:
    """The model bundle in ``model`` as format 1 laid it out: the UMAP and the clusterer as pickles."""
    # Imported here: every test file loads conftest, and most need nothing of the bundle's.
    from n2d_spark.core.fs import FileSystem
    from n2d_spark.model.bundle import load_bundle
    from n2d_spark.model.bundle_json import model_id_of

    assigner = load_bundle(spark, FileSystem(spark, str(model)), str(model)).assigner
    manifest = json.loads((model / "bundle.json").read_text())
    for name in ("umap.npz", "clusters.npz", "bundle.json"):
        (model / name).unlink()
        (model / f".{name}.crc").unlink(missing_ok=True)
        manifest["parts"].pop(name, None)
    for name, part in (("umap.pkl", assigner.reducer), ("clusters.pkl", assigner.clusters)):
        data = legacy_pickle(part)
        (model / name).write_bytes(data)
        manifest["parts"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    manifest.update(format_version=1, model_id=model_id_of(manifest["parts"]))
    (model / "bundle.json").write_text(json.dumps(manifest))

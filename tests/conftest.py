"""One local SparkSession for the whole suite, and the paths and helpers tests share."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
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


def rewrite_parts(model: Path, remove: list[str], add: dict[str, bytes], **fields) -> None:
    """Parts of the bundle in ``model`` removed and added, and bundle.json rewritten to match (``fields`` updated)."""
    from n2d_spark.model.bundle_json import model_id_of

    manifest = json.loads((model / "bundle.json").read_text())
    for name in [*remove, "bundle.json"]:
        (model / name).unlink()
        (model / f".{name}.crc").unlink(missing_ok=True)
        manifest["parts"].pop(name, None)
    for name, data in add.items():
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        (model / name).write_bytes(data)
        manifest["parts"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    manifest.update(fields, model_id=model_id_of(manifest["parts"]))
    (model / "bundle.json").write_text(json.dumps(manifest))


def as_format_2(spark, model: Path) -> None:
    """The text-mode bundle in ``model`` as format 2 laid it out: its text pipeline as Spark ML saved it (text_pipeline/)."""
    from n2d_spark.model.text_vocabulary import SPARK_ML_CLEANING_PATTERNS, TextVocabulary, cleaning_sql
    from n2d_spark.rows.text import text_model_reading

    text_col = json.loads((model / "bundle.json").read_text())["config"]["input"]["text_col"]
    learned = TextVocabulary.from_json((model / "text.json").read_bytes())
    saved = model.parent / f"{model.name}.text_pipeline"
    # The stages this project's pipeline has always had, saved by Spark ML as format 2 did,
    # with the cleaning statement of its day.
    pipeline = text_model_reading(learned, text_col)
    pipeline.stages[0].setStatement(cleaning_sql(text_col, SPARK_ML_CLEANING_PATTERNS))
    pipeline.write().save(str(saved))
    files = {f"text_pipeline/{path.relative_to(saved)}": path.read_bytes() for path in sorted(saved.rglob("*"))
             if path.is_file() and not path.name.endswith(".crc")}
    shutil.rmtree(saved)
    rewrite_parts(model, ["text.json"], files, format_version=2)


def as_format_1(spark, model: Path) -> None:
    """The model bundle in ``model`` as format 1 laid it out: the UMAP and the clusterer as pickles, the text pipeline as Spark ML saved it."""
    # Imported here: every test file loads conftest, and most need nothing of the bundle's.
    from n2d_spark.core.fs import FileSystem
    from n2d_spark.model.bundle import load_bundle

    assigner = load_bundle(spark, FileSystem(spark, str(model)), str(model)).assigner
    if (model / "text.json").exists():
        as_format_2(spark, model)
    pickles = {"umap.pkl": legacy_pickle(assigner.reducer), "clusters.pkl": legacy_pickle(assigner.clusters)}
    rewrite_parts(model, ["umap.npz", "clusters.npz"], pickles, format_version=1)

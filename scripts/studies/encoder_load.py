"""What it costs to get the encoder to the executors: in the UDF's closure (what the code does) or as a file artifact.

    .venv/bin/python scripts/studies/encoder_load.py --master 'local[2]'           # a classic session
    .venv/bin/python scripts/studies/encoder_load.py --remote sc://localhost:15002  # a Spark Connect server

The embed and assign stages ship their models inside the pandas functions' closures: classic
PySpark broadcasts a pickled closure over 1 MB by itself, a Spark Connect client sends it in the
plan, and either way each task unpickles it. The other Connect-safe way is a file artifact
(``spark.addArtifacts(path, file=True)``, which classic sessions take too since Spark 4.0), read
from ``SparkFiles`` in the task. This script builds an encoder of the IMDB config's shape (a
5,000-term tf-idf scaler, encoder 5000-1024-512-256-10, float32) and runs the same tasks three
ways: with no model (the baseline), with the model in the closure, and with the model as an
artifact loaded in the task. Each task with a model embeds one 64-row batch. Per way: the median
wall time of ``--repeats`` jobs of ``--tasks-per-core`` tasks per core (after one that warms the
Python workers), the extra seconds per task over the baseline (getting the model and embedding),
and the median seconds a task spends loading an artifact and embedding. It also reports whether
any executor's Python imported TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from n2d_spark.core.session import default_parallelism
from n2d_spark.model.encoder import EmbeddingModel, Encoder, InputScaler

_SCHEMA = "pid long, load_s double, embed_s double, tensorflow boolean"


def default_shaped_model(vocabulary: int, widths: list[int], seed: int = 0) -> EmbeddingModel:
    rng = np.random.default_rng(seed)
    dims = [vocabulary, *widths]
    layers = tuple(
        (rng.normal(0, 0.02, (a, b)).astype(np.float32), np.zeros(b, np.float32)) for a, b in zip(dims, dims[1:])
    )
    idf = rng.uniform(0.5, 8.0, vocabulary).astype(np.float32)
    return EmbeddingModel(scaler=InputScaler(scaling="tfidf", l2_normalize=True, idf=idf), encoder=Encoder(layers=layers))


def sample_batch(vocabulary: int, rows: int = 64, seed: int = 1) -> sp.csr_matrix:
    return sp.random(rows, vocabulary, density=0.01, format="csr", dtype=np.float32, random_state=seed) * 5


def task(get_model, vocabulary: int):
    """A task's body: get the model (``get_model``: None for the baseline), embed a batch, say what it cost."""

    def run(batches):
        for _ in batches:
            pass
        started = time.perf_counter()
        model = get_model() if get_model else None
        loaded = time.perf_counter()
        if model is not None:
            model.embed(sample_batch(vocabulary))
        yield pd.DataFrame({
            "pid": [os.getpid()], "load_s": [loaded - started], "embed_s": [time.perf_counter() - loaded],
            "tensorflow": ["tensorflow" in sys.modules],
        })

    return run


def timed_job(spark, tasks: int, body, repeats: int) -> tuple[float, pd.DataFrame]:
    frame = spark.range(0, tasks, 1, tasks).mapInPandas(body, _SCHEMA)
    frame.toPandas()  # warms the Python workers
    walls, runs = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        runs.append(frame.toPandas())
        walls.append(time.perf_counter() - started)
    return float(np.median(walls)), pd.concat(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--master", help="a classic session on this master")
    where.add_argument("--remote", help="a Spark Connect server's URL")
    parser.add_argument("--vocabulary", type=int, default=5000)
    parser.add_argument("--widths", default="1024,512,256,10")
    parser.add_argument("--tasks-per-core", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    vocabulary = args.vocabulary
    model = default_shaped_model(vocabulary, [int(w) for w in args.widths.split(",")])
    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    folder = tempfile.mkdtemp(prefix="n2d-encoder-load-")
    artifact = os.path.join(folder, "encoder.pkl")
    with open(artifact, "wb") as f:
        f.write(payload)

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("n2d-encoder-load")
    if not args.remote:
        builder = builder.master(args.master).config("spark.ui.showConsoleProgress", "false")
    spark = (builder.remote(args.remote) if args.remote else builder).getOrCreate()
    spark.addArtifacts(artifact, file=True)
    cores = default_parallelism(spark)
    tasks = cores * args.tasks_per_core

    def from_artifact():
        from pyspark import SparkFiles

        with open(os.path.join(SparkFiles.getRootDirectory(), "encoder.pkl"), "rb") as f:
            return pickle.load(f)

    ways = {"baseline (no model)": None, "closure": lambda: model, "artifact": from_artifact}
    print(f"{'remote ' + args.remote if args.remote else 'master ' + args.master}: {cores} cores, {tasks} tasks; "
          f"model {len(payload) / 2**20:.1f} MiB pickled")
    walls = {}
    for name, get_model in ways.items():
        walls[name], rows = timed_job(spark, tasks, task(get_model, vocabulary), args.repeats)
        extra = (walls[name] - walls["baseline (no model)"]) * cores / tasks
        print(
            f"{name:20s} job {walls[name]:6.2f} s (median), {extra:+.3f} s per task over the baseline; in the task: "
            f"load {rows['load_s'].median():.3f} s (median), embed 64 rows {rows['embed_s'].median():.3f} s; "
            f"TensorFlow imported: {bool(rows['tensorflow'].any())}"
        )
    spark.stop()


if __name__ == "__main__":
    main()

"""How long an executor takes to load the broadcast encoder, and whether TensorFlow gets imported there.

    # on a cluster, with scripts/submit.sh's Python settings (the same spark-submit options work):
    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --master spark://HOST:PORT scripts/studies/encoder_load.py
    # or in local mode, for the numbers without a cluster:
    .venv/bin/python scripts/studies/encoder_load.py --master 'local[2]'

The embed stage broadcasts an ``EmbeddingModel`` (n2d_spark/model/encoder.py) and its pandas UDF
(n2d_spark/rows/embed.py) reads it with ``shared_model.value`` in each Python worker. This script
broadcasts a model of the default shape (a 5,000-term tf-idf scaler, encoder
5000-1024-512-256-10, float32 weights: what the job broadcasts on the IMDB config) and runs
tasks that do what the UDF does first: import ``n2d_spark.rows.embed`` (which the UDF's pickle
references), read ``.value`` (fetch and unpickle) and embed one 64-row batch. Each task reports
its Python worker's pid and interpreter, the seconds of each step, and whether ``tensorflow`` is
in ``sys.modules``; the first task in a worker pays the load, later tasks on a reused worker do
not. It also times the same load in a fresh local Python process, outside Spark.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp

from n2d_spark.model.encoder import EmbeddingModel, Encoder, InputScaler


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


def probe(shared, vocabulary: int):
    """A task's body: what the embedding UDF does before and while it embeds its first batch."""

    def run(_partition):
        import os

        t0 = time.perf_counter()
        import n2d_spark.rows.embed  # noqa: F401  the UDF's pickle refers to this module's functions

        t1 = time.perf_counter()
        model = shared.value
        t2 = time.perf_counter()
        model.embed(sample_batch(vocabulary))
        t3 = time.perf_counter()
        yield {
            "pid": os.getpid(),
            "python": sys.executable,
            "import_s": round(t1 - t0, 4),
            "load_s": round(t2 - t1, 4),
            "embed_64_rows_s": round(t3 - t2, 4),
            "tensorflow_imported": "tensorflow" in sys.modules,
        }

    return run


FRESH_PROCESS = """
import pickle, sys, time
t0 = time.perf_counter()
import n2d_spark.model.encoder
t1 = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    model = pickle.load(f)
t2 = time.perf_counter()
print({"import_s": round(t1 - t0, 4), "unpickle_s": round(t2 - t1, 4), "tensorflow_imported": "tensorflow" in sys.modules})
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", help="for a plain python run; under spark-submit the submit line decides")
    parser.add_argument("--vocabulary", type=int, default=5000)
    parser.add_argument("--widths", default="1024,512,256,10")
    parser.add_argument("--tasks-per-core", type=int, default=3)
    args = parser.parse_args()
    model = default_shaped_model(args.vocabulary, [int(w) for w in args.widths.split(",")])

    started = time.perf_counter()
    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    pickle_s = time.perf_counter() - started
    path = "/tmp/n2d-encoder-load.pkl"
    with open(path, "wb") as f:
        f.write(payload)
    fresh = subprocess.run([sys.executable, "-c", FRESH_PROCESS, path], capture_output=True, text=True, check=True)
    print(f"broadcast object: {len(payload) / 2**20:.1f} MiB pickled, {pickle_s:.3f} s to pickle on the driver")
    print(f"fresh local Python process: {fresh.stdout.strip()}")

    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("n2d-encoder-load")
    if args.master:  # a plain python run: the Python workers run this interpreter, as the console script's do
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    sc = spark.sparkContext
    spark.sparkContext.setLogLevel("WARN")
    shared = sc.broadcast(model)
    tasks = max(2, sc.defaultParallelism) * args.tasks_per_core
    rows = sc.parallelize(range(tasks), tasks).mapPartitions(probe(shared, args.vocabulary)).collect()
    print(f"master {sc.master}, {tasks} tasks; per task (the first task in each Python worker loads the encoder):")
    for row in rows:
        print(json.dumps(row))
    first = {}
    for row in rows:
        first.setdefault(row["pid"], row)
    loads = [r["load_s"] for r in first.values()]
    print(
        f"{len(first)} Python worker(s): encoder load (.value: read and unpickle) {min(loads):.3f}-{max(loads):.3f} s, "
        f"import n2d_spark.rows.embed {min(r['import_s'] for r in first.values()):.3f}-"
        f"{max(r['import_s'] for r in first.values()):.3f} s; tensorflow imported in any: "
        f"{any(r['tensorflow_imported'] for r in rows)}"
    )
    spark.stop()


if __name__ == "__main__":
    main()

"""Throughput of the embed stage alone: rows per second per core, on real count vectors.

    .venv/bin/python scripts/studies/embed_bench.py --input ../shared/data/imdb_reviews.csv.gz [--rows 50000] [--master local[2]]

Vectorizes the input with the job's text stage (vocabulary 5,000), caches the count vectors,
repeats them ``--repeat`` times, then times the embedding UDF with the default architecture
(5,000-1024-512-256-10; random weights: the cost does not depend on their values) writing to
Spark's no-op sink, ``--runs`` times; the first run starts the Python workers and is left out
of the median.
It also times the same forward pass in this process on one thread, without Spark, so that the
UDF's overhead (Arrow transfer, CSR assembly) shows as the difference.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import reduce

import numpy as np
from pyspark.sql import DataFrame
from threadpoolctl import threadpool_limits

from n2d_spark.cli import build_local_session
from n2d_spark.core.config import load_config
from n2d_spark.model.encoder import EmbeddingModel, Encoder, InputScaler
from n2d_spark.rows.embed import embed
from n2d_spark.rows.read import read_rows
from n2d_spark.rows.sampling import collect_sample
from n2d_spark.rows.text import COUNTS_COL, fit_text_model, vectorize, vocabulary


def random_model(vocabulary_size: int, widths: list[int], sample) -> EmbeddingModel:
    rng = np.random.default_rng(0)
    dims = [vocabulary_size, *widths]
    layers = tuple(
        ((rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32), np.zeros(b, np.float32)) for a, b in zip(dims, dims[1:])
    )
    return EmbeddingModel(scaler=InputScaler.fit(sample, "tfidf", True), encoder=Encoder(layers=layers))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--rows", type=int, default=50000)
    parser.add_argument("--master", default="local[2]")
    # A 50,000-row pass takes under 2 s, where task start-up and scheduling weigh: repeating
    # the cached rows makes each timed run long enough to measure the UDF.
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    config = load_config(None, [f"spark.master={args.master}"])
    spark = build_local_session(config)
    spark.sparkContext.setLogLevel("WARN")
    cores = spark.sparkContext.defaultParallelism
    reviews = read_rows(spark, args.input, config.input).limit(args.rows)
    text_model = fit_text_model(reviews, config.input.text_col, config.text)
    vectors = vectorize(text_model, reviews).select("id", COUNTS_COL)
    vectors = reduce(DataFrame.unionAll, [vectors] * args.repeat).repartition(cores).cache()
    n_rows = vectors.count()
    _, sample = collect_sample(vectors, COUNTS_COL, 4096, seed=0)
    model = random_model(len(vocabulary(text_model)), [*config.autoencoder.hidden, config.autoencoder.bottleneck], sample)
    print(f"{n_rows} rows, vocabulary {len(vocabulary(text_model))}, {sample.nnz / sample.shape[0]:.0f} terms per row, {cores} cores")
    shared_model = spark.sparkContext.broadcast(model)
    rates = []
    for attempt in range(args.runs):
        started = time.perf_counter()
        embed(vectors, COUNTS_COL, shared_model, config.embed.batch_rows).select("id", "embedding").write.format("noop").mode(
            "overwrite"
        ).save()
        seconds = time.perf_counter() - started
        rates.append(n_rows / seconds / cores)
        print(f"spark run {attempt + 1}: {seconds:.2f} s, {rates[-1]:,.0f} rows/s/core")
    print(f"spark, median of runs 2-{args.runs}: {statistics.median(rates[1:]):,.0f} rows/s/core")
    with threadpool_limits(1):
        started = time.perf_counter()
        for _ in range(5):
            model.embed(sample)
        seconds = (time.perf_counter() - started) / 5
    print(f"forward pass alone, one thread, batch {sample.shape[0]}: {sample.shape[0] / seconds:,.0f} rows/s")
    spark.stop()


if __name__ == "__main__":
    main()

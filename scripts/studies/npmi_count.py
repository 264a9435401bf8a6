"""What the write stage's coherence count costs: ``count_term_windows`` alone, on cached rows.

    .venv/bin/python scripts/studies/npmi_count.py --input ../shared/data/imdb_reviews.csv.gz --text-col review \
        [--rows 50000] [--master local[2]]

Reads and caches the input as the job does, fits the text model, and takes the vocabulary's 300
most frequent terms as 30 topics of 10 (a run's topic terms are as many). Then times, fastest of
two: tokenizing the ``--rows`` sampled rows alone (into Spark's no-op sink), and the whole count
(sample, tokenize, count the windows on the executors, add up on the driver). Prints the mean
NPMI of the 30 topics, so that two commits' counts can be compared.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from pyspark import StorageLevel
from pyspark.ml import PipelineModel

from n2d_spark.cli import build_local_session
from n2d_spark.core.config import load_config
from n2d_spark.core.metrics import npmi_from_counts, topic_terms
from n2d_spark.rows.job_stages import _partitions_wanted, _spread
from n2d_spark.rows.read import read_rows
from n2d_spark.rows.sampling import hash_sample
from n2d_spark.rows.text import count_term_windows, fit_text_model, vocabulary


def fastest_of_two(action) -> tuple[float, object]:
    times, result = [], None
    for _ in range(2):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--text-col", default="review")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    config = load_config(None, [f"spark.master={args.master}", "spark.shuffle_partitions=32", f"input.text_col={args.text_col}"])
    spark = build_local_session(config)
    spark.sparkContext.setLogLevel("WARN")
    rows = _spread(read_rows(spark, args.input, config.input).select("id", args.text_col), _partitions_wanted(spark))
    rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
    n_rows = rows.count()
    text_model = fit_text_model(rows, args.text_col, config.text)
    top = vocabulary(text_model)[:300]
    topics = [top[i : i + 10] for i in range(0, len(top), 10)]
    terms = topic_terms(topics)
    tokenize = PipelineModel(stages=text_model.stages[:-1])

    def tokenize_only() -> None:
        tokenize.transform(hash_sample(rows, args.rows, 0)).write.format("noop").mode("overwrite").save()

    tokenize_seconds, _ = fastest_of_two(tokenize_only)
    count_seconds, counts = fastest_of_two(lambda: count_term_windows(text_model, rows, args.rows, 0, terms))
    npmi = np.mean([s for s in npmi_from_counts(counts, topics) if s is not None])
    print("| step | s |\n|---|---|")
    print(f"| sample and tokenize {counts.n_documents} rows | {tokenize_seconds:.1f} |")
    print(f"| the whole count (sample, tokenize, count, add up) | {count_seconds:.1f} |")
    print(f"\n{n_rows} rows cached, {args.master}; {counts.n_windows} windows; mean NPMI of 30 topics {npmi:.6f}")


if __name__ == "__main__":
    main()

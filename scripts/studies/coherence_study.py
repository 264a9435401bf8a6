"""Topic coherence against the number of documents it is counted over, for a finished run's topics.

    .venv/bin/python scripts/studies/coherence_study.py --output OUTPUT --input ../shared/data/imdb_reviews.csv.gz \
        [--config conf/imdb.yaml] [--documents 10000,25000,50000]

Reads the run's topics (``OUTPUT/clusters``: top terms, noise left out) and its text pipeline
(``OUTPUT/model/text_pipeline``), then counts NPMI as the job does (``evaluate.coherence_rows``:
the usable rows first by a hash of the id seeded with ``cluster.seed``, windows counted on the
executors) over each number of documents, and prints the mean NPMI, the seconds each count
took, and, for the largest count, every topic's NPMI beside its terms.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/, for bench.py
from bench import cpu_model  # noqa: E402
from n2d_spark.core.columns import NOISE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="a finished text-mode run's output folder")
    parser.add_argument("--input", required=True, help="the input that run read")
    parser.add_argument("--config", default=None, help="that run's --config (its input and cluster.seed settings)")
    parser.add_argument("--documents", default="10000,25000,50000")
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    from pyspark.ml import PipelineModel
    from pyspark.sql import SparkSession

    from n2d_spark.core.config import load_config
    from n2d_spark.core.metrics import npmi_from_counts, topic_diversity, topic_terms
    from n2d_spark.rows.read import read_rows
    from n2d_spark.rows.text import count_term_windows

    config = load_config(args.config, [])
    spark = (
        SparkSession.builder.master("local[*]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    clusters = pd.read_parquet(Path(args.output) / "clusters").sort_values("cluster")
    clusters = clusters[clusters["cluster"] != NOISE]
    topics = [list(terms) for terms in clusters["top_terms"]]
    text_model = PipelineModel.load(str(Path(args.output) / "model" / "text_pipeline"))
    rows = read_rows(spark, args.input, config.input)
    print(f"{cpu_model()}; {len(topics)} topics, diversity {topic_diversity(topics):.2f}")
    print("| documents | mean NPMI | seconds |\n|---|---|---|")
    for n_documents in [int(n) for n in args.documents.split(",")]:
        start = time.perf_counter()
        counts = count_term_windows(text_model, rows, n_documents, config.cluster.seed, topic_terms(topics))
        scores = npmi_from_counts(counts, topics)
        seconds = time.perf_counter() - start
        print(f"| {counts.n_documents} | {np.mean([s for s in scores if s is not None]):.3f} | {seconds:.1f} |", flush=True)
    print(f"\nper topic, over {counts.n_documents} documents:")
    for name, size, score in zip(clusters["name"], clusters["size"], scores):
        print(f"  {name:40s} {size:7d}  {score if score is not None else float('nan'):.3f}")
    spark.stop()


if __name__ == "__main__":
    main()

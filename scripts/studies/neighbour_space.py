"""Which space finds a row's similar rows best: precision@10 of exact nearest neighbours in the
autoencoder's embedding and in the UMAP coordinates (cosine and Euclidean), against TF-IDF and
LSA(100) cosine neighbours, on the labelled corpora (issue 28: "choose the space by measurement").

    .venv/bin/python scripts/studies/neighbour_space.py [--corpora bbc,ag,reuters] [--seed 0]

Precision@10: the share of a row's 10 nearest other rows that carry its label, averaged over
rows. Exact search (scikit-learn, brute force) on the driver: a study at corpus size, not the job.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from bench import cpu_model  # noqa: E402
from quality_bench import CORPORA  # noqa: E402
from similar_bench import baselines, precision_at_k  # noqa: E402


def load(key: str) -> pd.DataFrame:
    if key == "ag":
        frame = pd.read_csv(CORPORA / "ag_news_test.csv.gz")
    elif key == "bbc":
        frame = pd.read_csv(CORPORA / "bbc_news.csv.gz")
    else:
        frame = pd.read_csv(CORPORA / "reuters21578.csv.gz")
        frame = frame[frame["n_labels"] == 1]
    return frame[["text", "label"]].reset_index(drop=True).assign(row=lambda f: np.arange(len(f)))


def n2d_spaces(spark, frame: pd.DataFrame, seed: int) -> tuple[dict[str, float], float]:
    from n2d_spark import N2D

    df = spark.createDataFrame(frame[["row", "text", "label"]])
    started = time.perf_counter()
    model = N2D(inputCol="text", idCol="row", withEmbedding=True, autoencoder={"seed": seed}).fit(df)
    out = model.transform(df).filter("cluster IS NOT NULL").select("row", "label", "embedding", "umap").toPandas()
    seconds = time.perf_counter() - started
    labels = out["label"].astype(str).to_numpy()
    embedding = np.vstack(out["embedding"].to_numpy()).astype(np.float64)
    coordinates = np.vstack(out["umap"].to_numpy()).astype(np.float64)
    standardized = np.hstack([
        (embedding - embedding.mean(0)) / embedding.std(0),
        (coordinates - coordinates.mean(0)) / coordinates.std(0),
    ])
    found = {
        "embedding cosine": precision_at_k(embedding, labels, "cosine"),
        "embedding euclidean": precision_at_k(embedding, labels, "euclidean"),
        "UMAP euclidean": precision_at_k(coordinates, labels, "euclidean"),
        "UMAP cosine": precision_at_k(coordinates, labels, "cosine"),
        "both, standardized, euclidean": precision_at_k(standardized, labels, "euclidean"),
    }
    return found, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", default="bbc,ag,reuters")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.master("local[2]").config("spark.sql.shuffle.partitions", "8").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    print(f"CPU: {cpu_model()}; autoencoder seed {args.seed}; precision@10, exact search")
    print("| corpus | rows | space | precision@10 |")
    print("|---|---|---|---|")
    for key in args.corpora.split(","):
        frame = load(key)
        labels = frame["label"].astype(str).to_numpy()
        found, seconds = n2d_spaces(spark, frame, args.seed)
        found.update({f"{name} cosine": value for name, value in baselines(frame["text"].tolist(), labels).items()})
        for space, value in found.items():
            print(f"| {key} | {len(frame)} | {space} | {value:.3f} |", flush=True)
        print(f"| {key} | | (N2D fit and transform: {seconds:.0f} s) | |", flush=True)


if __name__ == "__main__":
    main()

"""Which confidence signal tells a sure label from an unsure one (issue 31).

    .venv/bin/python scripts/studies/confidence_study.py --output RUN_OUT --label-col label [--neighbours 15]

RUN_OUT is a job's output on labelled text (labels/ with the label column passed through, as the
quality bench writes it). For every row, from labels/' ``umap`` coordinates and ``cluster``:

- centroid margin: 1 - d(own cluster's centroid) / d(nearest other cluster's centroid), at least 0
  (the job's ``confidence``, computed here for outputs written before labels/ had it);
- neighbour share: the share of the row's nearest rows (in the same coordinates) in its cluster;
- the job's own ``confidence`` column, where labels/ has it.

Rows are cut into deciles of each signal (ties by id), and each decile's accuracy is printed:
each cluster stands for its most common class (many clusters to one class, as topics do).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from n2d_spark.model.cluster import FittedClusters, topic_centroids


def majority_accuracy(clusters: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Per row: whether its class is its cluster's most common class."""
    table = pd.crosstab(clusters, classes)
    majority = table.idxmax(axis=1)
    return classes == majority.loc[clusters].to_numpy()


def centroid_margin(points: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """The job's ``confidence`` (``FittedClusters.confidence``), with every row's coordinates as the fit sample's."""
    fitted = FittedClusters(algorithm="kmeans", estimator=None)
    fitted.topic_ids, fitted.topic_centroids = topic_centroids(points, clusters)
    return fitted.confidence(points, clusters)[0]


def neighbour_share(points: np.ndarray, clusters: np.ndarray, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    _, nearest = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return (clusters[nearest[:, 1:]] == clusters[:, None]).mean(axis=1)


def by_decile(signal: np.ndarray, correct: np.ndarray) -> list[float]:
    order = np.lexsort((np.arange(len(signal)), signal))
    return [float(correct[part].mean()) for part in np.array_split(order, 10)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True)
    parser.add_argument("--label-col", required=True)
    parser.add_argument("--neighbours", type=int, default=15)
    args = parser.parse_args()
    labels = pd.read_parquet(f"{args.output}/labels").sort_values("id")
    labels = labels[labels[args.label_col].notna()]
    points = np.vstack(labels["umap"].to_numpy()).astype(np.float64)
    clusters = labels["cluster"].to_numpy()
    correct = majority_accuracy(clusters, labels[args.label_col].astype(str).to_numpy())
    signals = {
        "centroid margin": centroid_margin(points, clusters),
        f"neighbour share ({args.neighbours})": neighbour_share(points, clusters, args.neighbours),
    }
    if "confidence" in labels:
        signals["labels/ confidence"] = labels["confidence"].to_numpy()
    print(f"# {args.output}: {len(labels):,} rows, {len(np.unique(clusters))} clusters, accuracy {correct.mean():.3f}")
    print("| signal | " + " | ".join(f"d{i}" for i in range(1, 11)) + " |")
    print("|---|" + "---|" * 10)
    for name, signal in signals.items():
        print(f"| {name} | " + " | ".join(f"{a:.3f}" for a in by_decile(signal, correct)) + " |")


if __name__ == "__main__":
    main()

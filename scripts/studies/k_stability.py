"""How ``cluster.k: auto`` could choose k so that reruns agree (issue 31), on saved runs' coordinates.

    .venv/bin/python scripts/studies/k_stability.py --label-col label RUN_OUT [RUN_OUT ...]

Each RUN_OUT is a job's output on the same labelled rows with another autoencoder seed (the
quality bench's --work folders, ``<corpus>-out``). On each run's UMAP coordinates (labels/'s
``umap``) every rule below chooses a k in [5, 50] and KMeans (n_init 10, seed 0) partitions the
rows with it; printed per rule: the k of each run, the mean pairwise ARI between the runs'
partitions, and the mean NMI against the label column; first, the same for the runs' own labels
(labels/'s ``cluster``).

- silhouette: today's rule (model/cluster.py, ``choose_k``): the k of the highest silhouette;
- silhouette within T: the smallest k whose silhouette is at least (1 - T) times the highest;
- stability: the k whose KMeans partitions of half-samples agree most (ARI on the rows two
  half-samples share, 4 pairs), the smallest on ties.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from n2d_spark.core.config import ClusterConfig  # noqa: E402
from n2d_spark.model.cluster import choose_k, kmeans  # noqa: E402


def stability_k(points: np.ndarray, candidates: list[int], seed: int = 0, pairs: int = 4) -> dict[int, float]:
    rng = np.random.default_rng(seed)
    n = len(points)
    halves = [np.sort(rng.permutation(n)[: int(0.7 * n)]) for _ in range(2 * pairs)]
    scores = {}
    for k in candidates:
        agreement = []
        for p in range(pairs):
            a, b = halves[2 * p], halves[2 * p + 1]
            la = kmeans(k, seed + 2 * p, n_init=3).fit(points[a])
            lb = kmeans(k, seed + 2 * p + 1, n_init=3).fit(points[b])
            shared = np.intersect1d(a, b)
            agreement.append(adjusted_rand_score(la.predict(points[shared]), lb.predict(points[shared])))
        scores[k] = float(np.mean(agreement))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--label-col", required=True)
    parser.add_argument("--tolerances", default="0.02,0.05,0.1")
    args = parser.parse_args()
    frames = [pd.read_parquet(f"{run}/labels", columns=["id", "cluster", "umap", args.label_col]).sort_values("id") for run in args.runs]
    assert all((f["id"].to_numpy() == frames[0]["id"].to_numpy()).all() for f in frames)
    classes = frames[0][args.label_col].astype(str).to_numpy()
    points = [np.vstack(f["umap"].to_numpy()).astype(np.float32) for f in frames]
    config = ClusterConfig()
    silhouettes = [choose_k(p, config) for p in points]
    candidates = sorted(silhouettes[0])
    stabilities = [stability_k(p, candidates) for p in points]
    rules = {"silhouette": [max(s, key=s.get) for s in silhouettes]}
    for tolerance in map(float, args.tolerances.split(",")):
        rules[f"silhouette within {tolerance}"] = [
            min(k for k, v in s.items() if v >= (1 - tolerance) * max(s.values())) for s in silhouettes
        ]
    rules["stability"] = [max(s, key=lambda k: (s[k], -k)) for s in stabilities]
    print(f"# {', '.join(args.runs)}: {len(classes):,} rows")
    for i, (s, t) in enumerate(zip(silhouettes, stabilities)):
        print(f"# run {i} silhouette: " + " ".join(f"{k}:{v:.3f}" for k, v in s.items()))
        print(f"# run {i} stability:  " + " ".join(f"{k}:{v:.3f}" for k, v in t.items()))
    print("| rule | k per run | mean ARI between runs | mean NMI |\n|---|---|---|---|")
    partitions = {"the runs' own labels": [f["cluster"].to_numpy() for f in frames]}
    for rule, ks in rules.items():
        partitions[rule] = [kmeans(k, 0).fit_predict(p) for k, p in zip(ks, points)]
    for rule, labels in partitions.items():
        ks = [len(np.unique(l)) for l in labels]
        ari = np.mean([adjusted_rand_score(a, b) for a, b in itertools.combinations(labels, 2)]) if len(labels) > 1 else float("nan")
        nmi = np.mean([normalized_mutual_info_score(classes, l) for l in labels])
        print(f"| {rule} | {', '.join(map(str, ks))} | {ari:.3f} | {nmi:.3f} |", flush=True)


if __name__ == "__main__":
    main()

"""Similar rows on real labelled text: the job's neighbours/ against exact search and two plain
baselines, in one invocation (issue 28; BENCHMARKS.md, "Similar rows").

    .venv/bin/python scripts/similar_bench.py [--inputs bbc,ag,reuters,imdb10k] [--set key=value ...] [--work DIR]

For each input the job runs as a user runs it (the console script, the shipped defaults plus the
input's text and label columns and ``--set``); then, in this process:

- **recall@10**: the share of each row's 10 nearest rows by exact search (every pair's cosine
  of the embeddings in embeddings/, computed as model/neighbour_search.py does) that the job's
  cell search put in neighbours/;
- **precision@10**: the share of a row's 10 neighbours in neighbours/ that carry its label,
  averaged over rows; the same for exact search in the embedding space;
- the baselines' precision@10: cosine nearest neighbours on TF-IDF and on LSA(100)
  (scikit-learn: 5,000 terms, English stop words, min_df 2; LSA rows L2-normalized).

Inputs (``../shared``): BBC News, AG News, Reuters-21578's single-topic documents, and the first
10,000 IMDB reviews (label: sentiment, which is not what topics are about: recall only matters there).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import cpu_model, measured  # noqa: E402
from quality_bench import CORPUS, IMDB, prepare  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
K = 10


def precision_at_k(points, labels: np.ndarray, metric: str) -> float:
    """Exact search (brute force): the mean share of a row's K nearest other rows that carry its label."""
    from sklearn.neighbors import NearestNeighbors

    _, found = NearestNeighbors(n_neighbors=K + 1, metric=metric, algorithm="brute").fit(points).kneighbors(points)
    shares = [np.mean(labels[[n for n in row_found if n != row][:K]] == labels[row]) for row, row_found in enumerate(found)]
    return float(np.mean(shares))


def baselines(texts: list[str], labels: np.ndarray) -> dict[str, float]:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import Normalizer

    tfidf = TfidfVectorizer(max_features=5000, stop_words="english", min_df=2).fit_transform(texts)
    lsa = Normalizer(copy=False).fit_transform(TruncatedSVD(100, random_state=0).fit_transform(tfidf))
    return {"tfidf": precision_at_k(tfidf, labels, "cosine"), "lsa": precision_at_k(lsa, labels, "cosine")}


def exact_neighbours(ids: np.ndarray, embeddings: np.ndarray) -> dict:
    """Each id's K most similar other ids by exact search, ranked as the job ranks them."""
    from n2d_spark.model.neighbour_search import top_k, unit_rows

    units = unit_rows(embeddings)
    query, neighbour, _ = top_k(ids, units, ids, units, K)
    return pd.Series(neighbour).groupby(query).apply(list).to_dict()


def input_for(key: str, work: Path) -> tuple[Path, str, str]:
    """The input file, its text column and its label column."""
    if key == "imdb10k":
        path = work / "imdb-10000.csv"
        pd.read_csv(IMDB).head(10_000).to_csv(path, index=False)
        return path, "review", "sentiment"
    corpus = CORPUS[key]
    return prepare(key, work), corpus.text_col, corpus.label_col


def run_input(key: str, overrides: list[str], work: Path) -> dict:
    path, text_col, label_col = input_for(key, work)
    output = work / f"{key}-out"
    command = [str(Path(sys.executable).parent / "n2d-spark"), "run", "--input", str(path), "--output", str(output),
               "--set", f"input.text_col={text_col}", "--set", f"evaluate.label_col={label_col}", "--set", "output.mode=overwrite"]
    for override in overrides:
        command += ["--set", override]
    run = measured(command, work / f"{key}.log")
    manifest = json.loads((output / "run.json").read_text())
    labels = pd.read_parquet(output / "labels", columns=["id", label_col]).set_index("id")[label_col].astype(str)
    embedded = pd.read_parquet(output / "embeddings").sort_values("id")
    ids = embedded["id"].to_numpy()
    exact = exact_neighbours(ids, np.stack(embedded["embedding"].to_numpy()))
    table = pd.read_parquet(output / "neighbours", columns=["id", "neighbour_id", "rank"])
    found = table.sort_values(["id", "rank"]).groupby("id")["neighbour_id"].apply(list).to_dict()
    recall = np.mean([len(set(found.get(i, [])) & set(exact[i])) / K for i in ids])
    row_labels = labels.to_dict()

    def precision(neighbours: dict) -> float:
        return float(np.mean([np.mean([row_labels[n] == row_labels[i] for n in neighbours[i]]) for i in ids]))

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {
        "input": key, "rows": len(ids), "cells": manifest["neighbours"]["cells"], "probes": manifest["neighbours"]["probes"],
        "recall": float(recall), "precision_table": precision(found), "precision_exact": precision(exact),
        **baselines(frame[text_col].tolist(), frame[label_col].astype(str).to_numpy()),
        "neighbours_seconds": manifest["stage_seconds"]["neighbours"], "job_seconds": run["wall_seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", default="bbc,ag,reuters,imdb10k")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="similar-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    print(f"{date.today()}, commit {commit}, CPU {cpu_model()}, overrides {args.overrides or 'none'}")
    print("| input | rows | cells x probes | recall@10 | precision@10 neighbours/ | exact | TF-IDF | LSA(100) | neighbours stage s | job s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key in args.inputs.split(","):
        r = run_input(key, args.overrides, work)
        print(f"| {key} | {r['rows']:,} | {r['cells']} x {r['probes']} | {r['recall']:.3f} | {r['precision_table']:.3f} | "
              f"{r['precision_exact']:.3f} | {r['tfidf']:.3f} | {r['lsa']:.3f} | {r['neighbours_seconds']:.1f} | "
              f"{r['job_seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()

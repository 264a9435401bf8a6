"""Cluster quality on real labelled text: the job against two plain baselines, in one invocation.

    .venv/bin/python scripts/quality_bench.py [--inputs ag,bbc,reuters,imdb,synthetic] [--set key=value ...] \
        [--json results.json] [--work DIR]

For each input the job runs as a user runs it (the console script, its own processes, the
shipped defaults plus the input's text and label columns and ``--set``), and then, in this
process, on the same rows:

- **N2D + KMeans, true k**: KMeans (n_init 10) with the number of classes on the job's own
  UMAP coordinates (``labels/``'s ``umap`` column): the N2D space with k given.
- **N2D + GMM, true k**: a full-covariance Gaussian mixture (the N2D paper's clusterer) with
  the number of classes on the same coordinates.
- **TF-IDF + KMeans, true k**: scikit-learn's TfidfVectorizer (5,000 terms, English stop
  words), KMeans with n_init 10.
- **LSA(100) + KMeans, true k**: the same TF-IDF, TruncatedSVD to 100 dimensions,
  L2-normalized rows, KMeans with n_init 10.

Inputs (``../shared``, read there, never copied into the repository): AG News (7,600, 4 topics),
BBC News (2,225, 5), Reuters-21578's single-topic documents (9,160, 65; written to a temporary
CSV), the 50,000 IMDB reviews (against sentiment, which is not a topic: it shows the shape of
the partition, not its quality) and the built-in synthetic corpus (5,000 rows, 8 planted topics).

Printed: one Markdown table, a row per input and method: accuracy (best one-to-one matching),
NMI and ARI against the label (noise counts as a cluster of its own), clusters, the largest
cluster's share of the labelled rows, the noise share before and after outlier reduction, mean
NPMI and topic diversity of the clusters' top-10 terms (the job's own ``run.json``; the
baselines have no term lists of the job's), and wall seconds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import cpu_model, measured  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO.parent / "shared" / "data" / "corpora"
IMDB = REPO.parent / "shared" / "data" / "imdb_reviews.csv.gz"


@dataclass(frozen=True)
class Corpus:
    name: str
    text_col: str
    label_col: str
    config: str | None = None


CORPUS = {
    "ag": Corpus("AG News", "text", "label"),
    "bbc": Corpus("BBC News", "text", "label"),
    "reuters": Corpus("Reuters, single-topic", "text", "label"),
    "imdb": Corpus("IMDB (sentiment)", "review", "sentiment", config=str(REPO / "conf" / "imdb.yaml")),
    "synthetic": Corpus("synthetic", "review", "topic", config=str(REPO / "conf" / "synthetic.yaml")),
}


def prepare(key: str, work: Path) -> Path:
    """The input file the job and the baselines both read."""
    if key == "ag":
        return CORPORA / "ag_news_test.csv.gz"
    if key == "bbc":
        return CORPORA / "bbc_news.csv.gz"
    if key == "imdb":
        return IMDB
    if key == "reuters":
        frame = pd.read_csv(CORPORA / "reuters21578.csv.gz")
        path = work / "reuters_single_topic.csv"
        frame.loc[frame["n_labels"] == 1, ["text", "label"]].to_csv(path, index=False)
        return path
    from n2d_spark.synthetic import generate_reviews, write_corpus

    return write_corpus(generate_reviews(5000, seed=0), work / "synthetic-5000.csv.gz")


def scores(labels: np.ndarray, classes: np.ndarray) -> dict:
    from n2d_spark.core.metrics import agreement, label_shape

    shape = label_shape(labels)
    sizes = list(shape["sizes"].values())
    return {
        **agreement(labels, classes),
        "n_clusters": shape["n_clusters"],
        "largest_share": (sizes[0] / len(labels)) if sizes else 0.0,
    }


def kmeans(points, k: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(points)


def gmm(points, k: int) -> np.ndarray:
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(n_components=k, covariance_type="full", random_state=0).fit(points).predict(points)


def baselines(texts: list[str], classes: np.ndarray, k: int) -> list[dict]:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import Normalizer

    results = []
    started = time.perf_counter()
    tfidf = TfidfVectorizer(max_features=5000, stop_words="english").fit_transform(texts)
    tfidf_seconds = time.perf_counter() - started
    labels = kmeans(tfidf, k)
    results.append({"method": "TF-IDF + KMeans, true k", **scores(labels, classes), "seconds": time.perf_counter() - started})
    started = time.perf_counter()
    lsa = Normalizer(copy=False).fit_transform(TruncatedSVD(100, random_state=0).fit_transform(tfidf))
    labels = kmeans(lsa, k)
    results.append(
        {"method": "LSA(100) + KMeans, true k", **scores(labels, classes), "seconds": time.perf_counter() - started + tfidf_seconds}
    )
    return results


def run_corpus(key: str, overrides: list[str], work: Path) -> list[dict]:
    corpus = CORPUS[key]
    path = prepare(key, work)
    output = work / f"{key}-out"
    command = [str(Path(sys.executable).parent / "n2d-spark"), "run", "--input", str(path), "--output", str(output),
               "--set", f"input.text_col={corpus.text_col}", "--set", f"evaluate.label_col={corpus.label_col}",
               "--set", "output.mode=overwrite"]
    if corpus.config:
        command += ["--config", corpus.config]
    for override in overrides:
        command += ["--set", override]
    run = measured(command, work / f"{key}.log")
    manifest = json.loads((output / "run.json").read_text())
    labels = pd.read_parquet(output / "labels", columns=["cluster", "umap", corpus.label_col])
    classes = labels[corpus.label_col].astype(str).to_numpy()
    k = len(np.unique(classes))
    clusters = manifest["clusters"]
    topics = manifest.get("topics") or {}
    job = {
        "method": "N2D, defaults (no k)",
        **scores(labels["cluster"].to_numpy(), classes),
        "noise_before": clusters.get("noise_share_before_reduction", clusters["noise_share"]),
        "npmi": topics.get("npmi"),
        "diversity": topics.get("diversity"),
        "seconds": run["wall_seconds"],
        "precision": manifest.get("autoencoder_precision"),
    }
    coordinates = np.vstack(labels["umap"].to_numpy())
    with_k = []
    for method, cluster in (("N2D + KMeans, true k", kmeans), ("N2D + GMM, true k", gmm)):
        started = time.perf_counter()
        true_k = cluster(coordinates, k)
        with_k.append({"method": method, **scores(true_k, classes), "seconds": run["wall_seconds"] + time.perf_counter() - started})
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows = [job, *with_k, *baselines(frame[corpus.text_col].tolist(), frame[corpus.label_col].to_numpy(), k)]
    for row in rows:
        row.update(corpus=corpus.name, rows=len(frame), labelled=len(labels), k=k)
    return rows


def _f(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(results: list[dict]) -> str:
    lines = [
        "| corpus | rows | method | ACC | NMI | ARI | clusters | largest | noise before / after | NPMI | diversity | wall s |",
        "|---" * 12 + "|",
    ]
    for r in results:
        noise = f"{_f(r['noise_before'])} / {_f(r['noise_share'])}" if "noise_before" in r else _f(r["noise_share"])
        lines.append(
            f"| {r['corpus']} | {r['rows']} | {r['method']} | {_f(r['accuracy'])} | {_f(r['nmi'])} | {_f(r['ari'])}"
            f" | {r['n_clusters']} | {r['largest_share']:.1%} | {noise} | {_f(r.get('npmi'))} | {_f(r.get('diversity'), 2)}"
            f" | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", default="ag,bbc,reuters,imdb,synthetic")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--work", type=Path, help="keep the job's outputs and logs here (default: a temporary folder)")
    args = parser.parse_args()
    keys = args.inputs.split(",")
    unknown = [k for k in keys if k not in CORPUS]
    if unknown:
        parser.error(f"unknown input {unknown[0]!r}; known: {', '.join(CORPUS)}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    header = f"{time.strftime('%Y-%m-%d')}, commit {commit}, CPU {cpu_model()}, overrides {args.overrides or 'none'}"
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        results = []
        for key in keys:
            results += run_corpus(key, args.overrides, work)
            print(f"{key} done", file=sys.stderr, flush=True)
    precisions = sorted({r["precision"] for r in results if r.get("precision")})
    print(f"{header}, autoencoder precision {', '.join(precisions)}")
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({"header": header, "results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()

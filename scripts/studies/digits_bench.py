"""N2D on scikit-learn's digits against two baselines, for BENCHMARKS.md.

    .venv/bin/python scripts/studies/digits_bench.py [--epochs 25,50,100,200] [--set autoencoder.precision=bfloat16 ...]

For each epoch count: the job with conf/n2d_paper.yaml (autoencoder, UMAP, GMM), then
KMeans (k=10) on the raw pixels (min-max scaled, as the autoencoder sees them) and on the
job's autoencoder embedding. Prints accuracy (best matching), NMI, ARI and wall seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits

from n2d_spark.cli import build_local_session
from n2d_spark.core.config import load_config
from n2d_spark.core.fs import FileSystem
from n2d_spark.core.metrics import agreement
from n2d_spark.model.encoder_arrays import load_embedding_model
from n2d_spark.outputs.publish import MODEL_DIR
from n2d_spark.pipeline import run_job

REPO = Path(__file__).resolve().parents[2]


def _row(name: str, scores: dict, seconds: float) -> str:
    return f"| {name} | {scores['accuracy']:.3f} | {scores['nmi']:.3f} | {scores['ari']:.3f} | {seconds:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", default="100")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every run, e.g. autoencoder.precision=bfloat16 or manifold.seed=1")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "scripts"))
    from digits_to_parquet import write_digits

    work = Path(tempfile.mkdtemp(prefix="n2d-digits-"))
    path = write_digits(work / "digits.parquet")
    digits = load_digits()
    pixels = digits.data / 16.0
    spark = build_local_session(load_config(None, ["spark.master=local[2]"]))
    spark.sparkContext.setLogLevel("ERROR")
    print("| method | accuracy | NMI | ARI | wall s |")
    print("|---|---|---|---|---|")
    started = time.perf_counter()
    raw = KMeans(n_clusters=10, n_init=10, random_state=0).fit_predict(pixels)
    print(_row("KMeans on raw pixels", agreement(raw, digits.target), time.perf_counter() - started), flush=True)
    for epochs in (int(e) for e in args.epochs.split(",")):
        config = load_config(REPO / "conf" / "n2d_paper.yaml", [f"autoencoder.epochs={epochs}", *args.overrides])
        output = work / f"out-{epochs}"
        started = time.perf_counter()
        manifest = run_job(spark, config, str(path), str(output)).manifest
        job_seconds = time.perf_counter() - started
        print(_row(f"N2D, {epochs} epochs (job total; autoencoder {manifest['stage_seconds']['autoencoder']:.1f} s)",
                   manifest["evaluation"], job_seconds), flush=True)
        model = load_embedding_model(FileSystem(spark, str(output)), f"{output}/{MODEL_DIR}")
        started = time.perf_counter()
        embedding = model.embed(digits.data.astype(np.float32))
        on_embedding = KMeans(n_clusters=10, n_init=10, random_state=0).fit_predict(embedding)
        print(_row(f"KMeans on the {epochs}-epoch autoencoder embedding (excluding training)",
                   agreement(on_embedding, digits.target), time.perf_counter() - started), flush=True)


if __name__ == "__main__":
    main()

"""The job beside Spark MLlib's own text clustering, on the same rows and cores, in one invocation.

    .venv/bin/python scripts/mllib_peer.py --input /tmp/synthetic-1000000.csv.gz --config conf/synthetic.yaml \
        --sizes 50000,300000 [--set key=value ...] [--ag] [--json results.json]

The peer is the pipeline a Spark user reaches for first: ``RegexTokenizer`` (lower case, runs of
non-word characters split, tokens of 2 characters or more), ``StopWordsRemover`` (Spark's English
list), ``CountVectorizer`` (the job's ``text.vocab_size`` and ``text.min_df``), ``IDF`` and
``KMeans`` (k 20, 20 iterations, seed 0), fitted on the tokens persisted once, then every row
labelled and written to Parquet, as the job writes ``labels/``. Both run as a user runs them: a
process each, ``local[C]`` with the same driver memory and shuffle partitions, the same slice of
the input (its first N rows, one uncompressed CSV, one record per line).

For each size the whole process's wall time is measured; the marginal cost of a row on one core
is ``(t(N2) - t(N1)) / (N2 - N1) * C`` between the smallest and largest size, so that the fixed
costs (start-up, the driver's fits on their fixed samples) cancel. With ``--ag`` both also label
AG News (``../shared/data/corpora/ag_news_test.csv.gz``): the job with its defaults, the peer with
k 20 and with the true k 4 (the job's and the peer's default settings, not ``--set``), each scored by NMI against the four classes beside
``quality_bench.py``'s scikit-learn TF-IDF + KMeans baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import cpu_model, measured, run_job, write_slice  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
AG_NEWS = REPO.parent / "shared" / "data" / "corpora" / "ag_news_test.csv.gz"


def peer_main(args: argparse.Namespace) -> None:
    """The MLlib pipeline itself, in this process: read, tokenize, fit, label every row, write."""
    from pyspark import StorageLevel
    from pyspark.ml import Pipeline
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.feature import IDF, CountVectorizer, RegexTokenizer, StopWordsRemover
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    started = time.perf_counter()
    spark = (SparkSession.builder.master(f"local[{args.cores}]").appName("mllib-peer")
             .config("spark.driver.memory", args.driver_memory)
             .config("spark.sql.shuffle.partitions", str(args.shuffle_partitions))
             .config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    rows = (spark.read.option("header", True).option("escape", '"').option("multiLine", args.multiline)
            .csv(args.peer).where(F.col(args.text_col).isNotNull()).withColumn("id", F.monotonically_increasing_id()))
    words = RegexTokenizer(inputCol=args.text_col, outputCol="words", pattern="\\W+", minTokenLength=2)
    terms = StopWordsRemover(inputCol="words", outputCol="terms").transform(words.transform(rows))
    terms = terms.select("id", "terms", *([args.label_col] if args.label_col else [])).persist(StorageLevel.DISK_ONLY)
    model = Pipeline(stages=[
        CountVectorizer(inputCol="terms", outputCol="counts", vocabSize=args.vocab_size, minDF=args.min_df),
        IDF(inputCol="counts", outputCol="features"),
        KMeans(featuresCol="features", predictionCol="cluster", k=args.k, maxIter=20, seed=0),
    ]).fit(terms)
    labelled = model.transform(terms).select("id", "cluster", *([args.label_col] if args.label_col else []))
    labelled.write.mode("overwrite").parquet(args.output)
    spark.stop()
    print(json.dumps({"seconds_in_process": time.perf_counter() - started}))


def run_peer(input_path: str, output: Path, work: Path, name: str, settings: dict, k: int,
             text_col: str, label_col: str | None, multiline: bool) -> dict:
    command = [sys.executable, __file__, "--peer", input_path, "--output", str(output), "--k", str(k),
               "--text-col", text_col, "--multiline", str(multiline).lower(),
               "--cores", str(settings["cores"]), "--driver-memory", settings["driver_memory"],
               "--shuffle-partitions", str(settings["shuffle_partitions"]),
               "--vocab-size", str(settings["vocab_size"]), "--min-df", str(settings["min_df"])]
    if label_col:
        command += ["--label-col", label_col]
    return measured(command, work / f"{name}.log")


def job_settings(config: str | None, overrides: list[str]) -> dict:
    """The text column and the Spark and vocabulary settings the job runs with, for the peer to run with the same."""
    from n2d_spark.core.config import load_config

    job = load_config(config, overrides)
    inside = job.spark.master.removeprefix("local[").removesuffix("]")
    cores = int(inside) if inside.isdigit() else os.cpu_count()
    return {"cores": cores, "text_col": job.input.text_col, "driver_memory": job.spark.driver_memory,
            "shuffle_partitions": job.spark.shuffle_partitions,
            "vocab_size": job.text.vocab_size, "min_df": job.text.min_df}


def marginal_us(seconds_by_rows: dict[int, float], cores: int) -> float:
    """µs a row costs one core between the smallest and the largest size: the fixed costs cancel."""
    low, high = min(seconds_by_rows), max(seconds_by_rows)
    return (seconds_by_rows[high] - seconds_by_rows[low]) / (high - low) * cores * 1e6


def scored(labels_path: Path, label_col: str) -> dict:
    """NMI against ``label_col``, and the largest cluster's share of the rows."""
    from sklearn.metrics import normalized_mutual_info_score

    frame = pd.read_parquet(labels_path, columns=["cluster", label_col])
    return {"nmi": float(normalized_mutual_info_score(frame[label_col].astype(str), frame["cluster"])),
            "largest_share": float(frame["cluster"].value_counts(normalize=True).iloc[0])}


def ag_news(work: Path) -> list[dict]:
    """NMI on AG News: the job's defaults, the peer at k 20 and at the true k, scikit-learn's baseline."""
    from quality_bench import run_corpus

    job_rows = run_corpus("ag", [], work)
    results = [{"method": row["method"], "nmi": row["nmi"], "largest_share": row["largest_share"],
                "seconds": row["seconds"]} for row in job_rows
               if row["method"] in ("N2D, defaults (no k)", "TF-IDF + KMeans, true k")]
    settings = job_settings(None, [])
    for k in (20, 4):
        output = work / f"peer-ag-{k}"
        run = run_peer(str(AG_NEWS), output, work, f"peer-ag-{k}", settings, k, "text", "label", multiline=True)
        results.append({"method": f"MLlib TF-IDF + KMeans, k {k}", **scored(output, "label"),
                        "seconds": run["wall_seconds"]})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input")
    parser.add_argument("--config", default=str(REPO / "conf" / "synthetic.yaml"))
    parser.add_argument("--sizes", default="50000,300000")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--ag", action="store_true", help="also score both on AG News")
    parser.add_argument("--json", type=Path)
    # The peer's own process (run by this script).
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, default=20, help=argparse.SUPPRESS)
    parser.add_argument("--text-col", default="review", help=argparse.SUPPRESS)
    parser.add_argument("--label-col", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--multiline", default="false", help=argparse.SUPPRESS)
    parser.add_argument("--cores", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--driver-memory", default="3g", help=argparse.SUPPRESS)
    parser.add_argument("--shuffle-partitions", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--vocab-size", type=int, default=5000, help=argparse.SUPPRESS)
    parser.add_argument("--min-df", type=float, default=2.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        peer_main(args)
        return
    if not args.input:
        parser.error("--input is required")
    settings = job_settings(args.config, args.overrides)
    work = Path(tempfile.mkdtemp(prefix="n2d-peer-"))
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(","))
    print(f"# {cpu_model()}; config {args.config}; overrides {args.overrides or 'none'}; peer settings {settings}",
          flush=True)
    results = []
    for size in sizes:
        slice_path = work / f"rows-{size}.csv"
        write_slice(args.input, size, slice_path)
        job = run_job(str(slice_path), args.config, args.overrides, work, f"job-{size}")
        peer = run_peer(str(slice_path), work / f"peer-{size}", work, f"peer-{size}", settings, 20, settings["text_col"],
                        None, multiline=False)
        for pipeline, run in (("job", job), ("MLlib peer", peer)):
            results.append({"rows": size, "pipeline": pipeline, "wall_seconds": run["wall_seconds"],
                            "load_before": run["load_before"], "peak_gib": run["peak_rss_bytes"] / 2**30,
                            "precision": run.get("manifest", {}).get("autoencoder_precision")})
            print(f"# {size} rows, {pipeline}: {run['wall_seconds']:.1f} s, load before {run['load_before']:.2f}",
                  flush=True)
    print("\n| rows | pipeline | wall s | process tree peak GiB | load before |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['rows']:,} | {r['pipeline']} | {r['wall_seconds']:.1f} | {r['peak_gib']:.2f} | {r['load_before']:.2f} |")
    marginal = {
        pipeline: marginal_us({r["rows"]: r["wall_seconds"] for r in results if r["pipeline"] == pipeline}, settings["cores"])
        for pipeline in ("job", "MLlib peer")
    }
    print(f"\nmarginal µs a row per core ({sizes[0]:,} to {sizes[-1]:,} rows, {settings['cores']} cores): "
          f"job {marginal['job']:.0f}, MLlib peer {marginal['MLlib peer']:.0f}, "
          f"job / peer {marginal['job'] / marginal['MLlib peer']:.2f}")
    quality = ag_news(work) if args.ag else []
    if quality:
        print("\n| AG News (7,600 rows, 4 classes) | NMI | largest cluster's share | wall s |\n|---|---|---|---|")
        for row in quality:
            print(f"| {row['method']} | {row['nmi']:.3f} | {row['largest_share']:.3f} | {row['seconds']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_model(), "results": results, "marginal": marginal,
                                         "ag_news": quality}, indent=2))


if __name__ == "__main__":
    main()

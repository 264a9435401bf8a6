"""Where the read and vectorize stages spend their time: each step of the text pipeline alone, on cached rows.

    .venv/bin/python scripts/studies/vectorize_profile.py --input ROWS.csv[.gz] [--rows 200000] [--master local[2]]

Reads the input as the job does (one task per file: the CSV reader's multiLine mode cannot
split a file), spreads and caches it, then times passes over the cached rows, each ending in
Spark's no-op sink so that nothing comes back to the driver: the cleaning regexes alone, cleaning
and tokenizing, and stop-word removal as well; the CountVectorizer's fit (the job's first pass);
the fitted pipeline's transform (its second pass, which cleans and tokenizes again); and the
vocabulary counted on terms persisted once, with the transform from those terms.
"""

from __future__ import annotations

import argparse
import time

from pyspark import StorageLevel
from pyspark.ml import PipelineModel
from pyspark.ml.feature import CountVectorizer

from n2d_spark.cli import build_local_session
from n2d_spark.core.config import load_config
from n2d_spark.rows.job_stages import _partitions_wanted, _spread
from n2d_spark.rows.read import read_rows
from n2d_spark.rows.text import build_text_pipeline


def timed(label: str, action) -> float:
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    print(f"| {label} | {seconds:.1f} |", flush=True)
    return seconds


def noop(frame) -> None:
    frame.write.format("noop").mode("overwrite").save()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--rows", type=int, default=None, help="the first N rows only (default: all)")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    config = load_config(None, [f"spark.master={args.master}", "spark.shuffle_partitions=32"])
    spark = build_local_session(config)
    spark.sparkContext.setLogLevel("WARN")
    text_col = config.input.text_col
    raw = read_rows(spark, args.input, config.input)
    if args.rows:
        raw = raw.limit(args.rows)
    rows = _spread(raw.select("id", text_col), _partitions_wanted(spark)).persist(StorageLevel.MEMORY_AND_DISK)
    print("| step | seconds |\n|---|---|")
    n_rows = 0

    def count() -> None:
        nonlocal n_rows
        n_rows = rows.count()

    timed("read, spread and cache the rows", count)
    clean, tokenize, stop_words, vectorizer = build_text_pipeline(text_col, config.text).getStages()
    steps = PipelineModel(stages=[clean, tokenize, stop_words])
    timed("clean (regexes) only", lambda: noop(clean.transform(rows)))
    timed("clean and tokenize", lambda: noop(PipelineModel(stages=[clean, tokenize]).transform(rows)))
    timed("clean, tokenize, stop words", lambda: noop(steps.transform(rows)))
    fitted = {}
    timed("CountVectorizer fit (the job's pass 1)", lambda: fitted.update(model=vectorizer.fit(steps.transform(rows))))
    text_model = PipelineModel(stages=[*steps.stages, fitted["model"]])
    timed("fitted pipeline's transform (pass 2)", lambda: noop(text_model.transform(rows)))
    terms = steps.transform(rows).select("id", vectorizer.getInputCol()).persist(StorageLevel.DISK_ONLY)
    timed("terms persisted to disk once", lambda: terms.count())
    timed("CountVectorizer fit on the persisted terms", lambda: fitted.update(model=vectorizer.fit(terms)))
    timed("transform of the persisted terms", lambda: noop(fitted["model"].transform(terms)))
    print(f"\n{n_rows} rows, {args.master}")


if __name__ == "__main__":
    main()

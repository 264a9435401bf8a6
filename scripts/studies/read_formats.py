"""The read stage's cost per row of one input brought as gzip CSV, plain single-line CSV and Parquet.

    .venv/bin/python scripts/studies/read_formats.py --input ROWS.csv.gz --work DIR [--master local[2]] [--repeats 2]

Writes the same rows once into DIR as an uncompressed CSV (``gunzip``: byte for byte the same
records) and a Parquet file (pyarrow, row groups of 100,000 rows), then times the read stage as
the job runs it: ``read_rows``, the input reject reasons, the spread over the cores (a
one-record-per-line CSV read in as many blocks as the spread wants), persisted and counted.
The gzip file is read as ``input.multiline`` true (one task: gzip cannot split), the plain CSV
as ``input.multiline`` false, Parquet as is. Each row of the table is the fastest
of ``--repeats`` reads, with how many tasks read the file and the cost per row per core
(seconds x cores / rows, the stage's fixed cost included). The last line checks that the three
reads give every row the same id (a sum of a hash of each row's id and text).
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import time
from dataclasses import replace
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import functions as F

from n2d_spark.cli import build_local_session
from n2d_spark.core.config import load_config
from n2d_spark.rows.job_stages import _partitions_wanted, _spread, csv_blocks_for_every_partition
from n2d_spark.rows.read import read_rows
from n2d_spark.rows.rejects import with_input_reason


def prepare(source: Path, work: Path) -> tuple[Path, Path]:
    """The plain CSV and the Parquet copies of ``source`` in ``work`` (kept for the next invocation)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    work.mkdir(parents=True, exist_ok=True)
    plain, parquet = work / "rows.csv", work / "rows.parquet"
    if not plain.exists():
        with gzip.open(source, "rb") as packed, open(plain, "wb") as unpacked:
            shutil.copyfileobj(packed, unpacked, 1 << 24)
    if not parquet.exists():
        table = pacsv.read_csv(plain, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                               convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
        pq.write_table(table, parquet, row_group_size=100_000)
    return plain, parquet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, type=Path, help="a gzip CSV, as `n2d-spark generate` writes it")
    parser.add_argument("--work", required=True, type=Path, help="where the plain CSV and Parquet copies go")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    plain, parquet = prepare(args.input, args.work)
    config = load_config(None, [f"spark.master={args.master}", "spark.shuffle_partitions=32"])
    spark = build_local_session(config)
    spark.sparkContext.setLogLevel("WARN")
    cores = spark.sparkContext.defaultParallelism
    inputs = [
        ("gzip CSV, multiline (one task)", args.input, replace(config.input, multiline=True)),
        ("plain CSV, one record per line", plain, replace(config.input, multiline=False)),
        ("Parquet", parquet, config.input),
    ]
    print(f"| input | tasks | rows | seconds | µs a row per core |\n|---|---|---|---|---|")
    fingerprints = []
    for name, path, input_config in inputs:
        best = None
        for _ in range(args.repeats):
            started = time.perf_counter()
            wanted = _partitions_wanted(spark)
            with csv_blocks_for_every_partition(spark, str(path), input_config, wanted):
                raw = read_rows(spark, str(path), input_config)
                rows = _spread(with_input_reason(raw, input_config), wanted).persist(StorageLevel.MEMORY_AND_DISK)
                n_rows = rows.count()
                seconds = time.perf_counter() - started
                tasks = raw.select(input_config.text_col).rdd.getNumPartitions()
            best = seconds if best is None else min(best, seconds)
            fingerprint = rows.select(F.sum(F.xxhash64("id", input_config.text_col) % 1_000_003)).first()[0]
            rows.unpersist()
        fingerprints.append(fingerprint)
        print(f"| {name} | {tasks} | {n_rows:,} | {best:.1f} | {best * cores / n_rows * 1e6:.0f} |", flush=True)
    print(f"the same id for every row in all three reads: {'yes' if len(set(fingerprints)) == 1 else 'NO'}")
    spark.stop()


if __name__ == "__main__":
    main()

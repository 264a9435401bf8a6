"""What the neighbours stage costs a row, alone: rows/neighbours.py on seeded clustered embeddings (issue 49).

    .venv/bin/python scripts/studies/neighbours_cost.py [--rows 300000] [--dimensions 10] [--repeat 2]
    # another commit's code, same interpreter: PYTHONPATH=/path/to/worktree .venv/bin/python scripts/studies/neighbours_cost.py

The embeddings (Gaussian blobs, 20 centres, seeded) are made on the driver and cached in Spark
before the clock starts; then the stage runs with the job's defaults (``similar.k`` 10,
``cell_rows`` 2,000, ``probes`` 3) into Spark's no-op sink, ``local[2]``, 3 GiB, 32 shuffle
partitions, as the scale model runs. Printed: each run's seconds and µs a row per core.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/, for bench.py
from bench import cpu_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--dimensions", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    from pyspark.sql import SparkSession

    import n2d_spark
    from n2d_spark.core.config import SimilarConfig
    from n2d_spark.rows.neighbours import neighbours

    cores = 2
    spark = (SparkSession.builder.master(f"local[{cores}]").config("spark.driver.memory", "3g")
             .config("spark.sql.shuffle.partitions", "32").config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, args.dimensions))
    points = (centres[rng.integers(0, 20, args.rows)] + 0.4 * rng.normal(size=(args.rows, args.dimensions))).astype(np.float32)
    frame = pd.DataFrame({"id": np.arange(args.rows, dtype=np.int64), "embedding": list(points)})
    embedded = spark.createDataFrame(frame, "id long, embedding array<float>").repartition(cores * 4).cache()
    embedded.count()
    sample = points[rng.choice(args.rows, min(args.rows, 50_000), replace=False)]
    print(f"cpu: {cpu_model()}; code: {Path(n2d_spark.__file__).parent}; rows {args.rows:,}")
    for run in range(args.repeat):
        started = time.perf_counter()
        found = neighbours(embedded, sample, args.rows, SimilarConfig(), seed=0)
        found.table.write.format("noop").mode("overwrite").save()
        seconds = time.perf_counter() - started
        print(f"run {run + 1}: {seconds:.1f} s, {seconds / args.rows * cores * 1e6:.1f} µs a row per core "
              f"({found.cells} cells x {found.probes} probes)", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()

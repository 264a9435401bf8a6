"""What placing a row outside the fit sample costs: UMAP's transform against the learned placement (issue 49).

    .venv/bin/python scripts/studies/placement_cost.py --output RUN_OUT [--rows 20000]

RUN_OUT is a job's output with embeddings/ (similar.k above 0) and model/. On one thread, as an
executor's task runs, ``--rows`` rows outside the manifold's fit sample (ordered by id) are placed
and labelled by the model's ``ClusterAssigner``: once with UMAP's transform, once with a placement
learned here from the model's fit rows (what the job trains, model/placement.py), each after a
warm-up batch (numba's compilation). Printed: the training's seconds, µs a row for each, and the
share of these rows the two label alike.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from bench import cpu_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()

    from pyspark.sql import SparkSession

    from n2d_spark.core.fs import FileSystem
    from n2d_spark.model.bundle import load_bundle
    from n2d_spark.model.manifold import import_umap_without_tensorflow
    from n2d_spark.model.placement import fit_placement

    import_umap_without_tensorflow()
    spark = SparkSession.builder.master("local[1]").getOrCreate()
    bundle = load_bundle(spark, FileSystem(spark, args.output), f"{args.output}/model")
    spark.stop()
    by_transform = replace(bundle.assigner, placement=None)
    reducer = by_transform.reducer
    rows = pd.read_parquet(f"{args.output}/embeddings").sort_values("id")
    points = np.vstack(rows["embedding"].to_numpy()).astype(np.float32)
    fitted = {row.tobytes() for row in np.asarray(reducer._raw_data, np.float32)}
    points = points[np.array([row.tobytes() not in fitted for row in points])][: args.rows]
    print(f"# {cpu_model()}; {len(reducer._raw_data):,} fit rows, {len(points):,} rows placed; one thread")

    with threadpool_limits(1):
        started = time.perf_counter()
        learned = replace(by_transform, placement=fit_placement(reducer._raw_data, reducer.embedding_, bundle.config.manifold.seed))
        training = time.perf_counter() - started
        results = {}
        for name, assigner in (("transform", by_transform), ("learned", learned)):
            assigner.assign(points[:200])  # numba's compilation, outside the timing
            started = time.perf_counter()
            results[name] = assigner.assign(points)
            print(f"{name}: {(time.perf_counter() - started) * 1e6 / len(points):.1f} µs a row")
    print(f"placement trained in {training:.1f} s (one thread)")
    print(f"same label: {np.mean(results['transform'].labels == results['learned'].labels):.3f}")


if __name__ == "__main__":
    main()

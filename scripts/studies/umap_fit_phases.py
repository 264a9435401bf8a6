"""Where the manifold stage's seeded UMAP fit spends its time (issue 29's fixed costs).

    .venv/bin/python scripts/studies/umap_fit_phases.py --embeddings RUN_OUT/embeddings [MORE/embeddings ...] [--rows 50000]

On ``--rows`` of a job's embeddings (seeded sample; the folders' rows together: an ``assign`` or
``update`` run's embeddings are the same model's), the job's own fit (model/manifold.py's
``fit_manifold`` with the default ``manifold`` settings), twice in one process, so that the
second fit runs without numba's compilation. umap-learn's phases are timed by wrapping its
functions: the fuzzy simplicial set (after the job's exact neighbour search), the spectral
initialisation, and the layout's epochs (``optimize_layout_euclidean``, single-threaded because
seeded); the whole fit also holds the exact neighbour search. The settings are ``ManifoldConfig``'s
defaults, as the shipped configs leave them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from n2d_spark.core.columns import EMBEDDING_COL
from n2d_spark.core.config import ManifoldConfig
from n2d_spark.model.manifold import fit_manifold, import_umap_without_tensorflow

PHASES = ("fuzzy_simplicial_set", "spectral_layout", "optimize_layout_euclidean")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", required=True, nargs="+")
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    frame = pd.concat([pd.read_parquet(folder) for folder in args.embeddings])
    points = np.vstack(frame[EMBEDDING_COL].to_numpy()).astype(np.float32)
    points = points[np.random.default_rng(0).permutation(len(points))[: args.rows]]

    import_umap_without_tensorflow()
    import umap.umap_ as umap_module

    seconds: dict[str, float] = {}

    def timed(name):
        function = getattr(umap_module, name)

        def wrapper(*positional, **named):
            started = time.perf_counter()
            try:
                return function(*positional, **named)
            finally:
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    for name in PHASES:
        setattr(umap_module, name, timed(name))
    config = ManifoldConfig()
    print(f"# {len(points):,} embeddings, {points.shape[1]} wide; n_neighbors {config.n_neighbors}, n_components {config.n_components}")
    print("| fit | " + " | ".join(PHASES) + " | whole fit s |\n|---|" + "---|" * (len(PHASES) + 1))
    for run in ("first (compiles)", "second"):
        seconds.clear()
        started = time.perf_counter()
        fit_manifold(points, config)
        whole = time.perf_counter() - started
        print(f"| {run} | " + " | ".join(f"{seconds.get(name, 0.0):.1f}" for name in PHASES) + f" | {whole:.1f} |")


if __name__ == "__main__":
    main()

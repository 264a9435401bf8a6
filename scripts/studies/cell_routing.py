"""Which rows a cell searches: recall@10 of the neighbours stage's cell search against exact search,
for the two ways of spreading rows over the probed cells (issue 28), on embeddings a run wrote.

    .venv/bin/python scripts/studies/cell_routing.py --embeddings OUT/embeddings[,OUT2/embeddings...] \
        [--cell-rows 2000,500] [--probes 3] [--seed 0]

- **candidates spread** (the job since dcf77a5): a row is a candidate in its ``probes`` nearest
  cells and is searched only in its nearest; one search per row ranks its k.
- **queries spread** (the job before): a row is a candidate in its nearest cell only and is
  searched in its ``probes`` nearest; the best k of its ``probes`` searches are kept, which on
  Spark took a second shuffle of probes x k x rows results.

Both use the job's own arrays (model/neighbour_search.py) and its cell count; the cells are fitted
on a seeded uniform sample of at most 50,000 rows (the job draws its sample by a hash of the id: a
different sample, the same size). Exact search: every pair, as the job scores a pair.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from bench import cpu_model  # noqa: E402

from n2d_spark.core.config import SimilarConfig  # noqa: E402
from n2d_spark.model.neighbour_search import fit_cells, nearest_cells, top_k, unit_rows  # noqa: E402
from n2d_spark.rows.neighbours import CELL_SAMPLE_ROWS, cell_count  # noqa: E402

K = 10


def best_k(query: np.ndarray, neighbour: np.ndarray, similarity: np.ndarray) -> dict:
    """Each query's K best (similarity, then lower id) of the found pairs."""
    order = np.lexsort((neighbour, -similarity, query))
    query, neighbour = query[order], neighbour[order]
    found: dict = {}
    for q, n in zip(query, neighbour):
        kept = found.setdefault(q, [])
        if len(kept) < K:
            kept.append(n)
    return found


def search(ids: np.ndarray, units: np.ndarray, cells: np.ndarray, spread: str) -> dict:
    """Each row's K neighbours by the cell search with rows spread as ``spread`` says."""
    home = cells[:, 0]
    pairs = []
    for cell in np.unique(home):
        probed = (cells == cell).any(axis=1)
        queries, candidates = (home == cell, probed) if spread == "candidates" else (probed, home == cell)
        pairs.append(top_k(ids[queries], units[queries], ids[candidates], units[candidates], K))
    return best_k(*(np.concatenate(column) for column in zip(*pairs)))


def recall(found: dict, exact: dict, ids: np.ndarray) -> float:
    return float(np.mean([len(set(found.get(i, [])) & set(exact[i])) / K for i in ids]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings", required=True, help="embeddings/ folders of runs, comma-separated")
    parser.add_argument("--cell-rows", default="2000,500")
    parser.add_argument("--probes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"CPU {cpu_model()}; probes {args.probes}; seed {args.seed}")
    print("| embeddings | rows | cell_rows | cells | recall@10, candidates spread | recall@10, queries spread |")
    print("|---|---|---|---|---|---|")
    for folder in args.embeddings.split(","):
        frame = pd.read_parquet(folder).sort_values("id")
        ids = frame["id"].to_numpy()
        units = unit_rows(np.stack(frame["embedding"].to_numpy()))
        query, neighbour, _ = top_k(ids, units, ids, units, K)
        exact = pd.Series(neighbour).groupby(query).apply(list).to_dict()
        rng = np.random.default_rng(args.seed)
        sample = units[rng.choice(len(units), min(CELL_SAMPLE_ROWS, len(units)), replace=False)]
        for cell_rows in map(int, args.cell_rows.split(",")):
            config = SimilarConfig(k=K, cell_rows=cell_rows, probes=args.probes)
            centroids = fit_cells(sample, cell_count(len(units), len(sample), config), args.seed)
            cells = nearest_cells(units, centroids, min(args.probes, len(centroids)))
            scores = [recall(search(ids, units, cells, spread), exact, ids) for spread in ("candidates", "queries")]
            print(f"| {folder} | {len(ids):,} | {cell_rows:,} | {len(centroids)} | {scores[0]:.3f} | {scores[1]:.3f} |", flush=True)


if __name__ == "__main__":
    main()

"""Would the embedding's novelty and the terms' novelty together tell AG News's withheld class (issue 30)?

    .venv/bin/python scripts/studies/novelty_combined.py --embedding-work W_EMBEDDING --terms-work W_TERMS [--inputs ag,synthetic,imdb]

W_EMBEDDING and W_TERMS are ``scripts/update_bench.py --work`` folders of the same inputs: one
run before 2d4a8b4, e.g. at abfb7a7 (novelty in the embedding space alone) and one at d49c103 on the branch
``novelty-in-terms`` (in the rows' IDF-weighted terms alone). The job now takes the two's
geometric mean (model/novelty.py): this study chose it. Both split and train alike, so their updates label
the same rows. For each row of the update, its two ``novelty`` columns (each its ratio over its
own calibrated threshold: above 1, new) are combined: geometric mean, sum, max and min. Printed
per signal: the AUC for "is the withheld class", the shares of withheld and other rows above 1,
and, with the threshold set from the answers (what no calibration can know), the recall of the
withheld rows when 3%, 5% or 10% of the others are flagged: the most any threshold on that
signal could give.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/, for update_bench.py
from update_bench import AG_WITHHELD, WITHHELD_GENRE  # noqa: E402

LABEL_COL = {"ag": "label", "synthetic": "topic", "imdb": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedding-work", required=True)
    parser.add_argument("--terms-work", required=True)
    parser.add_argument("--inputs", default="ag,synthetic")
    args = parser.parse_args()
    print("| input | signal | AUC | withheld new | others new | recall at 3% / 5% / 10% of others flagged (threshold from the answers) |")
    print("|---|---|---|---|---|---|")
    for key in args.inputs.split(","):
        label_col = LABEL_COL[key]
        embedding = pd.read_parquet(f"{args.embedding_work}/{key}-update/labels", columns=["id", "novelty", *([label_col] if label_col else [])])
        terms = pd.read_parquet(f"{args.terms_work}/{key}-update/labels", columns=["id", "novelty"])
        rows = embedding.merge(terms, on="id", suffixes=("_embedding", "_terms"), validate="one_to_one")
        assert len(rows) == len(embedding) == len(terms), "the two updates labelled other rows"
        if label_col is None:
            e, t = rows["novelty_embedding"].to_numpy(), rows["novelty_terms"].to_numpy()
            shares = {"embedding": e, "terms": t, "geometric mean": np.sqrt(e * t)}
            both = (e > 0) & (t > 0)
            print(f"| {key} | rows above 1: " + ", ".join(f"{name} {np.mean(v > 1):.3f}" for name, v in shares.items())
                  + f"; correlation of the log-novelties {np.corrcoef(np.log(e[both]), np.log(t[both]))[0, 1]:.2f}"
                  f" (the {np.sum(both):,} rows above 0 in both) | | | | |")
            continue
        withheld = (rows[label_col] == (AG_WITHHELD if key == "ag" else WITHHELD_GENRE)).to_numpy()
        e, t = rows["novelty_embedding"].to_numpy(), rows["novelty_terms"].to_numpy()
        for signal, score in (("embedding alone (abfb7a7)", e), ("terms alone (d49c103)", t), ("geometric mean", np.sqrt(e * t)),
                              ("sum - 1", e + t - 1), ("max", np.maximum(e, t)), ("min", np.minimum(e, t))):
            recalls = [np.mean(score[withheld] > np.quantile(score[~withheld], 1 - flagged)) for flagged in (0.03, 0.05, 0.1)]
            print(f"| {key} | {signal} | {roc_auc_score(withheld, score):.3f} | {np.mean(score[withheld] > 1):.3f} | "
                  f"{np.mean(score[~withheld] > 1):.3f} | {' / '.join(f'{r:.3f}' for r in recalls)} |")


if __name__ == "__main__":
    main()

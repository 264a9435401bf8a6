"""Are rows placed outside the fit as right as the rows inside it? (issue 49's label rule), in one invocation.

    .venv/bin/python scripts/holdout_bench.py [--inputs ag,bbc,reuters,imdb] [--work DIR] [--set key=value ...]
        [--json results.json] [--keep-models]

For each labelled corpus of ``../shared/data/corpora`` (AG News, BBC News, Reuters' single-topic
documents) the rows are cut in two halves by a hash of the row number (update_bench.halves: the
same split on every run). A model is trained on half A with the shipped defaults (the console
script, ``run``), and half B is labelled by it (``assign``): none of B's rows is in the fit. Printed
per corpus: the NMI against the human classes of A's labels (the fit rows: their labels come
from the fit itself) and of B's (placed by the model), and B's share of rows whose confidence
is below 0.2.

**imdb**: ``conf/imdb.yaml`` with ``manifold.fit_rows=10000`` on all 50,000 reviews, so that
about 40,000 rows of the run itself are placed outside the fit. With ``--reference DIR`` (the
output of the same command at another commit, on the same CPU: the same embeddings and fit)
it prints the share of the rows outside the fit sample that got the reference's label.

``--set`` goes to the training runs and the assigns. Files are written only under ``--work``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import cpu_model  # noqa: E402
from update_bench import CORPORA, IMDB, halves  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The console script beside this interpreter (run it with the venv's python).
CLI = str(Path(sys.executable).parent / "n2d-spark")
LABEL = "label"


def corpus_frame(key: str) -> pd.DataFrame:
    """The corpus's text and class columns, as ``text`` and ``label``."""
    if key == "ag":
        return pd.read_csv(CORPORA / "ag_news_test.csv.gz")[["text", LABEL]]
    if key == "bbc":
        return pd.read_csv(CORPORA / "bbc_news.csv.gz")[["text", LABEL]]
    if key == "reuters":
        frame = pd.read_csv(CORPORA / "reuters21578.csv.gz")
        return frame.loc[frame["n_labels"] == 1, ["text", LABEL]].reset_index(drop=True)
    raise ValueError(f"unknown input {key!r}")


def cli(command: list[str], log: Path) -> None:
    with log.open("a") as out:
        subprocess.run([CLI, *command], check=True, stdout=out, stderr=subprocess.STDOUT)


def overrides(settings: list[str]) -> list[str]:
    return [part for setting in settings for part in ("--set", setting)]


def nmi(labels: pd.DataFrame) -> float:
    return float(normalized_mutual_info_score(labels[LABEL].astype(str), labels["cluster"]))


def held_out(key: str, work: Path, settings: list[str], keep: bool) -> dict:
    frame = corpus_frame(key)
    in_a = halves(len(frame))
    train, new = work / f"{key}-A.csv", work / f"{key}-B.csv"
    frame[in_a].to_csv(train, index=False)
    frame[~in_a].to_csv(new, index=False)
    model_out, assign_out, log = work / f"{key}-A-out", work / f"{key}-B-out", work / f"{key}.log"
    common = ["--set", "input.text_col=text", "--set", f"evaluate.label_col={LABEL}", "--set", "output.mode=overwrite"]
    if not (keep and (model_out / "model" / "bundle.json").exists()):
        cli(["run", "--input", str(train), "--output", str(model_out), *common, *overrides(settings)], log)
    cli(["assign", "--model", str(model_out / "model"), "--input", str(new), "--output", str(assign_out), *common,
         *overrides(settings)], log)
    a = pd.read_parquet(model_out / "labels", columns=["cluster", LABEL])
    b = pd.read_parquet(assign_out / "labels", columns=["cluster", "confidence", LABEL])
    manifest = json.loads((model_out / "run.json").read_text())
    return {
        "input": key, "rows_a": len(a), "rows_b": len(b), "clusters": int(a["cluster"].nunique()),
        "nmi_a": nmi(a), "nmi_b": nmi(b), "unsure_b": float((b["confidence"] < 0.2).mean()),
        "precision": manifest.get("autoencoder_precision"),
    }


def imdb_placement(work: Path, settings: list[str], reference: Path | None) -> dict:
    """IMDB with 10,000 fit rows: the labels of the rows outside the fit, against ``reference``'s."""
    output = work / "imdb-10k"
    cli(["run", "--config", str(REPO / "conf" / "imdb.yaml"), "--input", str(IMDB), "--output", str(output),
         "--set", "manifold.fit_rows=10000", "--set", "output.mode=overwrite", *overrides(settings)], work / "imdb.log")
    result = {"input": "imdb", "output": str(output)}
    if reference is None:
        return result
    ours = pd.read_parquet(output / "labels", columns=["id", "cluster"])
    theirs = pd.read_parquet(reference / "labels", columns=["id", "cluster"])
    joined = ours.merge(theirs, on="id", suffixes=("", "_reference")).merge(pd.read_parquet(output / "embeddings"), on="id")
    # A fit row is one whose embedding is among the UMAP's fit rows (the bundle's umap.npz).
    with np.load(output / "model" / "umap.npz", allow_pickle=False) as umap_part:
        fitted = {row.tobytes() for row in np.asarray(umap_part["raw_data"], np.float32)}
    outside = np.array([np.asarray(row, np.float32).tobytes() not in fitted for row in joined["embedding"]])
    same = (joined["cluster"] == joined["cluster_reference"]).to_numpy()
    result.update(rows_outside=int(outside.sum()), agreement_outside=float(same[outside].mean()),
                  agreement_fit=float(same[~outside].mean()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", default="ag,bbc,reuters")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep-models", action="store_true")
    parser.add_argument("--reference", type=Path, help="imdb: an earlier run's output to compare labels with")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="holdout-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"cpu: {cpu_model()}; work: {work}")
    results = []
    for key in args.inputs.split(","):
        if key == "imdb":
            results.append(imdb_placement(work, args.settings, args.reference))
        else:
            results.append(held_out(key, work, args.settings, args.keep_models))
        print(json.dumps(results[-1]), flush=True)
    print("| input | rows A / B | clusters | NMI A (fit rows) | NMI B (placed) | B below 0.2 confidence | precision |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        if "nmi_a" in r:
            print(f"| {r['input']} | {r['rows_a']:,} / {r['rows_b']:,} | {r['clusters']} | {r['nmi_a']:.3f} | {r['nmi_b']:.3f} "
                  f"| {r['unsure_b']:.3f} | {r['precision']} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""How well ``n2d-spark update`` tells new rows and finds new topics (issue 30), in one invocation.

    .venv/bin/python scripts/update_bench.py [--inputs ag,synthetic,imdb] [--set update.key=value ...] [--work DIR] [--keep-models]
        [--train-set key=value ...]

For each input a model is trained on one part of the data with the console script and the
shipped defaults (the synthetic corpus with conf/synthetic.yaml, IMDB with conf/imdb.yaml), then
updated with the rest (``--set`` goes to the update only, ``--train-set`` to the training runs, such as
``autoencoder.precision=float32``; ``--keep-models`` reuses models already trained in ``--work``):

- **ag**: AG News's 7,600 rows cut in two halves by a hash of the row number (pandas' ``hash_array``,
  the same split on every run); trained on
  half A's World, Sports and Business rows, updated with all of half B. Printed: the share of
  B's Sci/Tech rows that are new (in a new topic) and novel (novelty > 1), the same shares of B's
  other rows, the AUC of ``novelty`` for "is Sci/Tech", the Sci/Tech share of the rows in new
  topics, and the NMI of B's updated labels against its four classes beside that of a full
  retrain on A and B (all four classes), scored on B's rows.
- **synthetic**: trained on 6,000 generated reviews (seed 0) less one genre (``WITHHELD_GENRE``),
  updated with 6,000 more of every genre (seed 1). Printed: novelty's AUC for the withheld
  genre, the withheld genre's share that is new (in new topics) and novel, and the same of the
  other rows (a row's label changes only when it joins a new topic: the other rows that are new
  are those the update relabelled).
- **imdb**: no planted change: trained on the first 25,000 reviews, updated with the other 25,000.
  Printed: the new-row and novel-row shares and the new topics found, with their names.

Also printed for each: the words outside the vocabulary, whether a retrain is advised, and the
update's stage times. Inputs are read from ``../shared``; files are written only under ``--work``.
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
from sklearn.metrics import normalized_mutual_info_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import cpu_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO.parent / "shared" / "data" / "corpora"
IMDB = REPO.parent / "shared" / "data" / "imdb_reviews.csv.gz"
CLI = str(REPO / ".venv" / "bin" / "n2d-spark")
AG_WITHHELD = "Sci/Tech"
WITHHELD_GENRE = "scifi"


def halves(n_rows: int) -> np.ndarray:
    """True for the rows of half A: the low bit of pandas' hash of each row number (a fixed hash: no key for integers)."""
    return (pd.util.hash_array(np.arange(n_rows, dtype=np.int64)) & 1) == 0


def prepare(key: str, work: Path) -> tuple[Path, Path]:
    """The training input and the new input of ``key``, written under ``work``."""
    train, new = work / f"{key}-train.csv", work / f"{key}-new.csv"
    if key == "ag":
        frame = pd.read_csv(CORPORA / "ag_news_test.csv.gz")[["text", "label"]]
        frame["half"] = np.where(halves(len(frame)), "A", "B")
        frame[(frame["half"] == "A") & (frame["label"] != AG_WITHHELD)].to_csv(train, index=False)
        frame[frame["half"] == "B"].to_csv(new, index=False)
        # The full retrain's input: both halves, all four classes.
        frame.to_csv(work / "ag-all.csv", index=False)
    elif key == "synthetic":
        from n2d_spark.synthetic import generate_reviews

        first = generate_reviews(6000, seed=0)
        first[first["topic"] != WITHHELD_GENRE].to_csv(train, index=False)
        generate_reviews(6000, seed=1).to_csv(new, index=False)
    elif key == "imdb":
        frame = pd.read_csv(IMDB)
        frame.iloc[:25_000].to_csv(train, index=False)
        frame.iloc[25_000:].to_csv(new, index=False)
    else:
        raise ValueError(f"unknown input {key!r}")
    return train, new


SETTINGS = {
    "ag": (None, "text", "label"),
    "synthetic": (str(REPO / "conf" / "synthetic.yaml"), "review", "topic"),
    "imdb": (str(REPO / "conf" / "imdb.yaml"), "review", "sentiment"),
}


def cli(*args: str) -> None:
    subprocess.run([CLI, *args, "--set", "output.mode=overwrite"], check=True, stdout=subprocess.DEVNULL)


def train(key: str, source: Path, output: Path, label_col: str, overrides: list[str]) -> None:
    config, text_col, _ = SETTINGS[key]
    cli("run", *(["--config", config] if config else []), "--input", str(source), "--output", str(output),
        "--set", f"input.text_col={text_col}", "--set", f"evaluate.label_col={label_col}", *sum((["--set", o] for o in overrides), []))


def measure(key: str, work: Path, overrides: list[str], keep_models: bool, train_overrides: list[str]) -> dict:
    _, text_col, label_col = SETTINGS[key]
    train_path, new_path = prepare(key, work)
    model = work / f"{key}-model"
    if not (keep_models and (model / "model" / "bundle.json").exists()):
        train(key, train_path, model, label_col, train_overrides)
    updated = work / f"{key}-update"
    cli("update", "--model", str(model / "model"), "--input", str(new_path), "--output", str(updated),
        "--set", f"input.text_col={text_col}", "--set", f"evaluate.label_col={label_col}", *sum((["--set", o] for o in overrides), []))
    manifest = json.loads((updated / "run.json").read_text())
    update = manifest["update"]
    labels = pd.read_parquet(updated / "labels")
    new_topics = [topic["cluster"] for topic in update["new_topics"]]
    is_novel, in_new_topic = labels["novelty"] > 1, labels["cluster"].isin(new_topics)
    result = {
        "input": key,
        "rows": len(labels),
        "new_row_share": float(in_new_topic.mean()),
        "novel_row_share": float(is_novel.mean()),
        "new_topics": [topic["name"] for topic in update["new_topics"]],
        "oov": update["out_of_vocabulary_share"],
        "retrain_advised": update["retrain_advised"],
        "why": update["why"],
        "stage_seconds": manifest["stage_seconds"],
        "precision": json.loads((model / "run.json").read_text())["autoencoder_precision"],
    }
    if key in ("ag", "synthetic"):
        withheld = labels[label_col] == (AG_WITHHELD if key == "ag" else WITHHELD_GENRE)
        result.update(
            withheld_new=float(in_new_topic[withheld].mean()),
            others_new=float(in_new_topic[~withheld].mean()),
            withheld_novel=float(is_novel[withheld].mean()),
            others_novel=float(is_novel[~withheld].mean()),
            withheld_share_of_new_topics=float(withheld[in_new_topic].mean()) if in_new_topic.any() else None,
            novelty_auc=float(roc_auc_score(withheld, labels["novelty"])),
        )
    if key == "ag":
        result["nmi_updated"] = float(normalized_mutual_info_score(labels[label_col], labels["cluster"]))
        retrained = work / "ag-retrain"
        if not (keep_models and (retrained / "run.json").exists()):
            train(key, work / "ag-all.csv", retrained, label_col, train_overrides)
        full = pd.read_parquet(retrained / "labels")
        on_b = full[full["half"] == "B"]
        result["nmi_full_retrain"] = float(normalized_mutual_info_score(on_b[label_col], on_b["cluster"]))
    return result


def _f(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", default="ag,synthetic,imdb")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--keep-models", action="store_true")
    parser.add_argument("--train-set", dest="train_overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="update-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results = [measure(key, work, args.overrides, args.keep_models, args.train_overrides) for key in args.inputs.split(",")]
    print(f"CPU: {cpu_model()}; update overrides: {' '.join(args.overrides) or 'none'}; "
          f"training overrides: {' '.join(args.train_overrides) or 'none'}")
    print("| input | rows | new-row share (in new topics) | novel-row share | novelty's AUC for the withheld rows "
          "| withheld rows new | other rows new (relabelled) | withheld rows novel | other rows novel "
          "| withheld share of new topics | NMI updated / full retrain | new topics "
          "| words outside vocabulary (training / new) | retrain advised |")
    print("|" + "---|" * 14)
    for r in results:
        nmi = f"{_f(r.get('nmi_updated'))} / {_f(r.get('nmi_full_retrain'))}" if "nmi_updated" in r else "-"
        print(f"| {r['input']} ({r['precision']}) | {r['rows']} | {_f(r['new_row_share'])} | {_f(r['novel_row_share'])} "
              f"| {_f(r.get('novelty_auc'))} | {_f(r.get('withheld_new'))} | {_f(r.get('others_new'))} "
              f"| {_f(r.get('withheld_novel'))} | {_f(r.get('others_novel'))} | {_f(r.get('withheld_share_of_new_topics'))} | {nmi} "
              f"| {len(r['new_topics'])}: {', '.join(r['new_topics'][:6])}{', ...' if len(r['new_topics']) > 6 else ''} "
              f"| {_f(r['oov']['training'])} / {_f(r['oov']['new'])} | {'yes: ' + '; '.join(r['why']) if r['retrain_advised'] else 'no'} |")
    for r in results:
        print(f"{r['input']} update stages: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in r["stage_seconds"].items()))


if __name__ == "__main__":
    main()

"""How many epochs, and what batch size? Validation loss against time spent, on IMDB.

    .venv/bin/python scripts/studies/epochs_study.py [--epochs 20] [--batch-sizes 128,256,512] [--precisions float32,bfloat16]
        [--learning-rates 0.001,0.002]

Vectorizes the 50,000 IMDB reviews as the job does (conf/imdb.yaml), takes the job's
25,000-row autoencoder sample, and trains the default architecture once per batch size and
precision (``autoencoder.precision``; default: what ``auto`` picks on this CPU), printing each
epoch's validation loss and the cumulative training seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/, for bench.py
from bench import cpu_model  # noqa: E402

from n2d_spark.cli import build_local_session
from n2d_spark.core.config import load_config
from n2d_spark.model.autoencoder import train_autoencoder
from n2d_spark.model.encoder import InputScaler
from n2d_spark.rows.read import read_rows
from n2d_spark.rows.sampling import collect_sample
from n2d_spark.rows.text import COUNTS_COL, fit_text_model, vectorize

REPO = Path(__file__).resolve().parents[2]
IMDB = REPO.parent / "shared" / "data" / "imdb_reviews.csv.gz"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-sizes", default="128,256,512")
    parser.add_argument("--precisions", default="auto", help="comma-separated: auto, float32, bfloat16")
    parser.add_argument("--learning-rates", default=None, help="comma-separated; default: autoencoder.learning_rate")
    args = parser.parse_args()
    config = load_config(REPO / "conf" / "imdb.yaml")
    spark = build_local_session(load_config(None, ["spark.master=local[2]"]))
    spark.sparkContext.setLogLevel("ERROR")
    reviews = read_rows(spark, str(IMDB), config.input)
    vectors = vectorize(fit_text_model(reviews, config.input.text_col, config.text), reviews)
    _, counts = collect_sample(vectors, COUNTS_COL, config.autoencoder.sample_rows, config.autoencoder.seed)
    x = InputScaler.fit(counts, config.text.scaling, config.text.l2_normalize).transform(counts)
    print(f"sample: {x.shape[0]} rows x {x.shape[1]} terms, scaling {config.text.scaling}, L2 {config.text.l2_normalize}")
    print(f"CPU: {cpu_model()}")
    learning_rates = [float(r) for r in args.learning_rates.split(",")] if args.learning_rates else [config.autoencoder.learning_rate]
    print("| batch size | precision | learning rate | epoch | epoch s | cumulative s | val loss | val loss / epoch-1 val loss |")
    print("|---|---|---|---|---|---|---|---|")
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        for precision in args.precisions.split(","):
            for learning_rate in learning_rates:
                trained = train_autoencoder(x, dataclasses.replace(
                    config.autoencoder, epochs=args.epochs, min_steps=0, batch_size=batch_size, precision=precision,
                    learning_rate=learning_rate,
                ))
                history, elapsed = trained.history, 0.0
                for epoch, (seconds, loss) in enumerate(zip(history["epoch_seconds"], history["val_loss"]), start=1):
                    elapsed += seconds
                    print(f"| {batch_size} | {trained.precision} | {learning_rate:g} | {epoch} | {seconds:.1f} | {elapsed:.1f}"
                          f" | {loss:.4e} | {loss / history['val_loss'][0]:.3f} |", flush=True)


if __name__ == "__main__":
    main()

"""Which signal says that a new row is one the model does not describe (issue 30).

    .venv/bin/python scripts/studies/novelty_study.py --model TRAIN_OUT/model --assigned ASSIGN_OUT \
        --train-input TRAIN.csv --new-input NEW.csv --text-col text --label-col label --new-class Sci/Tech \
        [--reconstruction]

TRAIN_OUT is a training run on TRAIN.csv, which lacks the class ``--new-class``; ASSIGN_OUT an
``assign`` run of that model on NEW.csv (a single CSV file, so that a row's id is its row number),
with its labels/ (the label column passed through) and its embeddings/. scripts/update_bench.py
prepares such inputs (``prepare``: ag, synthetic). Signals, each high for a new row:

- kNN distance: from a row's embedding to its k-th nearest row of the UMAP fit sample (k = 1, 15, 50);
- density ratio (model/novelty.py in the embedding space: the job's alone in vector mode and before
  bundle format 5; for text, format 5 takes its geometric mean with the terms'): that distance for k = 15 over
  the distance to the 15th nearest row of a sample of the new rows, over its median on that sample;
- low embedding norm: minus the embedding's length;
- centroid distance: in UMAP coordinates, to the row's topic's centroid; and 1 - confidence;
- words outside the vocabulary: the share of a row's words (lower-cased letters, two or more,
  stop words removed: close to the job's tokens) that the model's vocabulary lacks;
- Fisher's combination of the density ratio and the words outside the vocabulary: -2 (log p1 +
  log p2), each p the share of the signal's calibration values at or above the row's;
- with ``--reconstruction``: the autoencoder's reconstruction error, from an autoencoder trained
  here as the job trains it (same layers, seed, epochs and split) on TRAIN.csv's rows counted over
  the model's vocabulary (a bundle keeps the encoder only), its threshold from the validation rows.

Each threshold is calibrated as a bundle would store it: the q-quantile of the signal on the
training rows (kNN distances leaving the row itself out; the density ratio between two halves of
the fit rows, as ``calibrate`` does). Printed per signal: its AUC for "is of the new class", and
at each q the share of the new class's rows above the threshold and of the other rows above it.
"""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from n2d_spark.model.novelty import calibrate, density_ratios, kth_distances, split_halves

QUANTILES = (0.9, 0.95, 0.98, 0.99)
KS = (1, 15, 50)


def npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


def words_outside(texts, vocabulary: set[str], stop_words: set[str]) -> np.ndarray:
    shares = []
    for text in texts:
        words = [w for w in re.findall(r"[a-z]{2,}", str(text).lower()) if w not in stop_words]
        shares.append(np.mean([w not in vocabulary for w in words]) if words else 1.0)
    return np.array(shares)


def reconstruction_errors(train_texts, new_texts, terms: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(validation rows' errors, new rows' errors) of an autoencoder trained as the job trains it."""
    import keras
    from sklearn.feature_extraction.text import CountVectorizer

    from n2d_spark.core.config import JobConfig
    from n2d_spark.model import autoencoder
    from n2d_spark.model.encoder import InputScaler

    config = JobConfig()
    counts = CountVectorizer(vocabulary=terms, token_pattern=r"[a-z]{2,}")
    train = counts.transform(pd.Series(train_texts).str.lower()).astype(np.float32)
    new = counts.transform(pd.Series(new_texts).str.lower()).astype(np.float32)
    scaler = InputScaler.fit(train, config.text.scaling, config.text.l2_normalize)
    train, new = scaler.transform(train), scaler.transform(new)
    keras.utils.set_random_seed(config.autoencoder.seed)
    order = np.random.default_rng(config.autoencoder.seed).permutation(train.shape[0])
    n_val = int(round(train.shape[0] * config.autoencoder.validation_fraction))
    model, _ = autoencoder._build(train.shape[1], config.autoencoder, "float32")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.autoencoder.learning_rate), loss="mse")
    epochs = autoencoder.epochs_for(train.shape[0] - n_val, config.autoencoder)
    model.fit(autoencoder._batches(train[order[n_val:]], config.autoencoder.batch_size, 0), epochs=epochs, verbose=0, shuffle=False)

    def errors(rows):
        dense = rows.toarray()
        return ((model.predict(dense, verbose=0, batch_size=512) - dense) ** 2).mean(axis=1)

    return errors(train[order[:n_val]]), errors(new)


def tail_share(calibrated: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each value, the share of ``calibrated`` at or above it (one added above and below: never 0)."""
    ordered = np.sort(calibrated)
    return (len(ordered) - np.searchsorted(ordered, values, side="left") + 1) / (len(ordered) + 1)


def fisher(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray], rng) -> tuple[np.ndarray, np.ndarray]:
    """Fisher's combination of two (values, calibration values) signals; its calibration pairs the two
    calibrations at random, as if the signals were independent."""
    combined = -2 * (np.log(tail_share(first[1], first[0])) + np.log(tail_share(second[1], second[0])))
    null_first = first[1]
    null_second = rng.choice(second[1], len(null_first))
    calibrated = -2 * (np.log(tail_share(first[1], null_first)) + np.log(tail_share(second[1], null_second)))
    return combined, calibrated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--model", "--assigned", "--train-input", "--new-input"):
        parser.add_argument(name, required=True, type=Path)
    for name in ("--text-col", "--label-col", "--new-class"):
        parser.add_argument(name, required=True)
    parser.add_argument("--reconstruction", action="store_true")
    args = parser.parse_args()

    bundle = json.loads((args.model / "bundle.json").read_text())
    metric, seed = bundle["config"]["manifold"]["metric"], bundle["config"]["manifold"]["seed"]
    umap_arrays, clusters = npz(args.model / "umap.npz"), npz(args.model / "clusters.npz")
    fit_rows, fit_coordinates = umap_arrays["raw_data"], umap_arrays["embedding"]
    topic_ids, centroids = clusters["topic_ids"], clusters["topic_centroids"]
    text = json.loads((args.model / "text.json").read_text())
    vocabulary, stop_words = set(text["terms"]), set(text["stop_words"])

    rows = pd.read_parquet(args.assigned / "labels").merge(pd.read_parquet(args.assigned / "embeddings"), on="id").sort_values("id")
    points = np.vstack(rows["embedding"].to_numpy()).astype(np.float32)
    is_new = (rows[args.label_col] == args.new_class).to_numpy()
    new_texts = pd.read_csv(args.new_input)[args.text_col].iloc[rows["id"].to_numpy()]
    train_texts = pd.read_csv(args.train_input)[args.text_col]

    signals: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    none = np.zeros(len(fit_rows), bool)
    for k in KS:
        signals[f"kNN distance, k={k}"] = (
            kth_distances(fit_rows, points, k, np.zeros(len(points), bool), metric),
            kth_distances(fit_rows, fit_rows, k, ~none, metric),
        )
    calibration = calibrate(fit_rows, metric, seed)
    known = split_halves(fit_rows, seed)[0]
    in_sample = np.zeros(len(points), bool)
    in_sample[np.random.default_rng(seed).permutation(len(points))[: len(known)]] = True
    sample = points[in_sample]
    ratios = density_ratios(points, known[: len(sample)], sample, in_sample, calibration.neighbours, metric)
    signals["density ratio, k=15 (the job's)"] = (ratios / np.median(ratios[in_sample]), calibration.quantiles)
    signals["low embedding norm"] = (-np.linalg.norm(points, axis=1), -np.linalg.norm(fit_rows, axis=1))
    own = np.minimum(np.searchsorted(topic_ids, rows["cluster"].to_numpy()), len(topic_ids) - 1)
    fit_own = ((fit_coordinates[:, None, :] - centroids[None]) ** 2).sum(axis=2).argmin(axis=1)
    signals["centroid distance (UMAP)"] = (
        np.linalg.norm(np.vstack(rows["umap"].to_numpy()) - centroids[own], axis=1),
        np.linalg.norm(fit_coordinates - centroids[fit_own], axis=1),
    )
    signals["1 - confidence"] = (1 - rows["confidence"].to_numpy(), None)
    signals["words outside the vocabulary"] = (
        words_outside(new_texts, vocabulary, stop_words), words_outside(train_texts, vocabulary, stop_words),
    )
    signals["Fisher: density ratio and words outside"] = fisher(
        signals["density ratio, k=15 (the job's)"], signals["words outside the vocabulary"], np.random.default_rng(seed)
    )
    if args.reconstruction:
        validation, new = reconstruction_errors(train_texts, new_texts, text["terms"])
        signals["reconstruction error"] = (new, validation)

    print(f"{len(fit_rows)} fit rows; {len(rows)} new rows, {is_new.sum()} of class {args.new_class!r}")
    print("| signal | AUC | " + " | ".join(f"q={q}: new / other rows above" for q in QUANTILES) + " |")
    print("|" + "---|" * (2 + len(QUANTILES)))
    for name, (values, calibrated) in signals.items():
        cells = []
        for q in QUANTILES:
            if calibrated is None:
                cells.append("-")
                continue
            above = values > np.quantile(calibrated, q)
            cells.append(f"{above[is_new].mean():.3f} / {above[~is_new].mean():.3f}")
        print(f"| {name} | {roc_auc_score(is_new, values):.3f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

"""The study's pipeline on one machine, in one process: the reference the Spark job is timed against.

    .venv/bin/python scripts/reference_pipeline.py --input reviews.csv [--rows N] \
        [--config conf/imdb.yaml] [--set section.key=value ...] [--output result.json]

What the study this project reproduces did, with pandas, scikit-learn, Keras and umap-learn:

- read: ``pandas.read_csv`` (RFC 4180: ``""`` inside quoted fields, fields spanning lines),
  the first ``--rows`` rows;
- vectorize: HTML tags and entities stripped with a regex, lower-cased, tokens of letters and
  digits (apostrophes kept inside words, two characters or more, as the job's tokenizer),
  scikit-learn's English stop words dropped, ``CountVectorizer(max_features=text.vocab_size,
  min_df=text.min_df)``. scikit-learn's list has no contractions, so "it's" and "don't" stay
  (about 90 of 5,000 terms on IMDB), where the job's Spark list drops them;
- the input scaling the job uses by default: tf-idf with the smoothed IDF log((n+1)/(df+1)),
  each row L2-scaled to norm sqrt(vocabulary size);
- autoencoder: the job's architecture and training (``autoencoder.hidden``, ``bottleneck``,
  ``epochs``, ``batch_size``, ``learning_rate``, MSE, Adam, the same seeding and
  deterministic ops), trained on ALL the rows, as the study did, not on the job's sample of
  ``autoencoder.sample_rows`` (which this script ignores). The same ``validation_fraction``
  as the job is held out, so that both report a validation loss; ``--set
  autoencoder.validation_fraction=0`` trains on every row;
- embed: the Keras encoder's ``predict`` on all rows;
- manifold: ``umap.UMAP`` with the job's settings, seeded (hence single-threaded, as the job's);
- cluster: DBSCAN with the job's ``eps`` and ``min_samples`` on the UMAP coordinates.

Settings come from the same YAML config and ``--set`` overrides as the job, with the job's
defaults; keys this script has no use for (spark, output, embed, ...) are ignored. Only the
job's default scaling (tf-idf + L2) and clusterer (DBSCAN) are implemented.

Prints one JSON object (and writes it to ``--output``): rows, stage seconds, total seconds
from the start of the process (imports included), the autoencoder's history, and the metrics
the job reports, computed with the job's own ``n2d_spark.core.metrics`` so that both are scored
identically.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from contextlib import contextmanager, redirect_stdout  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import yaml  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The job's defaults (n2d_spark/core/config.py) for the keys this script uses.
DEFAULTS = {
    "input": {"text_col": "review"},
    "text": {"vocab_size": 5000, "min_df": 5.0, "scaling": "tfidf", "l2_normalize": True},
    "autoencoder": {
        "hidden": [1024, 512, 256],
        "bottleneck": 10,
        "epochs": 10,
        "batch_size": 512,
        "learning_rate": 0.001,
        "validation_fraction": 0.1,
        "seed": 0,
    },
    "manifold": {"n_components": 5, "n_neighbors": 50, "min_dist": 0.0, "metric": "euclidean", "seed": 0},
    "cluster": {"algorithm": "dbscan", "eps": 1.0, "min_samples": 50, "seed": 0},
    "evaluate": {"label_col": None, "silhouette_rows": 5000},
}

_TAG = re.compile(r"<[^>]*>")
_ENTITY = re.compile(r"&[#a-zA-Z0-9]+;")
# Letters and digits; an apostrophe only between two letters ("don't" is one token).
_TOKEN = re.compile(r"[^\W_]+(?:(?<=[^\W\d_])['\u2019](?=[^\W\d_])[^\W_]+)*")


def load_settings(path: str | None, overrides: list[str]) -> dict:
    settings = copy.deepcopy(DEFAULTS)
    raw = (yaml.safe_load(Path(path).read_text()) or {}) if path else {}
    for override in overrides:
        key, _, value = override.partition("=")
        section, _, name = key.strip().partition(".")
        raw.setdefault(section, {})[name] = yaml.safe_load(value) if value.strip() else ""
    for section, values in raw.items():
        if section in settings and isinstance(values, dict):
            settings[section].update({k: v for k, v in values.items() if k in settings[section]})
    if settings["text"]["scaling"] != "tfidf" or not settings["text"]["l2_normalize"]:
        sys.exit("reference_pipeline: only text.scaling=tfidf with l2_normalize=true is implemented")
    if settings["cluster"]["algorithm"] != "dbscan":
        sys.exit("reference_pipeline: only cluster.algorithm=dbscan is implemented")
    return settings


def preprocess(text: str) -> str:
    return _ENTITY.sub(" ", _TAG.sub(" ", text)).lower()


def tokenize(text: str) -> list[str]:
    return [token for token in _TOKEN.findall(text) if len(token) >= 2]


def tfidf_l2(counts: sp.csr_matrix) -> sp.csr_matrix:
    """Smoothed tf-idf, then each row scaled to norm sqrt(V) (the job's InputScaler, tfidf + L2)."""
    x = sp.csr_matrix(counts, dtype=np.float32)
    document_frequency = np.bincount(x.indices, minlength=x.shape[1])
    idf = np.log((x.shape[0] + 1.0) / (document_frequency + 1.0)).astype(np.float32)
    x = sp.csr_matrix(x.multiply(idf[np.newaxis, :]), dtype=np.float32)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(np.sqrt(x.shape[1]) / norms).astype(np.float32) @ x)


class Timer:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        print(f"reference: {name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)
        print(f"reference: {name} done in {self.seconds[name]:.1f} s", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="CSV (optionally .gz) with a header")
    parser.add_argument("--rows", type=int, default=None, help="the first N rows (default: all)")
    parser.add_argument("--config", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--output", default=None, help="also write the JSON result here")
    args = parser.parse_args()
    settings = load_settings(args.config, args.overrides)
    text_col, label_col = settings["input"]["text_col"], settings["evaluate"]["label_col"]
    ae, manifold, cluster = settings["autoencoder"], settings["manifold"], settings["cluster"]
    timer = Timer()
    imports_seconds = round(time.perf_counter() - _STARTED, 3)

    with timer.stage("read"):
        frame = pd.read_csv(args.input, nrows=args.rows, dtype=str, keep_default_na=False)
        texts = frame[text_col].tolist()

    with timer.stage("vectorize"):
        from sklearn.feature_extraction.text import CountVectorizer

        min_df = settings["text"]["min_df"]
        vectorizer = CountVectorizer(
            preprocessor=preprocess,
            tokenizer=tokenize,
            token_pattern=None,
            stop_words="english",
            max_features=settings["text"]["vocab_size"],
            min_df=int(min_df) if min_df >= 1 else float(min_df),
            dtype=np.float32,
        )
        with warnings.catch_warnings():
            # "stop_words may be inconsistent with your preprocessing": the tokenizer keeps "don't" whole.
            warnings.simplefilter("ignore", UserWarning)
            counts = vectorizer.fit_transform(texts)
        x = tfidf_l2(counts)
        dense = x.toarray()
        del x

    with timer.stage("autoencoder"):
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(ae["seed"])
        tf.config.experimental.enable_op_determinism()
        n_rows, input_dim = dense.shape
        order = np.random.default_rng(ae["seed"]).permutation(n_rows)
        n_val = int(round(n_rows * ae["validation_fraction"])) if n_rows > 1 else 0
        x_train = dense[order[n_val:]]
        x_val = dense[order[:n_val]] if n_val else None
        inputs = keras.Input(shape=(input_dim,))
        h = inputs
        for width in ae["hidden"]:
            h = keras.layers.Dense(width, activation="relu")(h)
        code = keras.layers.Dense(ae["bottleneck"], name="bottleneck")(h)
        h = code
        for width in reversed(ae["hidden"]):
            h = keras.layers.Dense(width, activation="relu")(h)
        autoencoder = keras.Model(inputs, keras.layers.Dense(input_dim)(h))
        encoder = keras.Model(inputs, code)
        autoencoder.compile(optimizer=keras.optimizers.Adam(learning_rate=ae["learning_rate"]), loss="mse")
        with redirect_stdout(sys.stderr):  # Keras logs epochs on stdout; stdout is the JSON result
            fit = autoencoder.fit(
                x_train, x_train,
                validation_data=(x_val, x_val) if n_val else None,
                epochs=ae["epochs"], batch_size=ae["batch_size"], shuffle=True, verbose=2,
            )
        history = {name: [float(v) for v in values] for name, values in fit.history.items()}
        del x_train, x_val

    with timer.stage("embed"):
        embeddings = encoder.predict(dense, batch_size=4096, verbose=0).astype(np.float32)
        del dense

    with timer.stage("manifold"):
        import umap

        n_neighbors = min(manifold["n_neighbors"], max(2, len(embeddings) - 1))
        coordinates = umap.UMAP(
            n_components=manifold["n_components"],
            n_neighbors=n_neighbors,
            min_dist=manifold["min_dist"],
            metric=manifold["metric"],
            random_state=manifold["seed"],
        ).fit_transform(embeddings).astype(np.float32)

    with timer.stage("cluster"):
        from sklearn.cluster import DBSCAN

        labels = DBSCAN(eps=cluster["eps"], min_samples=cluster["min_samples"]).fit_predict(coordinates).astype(np.int32)

    # The job's own scoring, so that both pipelines are scored identically.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from n2d_spark.core.metrics import agreement, label_shape, silhouette_on_sample

    result = {
        "pipeline": "reference",
        "input": args.input,
        "rows": {"in": len(frame), "labelled": int(len(labels))},
        "input_dimension": int(counts.shape[1]),
        "settings": settings,
        "autoencoder_history": history,
        "clusters": {
            **label_shape(labels),
            "silhouette": silhouette_on_sample(coordinates, labels, settings["evaluate"]["silhouette_rows"], seed=cluster["seed"]),
        },
        "imports_seconds": imports_seconds,
        "stage_seconds": timer.seconds,
        "total_seconds": round(time.perf_counter() - _STARTED, 3),
    }
    if label_col:
        result["evaluation"] = {"label_col": label_col, **agreement(labels, frame[label_col].astype(str).to_numpy())}
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.output:
        Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

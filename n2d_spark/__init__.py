"""n2d-spark: N2D clustering (autoencoder, UMAP, shallow clusterer) of text or vectors on Spark.

``from n2d_spark import N2D, N2DModel, JobConfig, load_config``: the Spark ML estimator and its
model (estimator.py), and the job's config that both take (core/config.py). They are imported on
first use: the executors import this package too, and must not load TensorFlow (the estimator's
training imports it).

The package is grouped by what each part is for. The sub-packages stack: each imports only
from those listed below it, never from one above (tests/test_layout.py checks every import):

    outputs      what a run publishes: staging and publish, the row tables, the catalog, run.json, queries
    evaluation   scores beyond the labels, and the report that shows them
    rows         the stages over DataFrame rows: read, vectorize, embed, assign, and the fit that composes them
    model        the fitted parts as NumPy and plain arrays, and their bundle; no DataFrame stage
    core         what every layer shares: config, column names, errors, metrics, filesystem, progress

On top, the entry points: cli.py (the command line), pipeline.py (the job, stage by stage),
lookup.py (``n2d-spark similar``), estimator.py (``N2D``/``N2DModel``) and synthetic.py (the
built-in corpus).

Why this order: ``model`` is what the executors unpickle and the bundle stores, so it must not
reach for Spark stages; ``rows`` run that model over DataFrames; ``evaluation`` scores rows and
fitted parts; ``outputs`` records everything, run.json included, so it sits above all of them.
"""

__all__ = ["N2D", "N2DModel", "JobConfig", "load_config"]


def __getattr__(name: str):
    if name in ("N2D", "N2DModel"):
        from n2d_spark import estimator

        return getattr(estimator, name)
    if name in ("JobConfig", "load_config"):
        from n2d_spark.core import config

        return getattr(config, name)
    raise AttributeError(f"module 'n2d_spark' has no attribute {name!r}")

"""n2d-spark: N2D clustering (autoencoder, UMAP, shallow clusterer) of text or vectors on Spark.

``from n2d_spark import N2D, N2DModel``: the Spark ML estimator and its model (estimator.py).
They are imported on first use: the executors import this package too, and must not load
TensorFlow (the estimator's training imports it).
"""

__all__ = ["N2D", "N2DModel"]


def __getattr__(name: str):
    if name in __all__:
        from n2d_spark import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module 'n2d_spark' has no attribute {name!r}")

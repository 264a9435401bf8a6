"""n2d-spark: N2D clustering (autoencoder, UMAP, shallow clusterer) of text or vectors on Spark."""

"""The fitted model: the autoencoder's NumPy encoder, UMAP, the clusterer, and the bundle that
stores them as arrays. Arrays in, arrays out; the executors unpickle these parts."""

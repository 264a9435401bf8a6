"""Names every stage shares: the columns of the job's rows and outputs, the noise label, and how an
input column's name is quoted.

One module with no imports, so that the executors' code (embed, assign) and the driver's
read the same names without importing each other's stages.
"""

# The row id: ``input.id_col``'s values, or one the job derives from the row (rows/read.py).
ID_COL = "id"
# Why a row was rejected (null: usable), and a malformed record's raw text.
REASON_COL = "reason"
RECORD_COL = "record"
# A row's encoder output, then its UMAP coordinates and its cluster; how clearly the row belongs
# to that cluster (0-1) and the cluster it is next nearest (model/cluster.py, FittedClusters.confidence).
EMBEDDING_COL = "embedding"
UMAP_COL = "umap"
CLUSTER_COL = "cluster"
CONFIDENCE_COL = "confidence"
SECOND_CLUSTER_COL = "second_cluster"
# An update run's labels/: how new the row is to the model it updates (model/novelty.py; above 1: new).
NOVELTY_COL = "novelty"
# clusters/: the model whose training or update found the topic.
FIRST_MODEL_COL = "first_model"
# In every labels/ row, so that the outputs of several runs can be unioned and told apart.
RUN_ID_COL = "run_id"
MODEL_ID_COL = "model_id"
# Text mode's vectors: words left after cleaning and stop-word removal, in the vocabulary or not
# (0: the text was empty after cleaning).
WORD_COUNT_COL = "_n_words"
# The cluster of a row that no cluster takes (DBSCAN's and HDBSCAN's noise).
NOISE = -1


def quoted(name: str) -> str:
    """``name`` as Spark reads a column name literally, even one with a dot or a backtick in it."""
    return "`" + name.replace("`", "``") + "`"

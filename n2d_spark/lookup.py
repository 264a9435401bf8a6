"""``n2d-spark similar``: the rows of a published output most similar to one of its rows (``--id``)
or to a new text (``--text``), by an exact scan of its embeddings/ on the executors.

A new text is cleaned, counted and embedded as the run's rows were, by its model bundle: the output's
own model/, or the bundle an assign run's run.json names while that folder still holds the same model.
Each problem with the request is one ``InputError`` line: a missing id, a text with no term of the
vocabulary, a model folder written since, an output without embeddings/.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.core.columns import CLUSTER_COL, EMBEDDING_COL, ID_COL, REASON_COL, quoted
from n2d_spark.core.errors import InputError
from n2d_spark.core.fs import file_system
from n2d_spark.core.terminal import printable
from n2d_spark.model.bundle import ModelBundle, load_bundle
from n2d_spark.outputs.publish import CLUSTERS_DIR, EMBEDDINGS_DIR, LABELS_DIR, MANIFEST_FILE, MODEL_DIR
from n2d_spark.rows.neighbours import RANK_COL, SIMILARITY_COL
from n2d_spark.rows.sampling import rows_to_csr
from n2d_spark.rows.similar import QUERY_COL, QUERY_EMBEDDING_COL, most_similar
from n2d_spark.rows.vectorize import featurize

# How much of a row's text a result line shows.
TEXT_CHARS = 120


@dataclass(frozen=True)
class Similar:
    """The answer: one row per similar row, best first (rank, id, similarity, cluster, name, text)."""

    rows: pd.DataFrame
    text_col: str | None


def similar_rows(spark: SparkSession, output: str, k: int, row_id: str | None = None, text: str | None = None,
                 allow_pickle: bool = False) -> Similar:
    """The ``k`` rows of ``output`` most similar to its row ``row_id``, or to ``text``."""
    check_request(k, row_id, text)
    fs = file_system(spark, output)
    check_searchable(output, fs.exists)
    manifest = json.loads(fs.read_bytes(f"{output}/{MANIFEST_FILE}"))
    embeddings = spark.read.parquet(f"{output}/{EMBEDDINGS_DIR}")
    if row_id is not None:
        key = _typed_id(row_id, embeddings.schema[ID_COL].dataType)
        found = embeddings.filter(F.col(ID_COL) == F.lit(key)).select(EMBEDDING_COL).first()
        if found is None:
            raise InputError(f"id {row_id} is not a labelled row of {output}")
        query, exclude = found[EMBEDDING_COL], F.col(ID_COL) == F.lit(key)
    else:
        query, exclude = _text_embedding(spark, manifest, output, text, allow_pickle), None
    queries = spark.createDataFrame([(0, [float(v) for v in query])], f"{QUERY_COL} int, {QUERY_EMBEDDING_COL} array<float>")
    nearest = most_similar(embeddings, queries, k, ties=[F.col(ID_COL)], exclude=exclude).select(ID_COL, RANK_COL, SIMILARITY_COL)
    labels = spark.read.parquet(f"{output}/{LABELS_DIR}")
    text_col = manifest["config"]["input"]["text_col"] if manifest["config"]["input"]["features_col"] is None else None
    text_col = text_col if text_col in labels.columns else None
    shown = [ID_COL, CLUSTER_COL, *([F.substring(F.col(quoted(text_col)), 1, TEXT_CHARS).alias("text")] if text_col else [])]
    names = spark.read.parquet(f"{output}/{CLUSTERS_DIR}").select(CLUSTER_COL, "name")
    rows = (
        nearest.join(labels.select(*shown), ID_COL).join(names, CLUSTER_COL, "left")
        .orderBy(RANK_COL).toPandas()
    )
    columns = [RANK_COL, ID_COL, SIMILARITY_COL, CLUSTER_COL, "name", *(["text"] if text_col else [])]
    return Similar(rows[columns], text_col)


def check_request(k: int, row_id: str | None, text: str | None) -> None:
    """What can be checked of a request before Spark starts."""
    if (row_id is None) == (text is None):
        raise InputError("give --id or --text, not both")
    if k <= 0:
        raise InputError(f"--k must be at least 1, got {k}")
    if text is not None and not text.strip():
        raise InputError("the text is empty")


def check_searchable(output: str, exists) -> None:
    """``output`` is a run's output with embeddings/ (``exists``: a path test, local or Hadoop's)."""
    if not exists(f"{output}/{MANIFEST_FILE}"):
        raise InputError(f"not an n2d-spark output (no {MANIFEST_FILE}): {output}")
    if not exists(f"{output}/{EMBEDDINGS_DIR}"):
        raise InputError(f"{output} has no {EMBEDDINGS_DIR}/: it was written with similar.k=0, or before this n2d-spark wrote it")


def _typed_id(row_id: str, id_type: T.DataType):
    if isinstance(id_type, (T.LongType, T.IntegerType, T.ShortType)):
        try:
            return int(row_id)
        except ValueError:
            raise InputError(f"id {row_id!r} is not a whole number, as this output's ids are") from None
    return row_id


def embedding_bundle(spark: SparkSession, manifest: dict, output: str, allow_pickle: bool) -> ModelBundle:
    """The bundle that embedded the output's rows: the output's own model/ (a run's, an update's), else the
    one run.json names (an assign's). Its folder may since hold another model (retrained in place): one whose
    id is neither run.json's model_id nor, for an update, its parent's (whose encoder the update keeps) is refused."""
    own = f"{output}/{MODEL_DIR}"
    folder = own if file_system(spark, own).exists(own) else manifest.get("model") or own
    bundle = load_bundle(spark, file_system(spark, folder), folder, allow_pickle=allow_pickle)
    embedded_by = [manifest["model_id"], *([manifest["update"]["parent_model"]] if manifest.get("update") else [])]
    if bundle.model_id not in embedded_by:
        raise InputError(
            f"model bundle {folder} is model {bundle.model_id}, but {output} was embedded by model {manifest['model_id']}: "
            "the folder has been written since; ask with --id, or label the rows again with this model"
        )
    return bundle


def _text_embedding(spark: SparkSession, manifest: dict, output: str, text: str, allow_pickle: bool) -> np.ndarray:
    """``text`` embedded by the output's model: cleaned, counted and encoded as its rows were."""
    bundle = embedding_bundle(spark, manifest, output, allow_pickle)
    if bundle.learned_text is None:
        raise InputError(f"{output} clusters vectors, not text: ask with --id")
    config = bundle.config
    schema = T.StructType([T.StructField(ID_COL, T.LongType()), T.StructField(config.input.text_col, T.StringType())])
    rows = spark.createDataFrame([(0, text)], schema).withColumn(REASON_COL, F.lit(None).cast("string"))
    features = featurize(rows, config, bundle.learned_text)
    row = features.rows.first()
    if row[REASON_COL] is not None:
        raise InputError(f"the text has nothing to compare: {row[REASON_COL].replace('_', ' ')}")
    counts = rows_to_csr([row], features.column)
    if counts.nnz == 0:
        raise InputError("the text has no term of the model's vocabulary")
    return bundle.embedding_model.embed(counts)[0]


def format_similar(answer: Similar) -> str:
    """The answer as aligned text lines, one per row."""
    frame = answer.rows.copy()
    frame[SIMILARITY_COL] = frame[SIMILARITY_COL].map(lambda s: f"{s:.3f}")
    if "text" in frame:
        frame["text"] = frame["text"].fillna("").map(lambda t: " ".join(t.split()))
    # A text, a name or an id is the data's: a control character in it is shown, not acted on.
    for column in (ID_COL, "name", "text"):
        if column in frame:
            frame[column] = frame[column].map(lambda v: printable(v) if isinstance(v, str) else v)
    return frame.to_string(index=False)

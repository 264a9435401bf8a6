"""Vector mode's counterpart of the text stage: a numeric vector column in, checked float arrays out.

Rows whose vector is missing, of another length than most rows', or holds NaN or an
infinity are rejected with a reason, like bad text rows; the rest get a fixed-length
``array<float>`` column the autoencoder and the embedding UDF read.
"""

from __future__ import annotations

from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.core.columns import quoted
from n2d_spark.core.errors import InputError

FEATURES_COL = "_features"

NULL_VECTOR = "null_vector"
WRONG_VECTOR_LENGTH = "wrong_vector_length"
NON_FINITE_VALUES = "non_finite_values"


def check_features_type(dtype: T.DataType, column: str) -> None:
    numeric = (T.FloatType, T.DoubleType, T.IntegerType, T.LongType, T.ShortType, T.ByteType)
    if isinstance(dtype, VectorUDT) or (isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, numeric)):
        return
    raise InputError(
        f"features column {column!r} has type {dtype.simpleString()}, expected an array of numbers or a Spark ML vector"
    )


def as_feature_arrays(rows: DataFrame, column: str) -> DataFrame:
    """``rows`` plus ``_features``: the column as ``array<float>`` (Spark ML vectors made dense, in the JVM)."""
    source = F.col(quoted(column))
    if isinstance(rows.schema[column].dataType, VectorUDT):
        # vector_to_array fails the task on a null vector: a null stays null (null_vector).
        source = F.when(source.isNotNull(), vector_to_array(source, dtype="float32"))
    return rows.withColumn(FEATURES_COL, source.cast(T.ArrayType(T.FloatType())))


def most_common_length(rows: DataFrame) -> int:
    """The length most vectors have (ties: the shorter); the others are rejected."""
    lengths = (
        rows.filter(F.col(FEATURES_COL).isNotNull())
        .groupBy(F.size(FEATURES_COL).alias("length"))
        .count()
        .orderBy(F.desc("count"), "length")
        .first()
    )
    if lengths is None:
        raise InputError("the features column has no values")
    return int(lengths["length"])


def vector_reason(length: int):
    """The reason to reject a row for its vector, or null; ``length`` is the expected length."""
    values = F.col(FEATURES_COL)
    non_finite = F.exists(values, lambda v: F.isnan(v) | (F.abs(v) == float("inf")) | v.isNull())
    return (
        F.when(values.isNull(), F.lit(NULL_VECTOR))
        .when(F.size(values) != length, F.lit(WRONG_VECTOR_LENGTH))
        .when(non_finite, F.lit(NON_FINITE_VALUES))
    )

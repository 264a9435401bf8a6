"""Read stage: a CSV or Parquet file (or folder of them) in, a DataFrame with a stable ``id`` out."""

from __future__ import annotations

import re

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.core.columns import ID_COL, quoted
from n2d_spark.core.config import InputConfig
from n2d_spark.core.errors import InputError
from n2d_spark.core.fs import FileSystem
from n2d_spark.rows.vector_mode import check_features_type

# CSV records that do not parse keep their raw text here (Spark's permissive mode).
CORRUPT_COL = "_corrupt_record"
# Rows of one file get ids file_ordinal << 40 | row_position: a single file's ids are its row numbers.
_ROWS_PER_FILE_BITS = 40
_URI_SCHEME_AND_AUTHORITY = r"^[a-zA-Z][a-zA-Z0-9+.-]*:(//[^/]*)?"
# Working columns of the CSV row numbering, dropped before the rows leave read_rows.
_FILE, _BLOCK, _SEQUENCE = "_n2d_file", "_n2d_block", "_n2d_sequence"


def resolve_format(path: str, configured: str) -> str:
    if configured != "auto":
        return configured
    lowered = path.lower().rstrip("/")
    if lowered.endswith((".parquet", ".pq")):
        return "parquet"
    if re.search(r"\.(csv|tsv)(\.(gz|bz2|zst|lz4|snappy|deflate))?$", lowered):
        return "csv"
    raise InputError(f"cannot tell the format of {path}: set input.format to csv or parquet")


def read_rows(spark: SparkSession, path: str, config: InputConfig) -> DataFrame:
    """The input's columns plus ``id``; the text (or features) column is checked to exist with a usable type."""
    fmt = resolve_format(path, config.format)
    if not FileSystem(spark, path).matches(path):
        raise InputError(f"input not found: {path}")
    try:
        if fmt == "csv":
            raw = _read_csv(spark, path, separator=_separator(path), multiline=config.multiline)
        else:
            raw = spark.read.parquet(path)
    except Exception as error:  # Spark raises AnalysisException subclasses with Java detail attached
        raise InputError(f"cannot read {path} as {fmt}: {str(error).splitlines()[0]}") from None

    columns = [c for c in raw.columns if c != CORRUPT_COL]
    if not columns:
        raise InputError(f"the input has no columns (an empty file?): {path}")
    if config.features_col is not None:
        _require_column(columns, config.features_col, "features")
        check_features_type(raw.schema[config.features_col].dataType, config.features_col)
    else:
        _require_column(columns, config.text_col, "text")
        text_type = raw.schema[config.text_col].dataType
        if not isinstance(text_type, T.StringType):
            raise InputError(f"text column {config.text_col!r} has type {text_type.simpleString()}, expected string")

    if config.user_col is not None:
        _require_column(columns, config.user_col, "user")
    if config.time_col is not None:
        _require_column(columns, config.time_col, "time")
        time_type = raw.schema[config.time_col].dataType
        if not isinstance(time_type, (T.StringType, T.DateType, T.TimestampType, T.TimestampNTZType)):
            raise InputError(
                f"time column {config.time_col!r} (input.time_col) has type {time_type.simpleString()}, "
                "expected a date, a timestamp or a string"
            )
    if config.id_col is not None:
        _require_column(columns, config.id_col, "id")
        if config.id_col == ID_COL:
            return raw
        if ID_COL in columns:
            raise InputError(f"input has a column named {ID_COL!r} that is not input.id_col; rename it or set input.id_col: {ID_COL}")
        return raw.withColumn(ID_COL, F.col(quoted(config.id_col)))
    if ID_COL in columns:
        raise InputError(f"input has a column named {ID_COL!r}; set input.id_col: {ID_COL} to use it as the id")
    return _with_stable_row_id(raw, fmt)


def check_one_record_per_line(rows: DataFrame, config: InputConfig) -> None:
    """With ``input.multiline`` false, a CSV record that does not parse fails the run.

    A field that spans lines breaks into a malformed first line and fragments that may parse as
    rows of their own, which no reject reason could catch; so one malformed record is taken as
    the sign that the input is not one record per line. ``rows`` is read_rows' result, persisted.
    """
    if config.multiline or CORRUPT_COL not in rows.columns:
        return
    malformed, first_id = rows.filter(F.col(CORRUPT_COL).isNotNull()).agg(F.count(F.lit(1)), F.min(ID_COL)).first()
    if malformed:
        raise InputError(
            f"{malformed} CSV record(s) do not parse as one record per line (the first has id {first_id}): "
            "a field that spans lines needs input.multiline: true"
        )


def _require_column(columns: list[str], name: str, role: str) -> None:
    if name not in columns:
        raise InputError(f"{role} column {name!r} not in the input; columns found: {', '.join(columns)}")


def _separator(path: str) -> str:
    """A tab for ``.tsv`` files (compressed too), else a comma."""
    return "\t" if re.search(r"\.tsv(\.[a-z0-9]+)?$", path.lower().rstrip("/")) else ","


def _read_csv(spark: SparkSession, path: str, separator: str = ",", multiline: bool = True) -> DataFrame:
    """All columns as strings, plus ``_corrupt_record``: the raw text of a record that does not parse.

    ``multiline`` lets a quoted field span lines, and makes Spark read each file whole in one
    task; without it an uncompressed (or bzip2) file splits into blocks read in parallel.
    """
    # RFC 4180: quotes inside a field are doubled, and a field may span lines.
    # Spark's default escape is a backslash, which splits such rows.
    options = {"header": True, "multiLine": multiline, "quote": '"', "escape": '"', "sep": separator}
    header = spark.read.csv(path, **options).schema
    if CORRUPT_COL in header.fieldNames():
        raise InputError(f"the input has a column named {CORRUPT_COL!r}, which the job uses for malformed records")
    schema = T.StructType(
        [T.StructField(f.name, T.StringType()) for f in header.fields] + [T.StructField(CORRUPT_COL, T.StringType())]
    )
    return spark.read.csv(path, schema=schema, mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT_COL, **options)


def _with_stable_row_id(raw: DataFrame, fmt: str) -> DataFrame:
    """``raw`` plus an ``id`` that depends only on the file set and each row's position in its file.

    Files are numbered in sorted path order. Parquet gives each row's index in its file. A CSV
    task reads each of its blocks (a whole file, or a split of one) in file order, so a row's
    position is the count of rows in its file's earlier blocks plus its place in its own block,
    found from ``monotonically_increasing_id``: consecutive within a task. The per-block counts
    are a small table (one row per block), joined back by broadcast; neither the rows nor their
    order go through a shuffle.
    """
    files = sorted(re.sub(_URI_SCHEME_AND_AUTHORITY, "", uri) for uri in raw.inputFiles())
    file_path = F.regexp_replace(F.col("_metadata.file_path"), _URI_SCHEME_AND_AUTHORITY, "")

    def file_base(path: Column) -> Column:
        if len(files) == 1:
            return F.lit(0).cast("long")
        ordinals = F.create_map(*[x for i, f in enumerate(files) for x in (F.lit(f), F.lit(i))])
        return F.shiftleft(F.element_at(ordinals, path).cast("long"), _ROWS_PER_FILE_BITS)

    if fmt == "parquet":
        return raw.withColumn(ID_COL, file_base(file_path) + F.col("_metadata.row_index"))

    # Both uses of the scan below compute the same sequence numbers: the same files in the
    # same tasks, read in the same order.
    sequenced = raw.withColumns(
        {_FILE: file_path, _BLOCK: F.col("_metadata.file_block_start"), _SEQUENCE: F.monotonically_increasing_id()}
    )
    blocks = sequenced.groupBy(_FILE, _BLOCK).agg(F.count(F.lit(1)).alias("rows"), F.min(_SEQUENCE).alias("first"))
    earlier_in_file = Window.partitionBy(_FILE).orderBy(_BLOCK).rowsBetween(Window.unboundedPreceding, -1)
    starts = blocks.select(
        _FILE, _BLOCK, "first", F.coalesce(F.sum("rows").over(earlier_in_file), F.lit(0)).alias("rows_before")
    )
    position = F.col("rows_before") + F.col(_SEQUENCE) - F.col("first")
    return (
        sequenced.join(F.broadcast(starts), [_FILE, _BLOCK])
        .withColumn(ID_COL, file_base(F.col(_FILE)) + position)
        .drop(_FILE, _BLOCK, _SEQUENCE, "first", "rows_before")
    )

"""The output as tables in the Spark catalog: ``--table db.name`` writes ``db.name`` (the labels)
and ``db.name_clusters`` (the per-cluster summary), managed Parquet tables.

Local runs use Spark's Hive catalog with an embedded Derby metastore, both under the
working directory (``catalog_session_confs``), so that the tables outlive the session.
Derby admits one process at a time: two local runs in the same directory cannot both
open the metastore. On a cluster the session's own configuration (hive-site.xml, or
``spark.hadoop.hive.metastore.uris``) decides which metastore the tables land in.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Literal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.core.columns import NOVELTY_COL
from n2d_spark.core.config import JobConfig
from n2d_spark.core.errors import N2DError
from n2d_spark.outputs.publish import CLUSTERS_DIR, LABELS_DIR

log = logging.getLogger(__name__)

TableMode = Literal["fail", "overwrite", "append"]
TABLE_MODES: tuple[str, ...] = ("fail", "overwrite", "append")
CLUSTERS_SUFFIX = "_clusters"
WAREHOUSE_DIR = "spark-warehouse"
METASTORE_DIR = "metastore_db"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Columns that one of the job's runs writes and the others do not (update's novelty), by lower-case
# name: appending adds one to a table that lacks it, and gives rows that lack it nulls, so that an
# update's labels go into the table a training run or an assign wrote, and back.
_RUN_SPECIFIC = {NOVELTY_COL.lower(): T.DoubleType()}


class TableError(N2DError):
    """``--table`` names an invalid table, or an existing table that the table mode does not let the job write."""


def check_table_name(table: str) -> tuple[str | None, str]:
    """``name`` or ``database.name``, each a plain identifier; returns (database or None, name)."""
    parts = table.split(".")
    if len(parts) > 2 or not all(_NAME.fullmatch(part) for part in parts):
        raise TableError(
            f"--table {table!r}: expected name or database.name, each of letters, digits and _, not starting with a digit"
        )
    return (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def clusters_table(table: str) -> str:
    """The per-cluster summary's table beside ``table``: ``db.reviews`` -> ``db.reviews_clusters``."""
    check_table_name(table)
    return table + CLUSTERS_SUFFIX


# Tables of this job's own making while it replaces a table in overwrite mode: the new rows, then
# the old table until the new one has its name. Only names with these suffixes are ever dropped.
_NEW_SUFFIX = "__n2d_new"
_OLD_SUFFIX = "__n2d_old"


def check_tables(spark: SparkSession, table: str, mode: str, schemas: tuple[T.StructType, T.StructType] | None = None) -> None:
    """Fail before any work when ``mode`` cannot write the tables: in fail mode, either exists; in append
    mode, an existing one whose columns are not ``schemas``' (labels, clusters), when known."""
    if mode not in TABLE_MODES:
        raise TableError(f"table mode {mode!r}: expected one of {', '.join(TABLE_MODES)}")
    check_table_name(table)
    names = (table, clusters_table(table))
    if mode == "fail":
        for name in names:
            if _exists(spark, name):
                raise TableError(
                    f"table {name} already exists, and the table mode is fail (the default): "
                    f"mode overwrite replaces it, mode append adds these rows to it"
                )
    if mode == "append" and schemas is not None:
        for name, schema in zip(names, schemas):
            if _exists(spark, name):
                _check_same_columns(name, spark.table(name).schema, schema)


def write_tables(labels: DataFrame, clusters: DataFrame, table: str, mode: TableMode) -> tuple[str, str]:
    """Write ``labels`` to ``table`` and ``clusters`` to ``table + '_clusters'``; returns the two names.

    fail: neither table may exist. overwrite: both are replaced. append: the rows are added
    to existing tables (created when absent), whose columns and types must be the new rows'.
    Every check runs before the first write; the database is created when missing.

    What a failure part way leaves (docs/guarantees.md): append writes the clusters first, so the
    labels table never holds a run whose clusters are missing, and a rerun adds no label twice.
    overwrite writes both new tables under names of its own before it touches the old ones, then
    swaps each in by two renames: a failure while writing leaves the old tables as they were.
    """
    spark = labels.sparkSession
    names = (table, clusters_table(table))
    check_tables(spark, table, mode, (labels.schema, clusters.schema))
    database, _ = check_table_name(table)
    if database is not None:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    if mode == "overwrite":
        _replace_tables(spark, {name: frame for name, frame in zip(names, (labels, clusters))})
        return names
    spark_mode = "append" if mode == "append" else "errorifexists"
    for name, frame in reversed(list(zip(names, (labels, clusters)))):
        if mode == "append" and _exists(spark, name):
            frame = _with_run_specific_columns(spark, name, frame)
        frame.write.format("parquet").mode(spark_mode).saveAsTable(name)
    return names


def _with_run_specific_columns(spark: SparkSession, table: str, frame: DataFrame) -> DataFrame:
    """``frame`` with nulls for the run-specific columns ``table`` has and it lacks; ``table`` given
    (by ALTER TABLE ADD COLUMNS, null in its rows) those ``frame`` has and it lacks."""
    have = {f.name.lower() for f in spark.table(table).schema.fields}
    want = {f.name.lower(): f.name for f in frame.schema.fields}
    for name, data_type in _RUN_SPECIFIC.items():
        if name in want and name not in have:
            spark.sql(f"ALTER TABLE {table} ADD COLUMNS (`{want[name]}` {data_type.simpleString()})")
        elif name in have and name not in want:
            frame = frame.withColumn(name, F.lit(None).cast(data_type))
    return frame


def _replace_tables(spark: SparkSession, frames: dict[str, DataFrame]) -> None:
    """Each table replaced by its frame: all the new rows written first, then each swapped in by renames."""
    for name, frame in frames.items():
        for leftover in (name + _NEW_SUFFIX, name + _OLD_SUFFIX):
            # A run that failed before its swap left these; the suffixes are ours alone.
            spark.sql(f"DROP TABLE IF EXISTS {leftover}")
        frame.write.format("parquet").mode("errorifexists").saveAsTable(name + _NEW_SUFFIX)
    for name in frames:
        if _exists(spark, name):
            spark.sql(f"ALTER TABLE {name} RENAME TO {name + _OLD_SUFFIX}")
        try:
            spark.sql(f"ALTER TABLE {name + _NEW_SUFFIX} RENAME TO {name}")
        except Exception:
            if _exists(spark, name + _OLD_SUFFIX):
                spark.sql(f"ALTER TABLE {name + _OLD_SUFFIX} RENAME TO {name}")
            raise
        spark.sql(f"DROP TABLE IF EXISTS {name + _OLD_SUFFIX}")


def check_table_first(spark: SparkSession, config: JobConfig, schemas: tuple[T.StructType, T.StructType] | None = None) -> None:
    """Before any work: the tables ``output.table`` names can be written in its mode (and, once the
    input's columns are known, take its ``schemas``: labels, clusters)."""
    if config.output.table is not None:
        check_tables(spark, config.output.table, config.output.table_mode, schemas)


def publish_tables(spark: SparkSession, config: JobConfig, output_path: str) -> list[str] | None:
    """The published labels/ and clusters/ as catalog tables (``output.table``), once the output is complete; their names."""
    if config.output.table is None:
        return None
    labels = spark.read.parquet(f"{output_path}/{LABELS_DIR}")
    clusters = spark.read.parquet(f"{output_path}/{CLUSTERS_DIR}")
    names = write_tables(labels, clusters, config.output.table, config.output.table_mode)
    log.info("tables written: %s (mode %s)", ", ".join(names), config.output.table_mode)
    return list(names)


def table_location(spark: SparkSession, table: str) -> str:
    """Where a table's files are (a URI such as file:/.../spark-warehouse/db.db/name): DuckDB and others read them there."""
    check_table_name(table)
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {table}").collect()
    for row in rows:
        if row["col_name"] == "Location":
            return row["data_type"]
    raise TableError(f"table {table} has no location in the catalog")


def catalog_session_confs(workdir: str | os.PathLike) -> dict[str, str]:
    """Session settings for a local run's persistent catalog: Hive with an embedded Derby metastore.

    The warehouse (the tables' files) is ``workdir/spark-warehouse`` and the metastore
    ``workdir/metastore_db``; Derby writes its log, derby.log, to the process's working
    directory. These are static settings: they apply only to a session not yet started.
    Without Spark's Hive jars (a Spark built without Hive) the catalog is the in-memory one,
    whose tables last as long as the session.
    """
    root = Path(workdir).resolve()
    if not hive_available():
        log.warning("Spark's Hive classes are not installed: catalog tables last only as long as the session")
        return {"spark.sql.catalogImplementation": "in-memory", "spark.sql.warehouse.dir": str(root / WAREHOUSE_DIR)}
    return {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(root / WAREHOUSE_DIR),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={root / METASTORE_DIR};create=true",
    }


def hive_available() -> bool:
    """Whether the Spark that a new local session would start has its Hive module (pip's pyspark does)."""
    spark_home = os.environ.get("SPARK_HOME")
    if spark_home:
        jars = Path(spark_home) / "jars"
    else:
        import pyspark

        jars = Path(pyspark.__file__).parent / "jars"
    return any(jars.glob("spark-hive_*.jar"))


def _exists(spark: SparkSession, table: str) -> bool:
    database, _ = check_table_name(table)
    try:
        if database is not None and not spark.catalog.databaseExists(database):
            return False
        return spark.catalog.tableExists(table)
    except Exception as error:  # noqa: BLE001 - only the metastore's failure to open is translated
        if "SessionHiveMetaStoreClient" not in str(error):
            raise
        url = spark.sparkContext.getConf().get("spark.hadoop.javax.jdo.option.ConnectionURL", "")
        if url.startswith("jdbc:derby:"):
            path = url.split("databaseName=", 1)[-1].split(";", 1)[0]
            raise TableError(
                f"cannot open the local metastore {path}: most likely another Spark process is using it "
                "(its embedded Derby database admits one process at a time); wait for that run to end"
            ) from None
        raise TableError(f"cannot open the Hive metastore: {' '.join(str(error).split())[:300]}") from None


def _check_same_columns(table: str, existing: T.StructType, new: T.StructType) -> None:
    """Appending needs the table's columns (any order) with the same types, run-specific ones aside; the
    message names the first difference."""
    have = {f.name.lower(): f.dataType for f in existing.fields}
    want = {f.name.lower(): f.dataType for f in new.fields}
    hint = "mode overwrite replaces the table"
    only_table = [n for n in have if n not in want and n not in _RUN_SPECIFIC]
    only_new = [n for n in want if n not in have and n not in _RUN_SPECIFIC]
    if only_table or only_new:
        raise TableError(
            f"cannot append to table {table}: columns only in the table: {', '.join(only_table) or 'none'}; "
            f"only in the new rows: {', '.join(only_new) or 'none'} ({hint})"
        )
    for name, data_type in want.items():
        if name in have and not _same_type(have[name], data_type):
            raise TableError(
                f"cannot append to table {table}: column {name} is {have[name].simpleString()} in the table "
                f"and {data_type.simpleString()} in the new rows ({hint})"
            )


def _same_type(a: T.DataType, b: T.DataType) -> bool:
    """Equal types, nullability aside (a table read back reports every column nullable)."""
    return a.simpleString() == b.simpleString()

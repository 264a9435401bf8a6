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
from pyspark.sql import types as T

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


def check_tables(spark: SparkSession, table: str, mode: str) -> None:
    """Fail before any work when ``mode`` is fail and either table exists; call again by ``write_tables``."""
    if mode not in TABLE_MODES:
        raise TableError(f"table mode {mode!r}: expected one of {', '.join(TABLE_MODES)}")
    check_table_name(table)
    if mode != "fail":
        return
    for name in (table, clusters_table(table)):
        if _exists(spark, name):
            raise TableError(
                f"table {name} already exists, and the table mode is fail (the default): "
                f"mode overwrite replaces it, mode append adds these rows to it"
            )


def write_tables(labels: DataFrame, clusters: DataFrame, table: str, mode: TableMode) -> tuple[str, str]:
    """Write ``labels`` to ``table`` and ``clusters`` to ``table + '_clusters'``; returns the two names.

    fail: neither table may exist. overwrite: both are replaced. append: the rows are added
    to existing tables (created when absent), whose columns and types must be the new rows'.
    Every check runs before the first write; the database is created when missing.
    """
    spark = labels.sparkSession
    check_tables(spark, table, mode)
    names = (table, clusters_table(table))
    if mode == "append":
        for name, frame in zip(names, (labels, clusters)):
            if _exists(spark, name):
                _check_same_columns(name, spark.table(name).schema, frame.schema)
    database, _ = check_table_name(table)
    if database is not None:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    spark_mode = {"fail": "errorifexists", "overwrite": "overwrite", "append": "append"}[mode]
    for name, frame in zip(names, (labels, clusters)):
        frame.write.format("parquet").mode(spark_mode).saveAsTable(name)
    return names


def check_table_first(spark: SparkSession, config: JobConfig) -> None:
    """Before any work: the tables ``output.table`` names can be written in its mode."""
    if config.output.table is not None:
        check_tables(spark, config.output.table, config.output.table_mode)


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
    """Appending needs the table's columns (any order) with the same types; the message names the first difference."""
    have = {f.name.lower(): f.dataType for f in existing.fields}
    want = {f.name.lower(): f.dataType for f in new.fields}
    hint = "mode overwrite replaces the table"
    only_table = [n for n in have if n not in want]
    only_new = [n for n in want if n not in have]
    if only_table or only_new:
        raise TableError(
            f"cannot append to table {table}: columns only in the table: {', '.join(only_table) or 'none'}; "
            f"only in the new rows: {', '.join(only_new) or 'none'} ({hint})"
        )
    for name, data_type in want.items():
        if not _same_type(have[name], data_type):
            raise TableError(
                f"cannot append to table {table}: column {name} is {have[name].simpleString()} in the table "
                f"and {data_type.simpleString()} in the new rows ({hint})"
            )


def _same_type(a: T.DataType, b: T.DataType) -> bool:
    """Equal types, nullability aside (a table read back reports every column nullable)."""
    return a.simpleString() == b.simpleString()

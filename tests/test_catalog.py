"""The output as catalog tables: names, the fail/overwrite/append modes, plain Parquet underneath,
and (in two fresh processes) tables that outlive the session in the local Hive metastore."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from urllib.parse import urlparse

import duckdb
import pytest
from pyspark.sql import functions as F

from n2d_spark.outputs.catalog import (
    TableError,
    catalog_session_confs,
    check_table_name,
    clusters_table,
    hive_available,
    table_location,
    write_tables,
)
from n2d_spark.outputs.queries import duckdb_parquet, render

from conftest import REPO

LABELS_DDL = "id bigint, cluster int, umap array<float>, run_id string, model_id string, sentiment string"
CLUSTERS_DDL = "cluster int, size bigint, top_terms array<string>, coherence double, example_ids array<bigint>"


def _frames(spark, run_id="r1", n=12):
    labels = spark.createDataFrame(
        [(i, i % 3, [float(i), 1.0], run_id, "m1", "positive" if i % 2 else "negative") for i in range(n)], LABELS_DDL
    )
    clusters = spark.createDataFrame(
        [(c, n // 3, [f"term{c}"], 0.5, [c, c + 3]) for c in range(3)], CLUSTERS_DDL
    )
    return labels, clusters


@pytest.fixture
def database(spark, tmp_path):
    """A database of its own (the suite's session and catalog are shared) whose files stay under tmp_path."""
    name = f"catalog_test_{uuid.uuid4().hex[:8]}"
    spark.sql(f"CREATE DATABASE {name} LOCATION '{tmp_path / 'warehouse'}'")
    yield name
    spark.sql(f"DROP DATABASE {name} CASCADE")


@pytest.mark.parametrize("table", ["reviews", "db.reviews", "_x.Reviews_2024"])
def test_valid_table_names(table):
    check_table_name(table)
    assert clusters_table(table) == table + "_clusters"


@pytest.mark.parametrize("table", ["", "a.b.c", "db.", "2024.reviews", "db.re-views", "db.`x`", "reviews;drop"])
def test_invalid_table_names_are_one_line(table):
    with pytest.raises(TableError, match=r"^--table .*: expected name or database\.name, each of letters") as raised:
        check_table_name(table)
    assert "\n" not in str(raised.value)


def test_fail_mode_writes_both_tables_then_refuses(spark, database):
    labels, clusters = _frames(spark)
    table = f"{database}.reviews"
    assert write_tables(labels, clusters, table, "fail") == (table, f"{table}_clusters")
    assert sorted(spark.table(table).collect()) == sorted(labels.collect())
    assert sorted(spark.table(f"{table}_clusters").collect()) == sorted(clusters.collect())
    assert spark.sql(f"DESCRIBE TABLE EXTENDED {table}").filter("col_name = 'Provider'").first()["data_type"] == "parquet"

    other_labels, other_clusters = _frames(spark, run_id="r2", n=3)
    with pytest.raises(TableError) as raised:
        write_tables(other_labels, other_clusters, table, "fail")
    assert str(raised.value) == (
        f"table {table} already exists, and the table mode is fail (the default): "
        "mode overwrite replaces it, mode append adds these rows to it"
    )
    assert spark.table(table).count() == 12


def test_fail_mode_checks_both_tables_before_writing(spark, database):
    labels, clusters = _frames(spark)
    table = f"{database}.reviews"
    clusters.write.format("parquet").saveAsTable(f"{table}_clusters")
    with pytest.raises(TableError, match=rf"^table {table}_clusters already exists"):
        write_tables(labels, clusters, table, "fail")
    assert not spark.catalog.tableExists(f"{database}.reviews")


def test_overwrite_replaces_and_append_adds(spark, database):
    table = f"{database}.reviews"
    write_tables(*_frames(spark, run_id="day1"), table, "fail")
    write_tables(*_frames(spark, run_id="day2", n=6), table, "overwrite")
    assert {r["run_id"] for r in spark.table(table).collect()} == {"day2"} and spark.table(table).count() == 6
    write_tables(*_frames(spark, run_id="day3", n=9), table, "append")
    runs = {r["run_id"]: r["count"] for r in spark.table(table).groupBy("run_id").count().collect()}
    assert runs == {"day2": 6, "day3": 9}
    assert spark.table(f"{table}_clusters").count() == 6


def _failing_write(monkeypatch, table: str):
    """saveAsTable fails for ``table``, as a lost executor or a full disk would, and works for any other."""
    from pyspark.sql.readwriter import DataFrameWriter

    save = DataFrameWriter.saveAsTable

    def failing(writer, name, *args, **kwargs):
        if name == table:
            raise RuntimeError(f"writing {name} failed")
        return save(writer, name, *args, **kwargs)

    monkeypatch.setattr(DataFrameWriter, "saveAsTable", failing)


def test_an_overwrite_that_fails_while_writing_leaves_the_old_tables(spark, database, monkeypatch):
    table = f"{database}.reviews"
    write_tables(*_frames(spark, run_id="day1"), table, "fail")
    with monkeypatch.context() as patch:
        _failing_write(patch, f"{table}_clusters__n2d_new")
        with pytest.raises(RuntimeError, match="failed"):
            write_tables(*_frames(spark, run_id="day2", n=6), table, "overwrite")
    assert {r["run_id"] for r in spark.table(table).collect()} == {"day1"} and spark.table(f"{table}_clusters").count() == 3
    # The next overwrite drops what the failed one left (names with the job's own suffix) and swaps in its rows.
    write_tables(*_frames(spark, run_id="day3", n=6), table, "overwrite")
    assert {r["run_id"] for r in spark.table(table).collect()} == {"day3"} and spark.table(table).count() == 6
    assert sorted(t.name for t in spark.catalog.listTables(database)) == ["reviews", "reviews_clusters"]


def test_an_append_that_fails_between_the_tables_adds_no_label_twice(spark, database, monkeypatch):
    """The clusters go first: a failure before the labels leaves the labels table without the run."""
    table = f"{database}.reviews"
    write_tables(*_frames(spark, run_id="day1"), table, "fail")
    with monkeypatch.context() as patch:
        _failing_write(patch, table)
        with pytest.raises(RuntimeError, match="failed"):
            write_tables(*_frames(spark, run_id="day2"), table, "append")
    assert {r["run_id"] for r in spark.table(table).collect()} == {"day1"}
    write_tables(*_frames(spark, run_id="day2-rerun"), table, "append")
    runs = {r["run_id"]: r["count"] for r in spark.table(table).groupBy("run_id").count().collect()}
    assert runs == {"day1": 12, "day2-rerun": 12}


def test_append_needs_the_same_columns_and_writes_nothing_otherwise(spark, database):
    table = f"{database}.reviews"
    write_tables(*_frames(spark), table, "fail")
    labels, clusters = _frames(spark, run_id="r2")
    with pytest.raises(TableError) as raised:
        write_tables(labels.drop("sentiment"), clusters, table, "append")
    assert str(raised.value) == (
        f"cannot append to table {table}: columns only in the table: sentiment; only in the new rows: none "
        "(mode overwrite replaces the table)"
    )
    with pytest.raises(TableError, match=r"column size is bigint in the table and int in the new rows"):
        write_tables(labels, clusters.withColumn("size", clusters["size"].cast("int")), table, "append")
    assert spark.table(table).count() == 12 and spark.table(f"{table}_clusters").count() == 3
    # Column order does not matter: saveAsTable appends by name.
    write_tables(labels.select(*reversed(labels.columns)), clusters, table, "append")
    assert spark.table(table).filter("run_id = 'r2' AND sentiment IS NOT NULL").count() == 12


def test_an_updates_labels_append_to_the_table_a_run_wrote_and_back(spark, database):
    """update's labels/ has a novelty column that a training run's and assign's lack (docs/reuse.md's
    ``update ... --table db.reviews --table-mode append``): the table gains it, null in the other runs' rows."""
    table = f"{database}.reviews"
    write_tables(*_frames(spark, run_id="run"), table, "fail")
    labels, clusters = _frames(spark, run_id="update", n=6)
    write_tables(labels.withColumn("novelty", F.lit(1.5)), clusters, table, "append")
    write_tables(*_frames(spark, run_id="assign", n=3), table, "append")
    counted = spark.table(table).groupBy("run_id").agg(F.count("*").alias("rows"), F.count("novelty").alias("novelty")).collect()
    assert {r["run_id"]: (r["rows"], r["novelty"]) for r in counted} == {"run": (12, 0), "update": (6, 6), "assign": (3, 0)}
    assert spark.table(table).schema["novelty"].dataType.simpleString() == "double"
    with pytest.raises(TableError, match="column novelty is double in the table and string in the new rows"):
        write_tables(labels.withColumn("novelty", F.lit("high")), clusters, table, "append")


def test_unknown_mode(spark, database):
    with pytest.raises(TableError, match=r"^table mode 'replace': expected one of fail, overwrite, append$"):
        write_tables(*_frames(spark), f"{database}.reviews", "replace")


def test_tables_are_plain_parquet_for_spark_sql_and_duckdb(spark, database):
    table = f"{database}.reviews"
    write_tables(*_frames(spark), table, "fail")
    query = render("cluster_sizes", labels=table)
    from_spark = [tuple(r) for r in spark.sql(query).collect()]
    folder = urlparse(table_location(spark, table)).path
    from_duckdb = duckdb.sql(render("cluster_sizes", labels=duckdb_parquet(folder))).fetchall()
    assert from_spark == from_duckdb == [(0, 4), (1, 4), (2, 4)]


def test_local_catalog_confs(tmp_path):
    confs = catalog_session_confs(tmp_path)
    assert hive_available()  # pip's pyspark 4.3 ships spark-hive and the Derby jars
    assert confs == {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(tmp_path.resolve() / "spark-warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={tmp_path.resolve() / 'metastore_db'};create=true",
    }


_SESSION = textwrap.dedent(
    """
    import json, sys
    from pyspark.sql import SparkSession
    from n2d_spark.outputs.catalog import TableError, catalog_session_confs, table_location, write_tables
    from n2d_spark.outputs.queries import render

    builder = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
    for key, value in catalog_session_confs(sys.argv[1]).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    labels = spark.createDataFrame(
        [(i, i % 3, [float(i)], sys.argv[2], "m1", "x") for i in range(6)], "{labels}"
    )
    clusters = spark.createDataFrame([(c, 2, ["t"], 0.5, [c]) for c in range(3)], "{clusters}")
    result = {{"catalog": spark.conf.get("spark.sql.catalogImplementation"), "errors": {{}}}}
    for mode in sys.argv[3].split(","):
        try:
            write_tables(labels, clusters, "reviews_db.reviews", mode)
        except TableError as error:
            result["errors"][mode] = str(error)
    result["runs"] = sorted(r["run_id"] for r in spark.sql("SELECT DISTINCT run_id FROM reviews_db.reviews").collect())
    result["sizes"] = [list(r) for r in spark.sql(render("cluster_sizes", labels="reviews_db.reviews")).collect()]
    result["location"] = table_location(spark, "reviews_db.reviews_clusters")
    print("RESULT " + json.dumps(result))
    """
).format(labels=LABELS_DDL, clusters=CLUSTERS_DDL)


def _session(workdir, cwd, run_id, modes) -> dict:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    done = subprocess.run(
        [sys.executable, "-c", _SESSION, str(workdir), run_id, modes],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[0][len("RESULT "):])


@pytest.mark.slow
def test_tables_outlive_the_session_in_the_local_metastore(tmp_path):
    """Two processes, one after the other: the second finds the first's tables, refuses fail, appends."""
    workdir, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    workdir.mkdir()
    elsewhere.mkdir()
    first = _session(workdir, elsewhere, "day1", "fail")
    assert first["catalog"] == "hive" and first["errors"] == {} and first["runs"] == ["day1"]
    second = _session(workdir, elsewhere, "day2", "fail,append")
    assert list(second["errors"]) == ["fail"]
    assert second["errors"]["fail"].startswith("table reviews_db.reviews already exists")
    assert second["runs"] == ["day1", "day2"] and second["sizes"] == [[0, 4], [1, 4], [2, 4]]
    # Everything under the working directory given (Derby's own log aside), nothing where the process ran.
    assert sorted(p.name for p in workdir.iterdir()) == ["metastore_db", "spark-warehouse"]
    clusters_folder = urlparse(second["location"]).path
    assert clusters_folder == str(workdir / "spark-warehouse" / "reviews_db.db" / "reviews_clusters")
    assert duckdb.sql(f"SELECT count(*) FROM {duckdb_parquet(clusters_folder)}").fetchall() == [(6,)]


def test_make_clean_removes_the_local_metastore(tmp_path):
    # Tables written before `make clean` must not "already exist" after it: the Derby metastore goes too.
    for name in ("metastore_db", "spark-warehouse", "out"):
        (tmp_path / name).mkdir()
    (tmp_path / "derby.log").write_text("")
    subprocess.run(["make", "-f", str(REPO / "Makefile"), "clean"], cwd=tmp_path, check=True, capture_output=True)
    assert list(tmp_path.iterdir()) == []

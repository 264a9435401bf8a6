import pandas as pd
import pytest
from pyspark.sql import functions as F

from n2d_spark.core.columns import ID_COL
from n2d_spark.core.config import InputConfig
from n2d_spark.core.errors import InputError
from n2d_spark.rows.job_stages import _partitions_wanted, _spread, csv_blocks_for_every_partition
from n2d_spark.rows.read import CORRUPT_COL, check_one_record_per_line, read_rows, resolve_format

from conftest import IMDB_CSV, requires_imdb


def _write_csv(path, reviews, **extra):
    pd.DataFrame({"review": reviews, **extra}).to_csv(path, index=False)
    return str(path)


def test_rfc4180_quotes_commas_and_newlines(spark, tmp_path):
    reviews = ['He said ""no"", twice', 'A "quoted" word, and a comma', "two\nlines", "plain"]
    path = _write_csv(tmp_path / "r.csv", reviews)
    frame = read_rows(spark, path, InputConfig()).orderBy(ID_COL).toPandas()
    assert frame["review"].tolist() == reviews
    assert frame[ID_COL].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("name", ["r.tsv", "r.tsv.gz"])
def test_tsv_is_tab_separated(spark, tmp_path, name):
    # Commas, quotes and a line break inside the text: only the tabs separate the columns.
    reviews = ['A "quoted" word, and a comma', "plain, with, commas", "two\nlines"]
    path = tmp_path / name
    pd.DataFrame({"review": reviews, "stars": ["1", "2", "3"]}).to_csv(path, index=False, sep="\t")
    frame = read_rows(spark, str(path), InputConfig()).orderBy(ID_COL).toPandas()
    assert frame["review"].tolist() == reviews
    assert frame["stars"].tolist() == ["1", "2", "3"]


def test_ids_are_stable_across_reads_and_partitioning(spark, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    _write_csv(folder / "b.csv", ["b0", "b1", "b2"])
    _write_csv(folder / "a.csv", ["a0", "a1"])
    config = InputConfig(format="csv")
    first = dict(read_rows(spark, str(folder), config).select("review", ID_COL).collect())
    spark.conf.set("spark.sql.files.maxPartitionBytes", "1")
    try:
        second = dict(read_rows(spark, str(folder), config).repartition(3).select("review", ID_COL).collect())
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert first == second
    # Files in sorted path order; rows by position within their file.
    assert first == {"a0": 0, "a1": 1, "b0": 1 << 40, "b1": (1 << 40) + 1, "b2": (1 << 40) + 2}


def _ids_read_in(spark, path: str, config: InputConfig, max_partition_bytes: str | None) -> tuple[int, dict[str, int]]:
    """How many tasks read ``path``, and each review's id."""
    if max_partition_bytes is not None:
        spark.conf.set("spark.sql.files.maxPartitionBytes", max_partition_bytes)
    try:
        rows = read_rows(spark, path, config)
        tasks = rows.select("review").rdd.getNumPartitions()
        return tasks, dict(rows.select("review", ID_COL).collect())
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")


def test_a_one_record_per_line_csv_splits_and_keeps_its_ids(spark, tmp_path):
    """input.multiline false: a file read in 1 and in 4 blocks gives every row the same id, its row number."""
    reviews = [f"review number {i} about something" for i in range(400)]
    path = _write_csv(tmp_path / "lines.csv", reviews)
    size = (tmp_path / "lines.csv").stat().st_size
    single_line = InputConfig(multiline=False)
    whole_tasks, whole = _ids_read_in(spark, path, single_line, None)
    split_tasks, split = _ids_read_in(spark, path, single_line, str(size // 4 + 1))
    assert (whole_tasks, split_tasks) == (1, 4)
    assert split == whole == {review: i for i, review in enumerate(reviews)}
    # The multi-line reader, one task for the file, numbers the rows alike.
    assert _ids_read_in(spark, path, InputConfig(), str(size // 4 + 1)) == (1, whole)


def test_the_read_stage_splits_a_one_record_per_line_csv_as_finely_as_the_spread_wants(spark, tmp_path):
    """Enough blocks that _spread needs no shuffle: each partition holds one contiguous run of rows.

    A hash repartition would scatter the ids over the partitions instead. The ask is the read
    stage's only: unset after it, and never over the user's own setting.
    """
    reviews = [f"review number {i} about something" for i in range(2000)]
    path = _write_csv(tmp_path / "lines.csv", reviews)
    config, key = InputConfig(multiline=False), "spark.sql.files.minPartitionNum"
    # Spark never cuts blocks smaller than the cost of opening a file (4 MiB): this file is 70 KB.
    spark.conf.set("spark.sql.files.openCostInBytes", "1024")
    wanted = _partitions_wanted(spark)
    try:
        with csv_blocks_for_every_partition(spark, path, config, wanted):
            spread = _spread(read_rows(spark, path, config), wanted)
            parts = spread.groupBy(F.spark_partition_id().alias("part")).agg(
                F.count(F.lit(1)).alias("rows"), F.min(ID_COL).alias("first"), F.max(ID_COL).alias("last")
            ).toPandas()
            partitions = spread.rdd.getNumPartitions()
        assert spark.conf.get(key, None) is None
        spark.conf.set(key, "3")
        with csv_blocks_for_every_partition(spark, path, config, wanted):
            assert spark.conf.get(key) == "3"
            assert read_rows(spark, path, config).rdd.getNumPartitions() == 3
    finally:
        spark.conf.unset("spark.sql.files.openCostInBytes")
        spark.conf.unset(key)
    assert partitions == _partitions_wanted(spark) == len(parts) > 1
    assert (parts["last"] - parts["first"] + 1 == parts["rows"]).all() and parts["rows"].sum() == 2000


def test_a_line_break_inside_a_field_fails_a_one_record_per_line_read(spark, tmp_path):
    """Split at the break, the field's tail would parse as a row of its own: one malformed record is one clear error."""
    path = tmp_path / "r.csv"
    path.write_text('review,stars\none line,1\n"two\nlines",2\nlast,3\n')
    rows = read_rows(spark, str(path), InputConfig(multiline=False)).cache()  # as the read stage persists it
    assert rows.orderBy(ID_COL).toPandas()["review"].tolist() == ["one line", "two", 'lines"', "last"]
    with pytest.raises(InputError, match=r"^1 CSV record\(s\) do not parse as one record per line \(the first has id 1\): "
                       r"a field that spans lines needs input\.multiline: true$"):
        check_one_record_per_line(rows, InputConfig(multiline=False))
    together = read_rows(spark, str(path), InputConfig()).cache()
    check_one_record_per_line(together, InputConfig())
    frame = together.orderBy(ID_COL).toPandas()
    assert frame["review"].tolist() == ["one line", "two\nlines", "last"] and frame[CORRUPT_COL].isna().all()
    rows.unpersist()
    together.unpersist()


def test_identical_texts_stay_separate_rows(spark, tmp_path):
    path = _write_csv(tmp_path / "dup.csv", ["same", "same", "other"])
    frame = read_rows(spark, path, InputConfig()).toPandas()
    assert len(frame) == 3
    assert frame[ID_COL].nunique() == 3


def test_parquet_ids_are_row_positions(spark, tmp_path):
    path = tmp_path / "r.parquet"
    pd.DataFrame({"review": ["x", "y", "z"]}).to_parquet(path)
    frame = read_rows(spark, str(path), InputConfig()).orderBy(ID_COL).toPandas()
    assert frame[ID_COL].tolist() == [0, 1, 2]
    assert frame["review"].tolist() == ["x", "y", "z"]


def test_user_id_column(spark, tmp_path):
    path = _write_csv(tmp_path / "ids.csv", ["x", "y"], doc=["d1", "d2"])
    frame = read_rows(spark, path, InputConfig(id_col="doc")).toPandas()
    assert frame[ID_COL].tolist() == ["d1", "d2"]


def test_missing_text_column_lists_columns(spark, tmp_path):
    path = _write_csv(tmp_path / "r.csv", ["x"], sentiment=["positive"])
    with pytest.raises(InputError, match="text column 'body' not in the input; columns found: review, sentiment"):
        read_rows(spark, path, InputConfig(text_col="body"))


def test_text_column_of_wrong_type(spark, tmp_path):
    path = tmp_path / "n.parquet"
    pd.DataFrame({"review": [1, 2]}).to_parquet(path)
    with pytest.raises(InputError, match="has type bigint, expected string"):
        read_rows(spark, str(path), InputConfig())


def test_missing_input(spark, tmp_path):
    with pytest.raises(InputError, match="input not found"):
        read_rows(spark, str(tmp_path / "absent.csv"), InputConfig())


@pytest.mark.parametrize(
    "path, expected",
    [("a.csv", "csv"), ("A.CSV.GZ", "csv"), ("x/part.parquet", "parquet"), ("x.tsv.bz2", "csv")],
)
def test_format_from_extension(path, expected):
    assert resolve_format(path, "auto") == expected


def test_unknown_extension_asks_for_format():
    with pytest.raises(InputError, match="set input.format"):
        resolve_format("reviews.json", "auto")


@requires_imdb
def test_imdb_reads_as_exactly_50000_rows(spark):
    frame = read_rows(spark, str(IMDB_CSV), InputConfig())
    counts = frame.groupBy("sentiment").count().collect()
    assert {row["sentiment"]: row["count"] for row in counts} == {"positive": 25000, "negative": 25000}
    assert frame.select(ID_COL).distinct().count() == 50000


def test_time_column_must_exist_and_hold_times_or_strings(spark, tmp_path):
    path = _write_csv(tmp_path / "r.csv", ["x"], when=["2025-01-01"])
    with pytest.raises(InputError, match="time column 'date' not in the input; columns found: review, when"):
        read_rows(spark, path, InputConfig(time_col="date"))
    assert read_rows(spark, path, InputConfig(time_col="when")).count() == 1
    numbers = tmp_path / "n.parquet"
    pd.DataFrame({"review": ["x"], "when": [20250101]}).to_parquet(numbers)
    with pytest.raises(InputError, match=r"time column 'when' \(input.time_col\) has type bigint, expected a date"):
        read_rows(spark, str(numbers), InputConfig(time_col="when"))

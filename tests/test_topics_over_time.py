"""Topics over time on Spark: periods, shares, per-period top terms, unreadable times, the auto bucket."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import types as T

from n2d_spark.outputs.topics_over_time import MAX_AUTO_PERIODS, TimeSpan, choose_bucket, time_span, topics_over_time
from n2d_spark.rows.text import COUNTS_COL

VOCABULARY = ["ghost", "blood", "alien", "planet", "laser"]
SCHEMA = T.StructType(
    [
        T.StructField("cluster", T.IntegerType()),
        T.StructField("when", T.StringType()),
        T.StructField(COUNTS_COL, VectorUDT()),
    ]
)


def _row(cluster: int, when: str | None, counts: dict[int, float]):
    return (cluster, when, Vectors.sparse(len(VOCABULARY), counts))


@pytest.fixture(scope="module")
def labelled(spark):
    rows = (
        # January: cluster 0 (horror) is 3 of 4 rows, its words are ghosts; cluster 1 talks of aliens.
        [_row(0, "2025-01-03", {0: 2}), _row(0, "2025-01-20", {0: 1, 1: 1}), _row(0, "2025-01-31T23:00:00", {0: 3})]
        + [_row(1, "2025-01-15", {2: 2, 3: 1})]
        # February: cluster 1 is 3 of 4 rows and its words have moved to lasers; cluster 0 to blood.
        + [_row(1, "2025-02-01", {4: 2}), _row(1, "2025-02-10", {4: 1, 3: 1}), _row(1, "2025-02-28", {4: 3})]
        + [_row(0, "2025-02-14", {1: 4})]
        # Unreadable or missing times: clustered, but in no period.
        + [_row(0, "not a date", {0: 1}), _row(1, None, {2: 1})]
    )
    return spark.createDataFrame(rows, SCHEMA)


def test_shares_and_terms_per_period(labelled):
    table = topics_over_time(labelled, "when", "month", VOCABULARY, n_terms=2).toPandas()
    table = table.sort_values(["period", "cluster"]).reset_index(drop=True)
    assert table["period"].tolist() == [dt.date(2025, 1, 1)] * 2 + [dt.date(2025, 2, 1)] * 2
    assert table["cluster"].tolist() == [0, 1, 0, 1]
    assert table["rows"].tolist() == [3, 1, 1, 3]
    assert table["share"].tolist() == pytest.approx([0.75, 0.25, 0.25, 0.75])
    # Each period's terms come from that period's rows only: cluster 1's aliens became lasers.
    assert table["top_terms"].map(set).tolist() == [{"ghost", "blood"}, {"alien", "planet"}, {"blood"}, {"laser", "planet"}]


def test_unreadable_times_are_counted_not_fatal(labelled):
    span = time_span(labelled, "when")
    assert span.rows_without_time == 2
    assert span.first == dt.datetime(2025, 1, 3) and span.last == dt.datetime(2025, 2, 28)


def test_vector_mode_has_periods_without_terms(labelled):
    table = topics_over_time(labelled, "when", "year", None, n_terms=2).toPandas()
    assert set(table["period"]) == {dt.date(2025, 1, 1)}
    assert sorted(table["rows"].tolist()) == [4, 4]
    assert all(len(terms) == 0 for terms in table["top_terms"])


@pytest.mark.parametrize(
    ("days", "expected"), [(30, "day"), (300, "week"), (2 * 365, "month"), (40 * 365, "year"), (400 * 365, "year")]
)
def test_auto_bucket_keeps_the_chart_readable(days, expected):
    first = dt.datetime(2000, 1, 1)
    span = TimeSpan(first=first, last=first + dt.timedelta(days=days), rows_without_time=0)
    assert choose_bucket(span, "auto") == expected
    assert choose_bucket(span, "week") == "week"


def test_auto_bucket_never_gives_more_than_its_maximum_of_periods():
    first = dt.datetime(2000, 1, 1)
    for days in range(1, 3000, 7):
        span = TimeSpan(first=first, last=first + dt.timedelta(days=days), rows_without_time=0)
        bucket = choose_bucket(span, "auto")
        last = span.last
        periods = {
            "day": days + 1,
            "week": (last - (first - dt.timedelta(days=first.weekday()))).days // 7 + 1,
            "month": (last.year - first.year) * 12 + last.month - first.month + 1,
            "year": last.year - first.year + 1,
        }[bucket]
        # The span's length picks the bucket; calendar boundaries can add one period.
        assert bucket == "year" or periods <= MAX_AUTO_PERIODS + 1, (days, bucket, periods)

"""Rows the job cannot label, each kept with its reason: nothing is dropped silently.

Every input row ends in ``labels/`` or in ``rejected/`` (id, reason, the original record
as far as it could be read). The reason codes:

| code | the row |
| --- | --- |
| ``malformed_record`` | a CSV record Spark could not parse into the header's columns |
| ``null_id`` | has no value in ``input.id_col`` |
| ``duplicate_id`` | shares its ``input.id_col`` value with another row (all such rows are rejected) |
| ``null_text`` | has no text |
| ``invalid_encoding`` | has bytes that are not UTF-8 (decoded as U+FFFD) |
| ``text_too_long`` | has more than ``input.max_text_chars`` characters |
| ``empty_after_cleaning`` | has no words left once HTML and stop words are removed |
| ``no_vocabulary_terms`` | has words, but none in the fitted vocabulary, so nothing to embed |
| ``null_vector`` | (vector mode) has no value in ``input.features_col`` |
| ``wrong_vector_length`` | (vector mode) has a vector of another length than most rows' |
| ``non_finite_values`` | (vector mode) has a NaN, an infinity or a null in its vector |
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from n2d_spark.core.columns import ID_COL, REASON_COL, RECORD_COL, WORD_COUNT_COL, quoted
from n2d_spark.core.config import InputConfig
from n2d_spark.core.errors import InputError
from n2d_spark.rows.read import CORRUPT_COL
from n2d_spark.rows.vector_mode import vector_reason


MALFORMED_RECORD = "malformed_record"
NULL_ID = "null_id"
DUPLICATE_ID = "duplicate_id"
NULL_TEXT = "null_text"
INVALID_ENCODING = "invalid_encoding"
TEXT_TOO_LONG = "text_too_long"
EMPTY_AFTER_CLEANING = "empty_after_cleaning"
NO_VOCABULARY_TERMS = "no_vocabulary_terms"


def with_input_reason(rows: DataFrame, config: InputConfig) -> DataFrame:
    """``rows`` plus ``reason``: the first input-level reason to reject the row, or null."""
    text = F.col(quoted(config.text_col))
    checks: list[tuple[Column, str]] = []
    if CORRUPT_COL in rows.columns:
        checks.append((F.col(CORRUPT_COL).isNotNull(), MALFORMED_RECORD))
    if config.id_col is not None:
        checks.append((F.col(ID_COL).isNull(), NULL_ID))
        checks.append((F.count(F.lit(1)).over(Window.partitionBy(ID_COL)) > 1, DUPLICATE_ID))
    if config.features_col is None:
        checks += [
            (text.isNull(), NULL_TEXT),
            (F.instr(text, "\ufffd") > 0, INVALID_ENCODING),
            (F.length(text) > config.max_text_chars, TEXT_TOO_LONG),
        ]
    reason = F.lit(None).cast("string")
    for condition, code in reversed(checks):
        reason = F.when(condition, F.lit(code)).otherwise(reason)
    return rows.withColumn(REASON_COL, reason)


def with_vector_reason(rows: DataFrame, length: int) -> DataFrame:
    """Vector mode: adds null_vector, wrong_vector_length and non_finite_values to the reasons."""
    return rows.withColumn(REASON_COL, F.coalesce(F.col(REASON_COL), vector_reason(length)))


def with_text_reason(vectors: DataFrame) -> DataFrame:
    """Adds ``empty_after_cleaning`` to the reasons of vectorized rows (see ``text.vectorize``)."""
    empty = F.when(F.col(WORD_COUNT_COL) == 0, F.lit(EMPTY_AFTER_CLEANING))
    return vectors.withColumn(REASON_COL, F.coalesce(F.col(REASON_COL), empty))


def as_rejects(rows: DataFrame, input_columns: list[str]) -> DataFrame:
    """``id``, ``reason``, ``record``: the raw text of a malformed record, else the row's input columns as JSON."""
    as_json = F.to_json(F.struct(*[F.col(quoted(c)) for c in input_columns if c != CORRUPT_COL]))
    record = F.coalesce(F.col(CORRUPT_COL), as_json) if CORRUPT_COL in rows.columns else as_json
    return rows.select(ID_COL, REASON_COL, record.alias(RECORD_COL))


# The tally's (id, copies): how many input rows one working row stands for.
COPIES_COL = "_copies"


@dataclass
class RejectTally:
    """Rejected rows by reason; raises as soon as their share passes ``input.max_reject_share``.

    ``copies`` (``id``, ``_copies``), where one working row stands for several input rows (the
    estimator without an id column makes rows of equal value one row): a rejected row then counts
    as the input rows it stands for, so that 9,000 null texts are 9,000 rejects, not one.
    """

    rows_in: int
    max_share: float
    by_reason: dict[str, int] = field(default_factory=dict)
    copies: DataFrame | None = None

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

    def add(self, counts: dict[str, int]) -> None:
        for reason, count in counts.items():
            if count:
                self.by_reason[reason] = self.by_reason.get(reason, 0) + count
        if self.rows_in and self.total / self.rows_in > self.max_share:
            reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.by_reason.items()))
            raise InputError(
                f"{self.total / self.rows_in:.1%} of the rows are rejected ({self.total} of {self.rows_in}: {reasons}), "
                f"above input.max_reject_share={self.max_share}; nothing was written"
            )


    def add_reasons(self, rows: DataFrame) -> None:
        """Tallies the rows of ``rows`` whose ``reason`` is not null, by reason."""
        rejected = rows.filter(F.col(REASON_COL).isNotNull()).select(ID_COL, REASON_COL)
        counts = self._weighted(rejected).groupBy(REASON_COL).agg(F.sum(COPIES_COL).alias("n"))
        self.add({r[REASON_COL]: r["n"] for r in counts.collect()})

    def add_rows(self, reason: str, rows: DataFrame, n_rows: int) -> None:
        """Tallies ``rows`` (an ``id`` column; ``n_rows`` of them, already counted) under ``reason``."""
        if self.copies is not None and n_rows:
            n_rows = self._weighted(rows.select(ID_COL)).agg(F.sum(COPIES_COL)).first()[0]
        self.add({reason: n_rows})

    def _weighted(self, rows: DataFrame) -> DataFrame:
        """``rows`` with ``_copies``: 1 each, or the input rows each stands for."""
        if self.copies is None:
            return rows.withColumn(COPIES_COL, F.lit(1))
        return rows.join(self.copies, on=ID_COL)

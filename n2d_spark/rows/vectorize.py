"""Vectorize stage: every row of the input as the vector the autoencoder reads, with its reject reason.

Text mode runs the Spark ML text pipeline (rows/text.py); vector mode checks and converts the
numeric column (rows/vector_mode.py). Used by the job (rows/job_stages.py) and the estimator (estimator.py).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
from pyspark.ml import PipelineModel
from pyspark.ml.stat import Summarizer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from n2d_spark.core.columns import REASON_COL, WORD_COUNT_COL
from n2d_spark.core.config import JobConfig
from n2d_spark.core.errors import InputError
from n2d_spark.model.cluster import check_enough_rows
from n2d_spark.model.text_vocabulary import TextVocabulary
from n2d_spark.rows.rejects import with_text_reason, with_vector_reason
from n2d_spark.rows.text import COUNTS_COL, fit_and_vectorize, learned, text_model_reading, vectorize
from n2d_spark.rows.vector_mode import FEATURES_COL, as_feature_arrays, most_common_length


@dataclass(frozen=True)
class Featurized:
    """The vectorize stage's result: every row with its input vector and reject reason."""

    rows: DataFrame
    # The column the autoencoder and the embedding read, and the input column it came from.
    column: str
    source: str
    dimension: int
    # Text mode only: the Spark ML text model, and what it learned (what a bundle stores).
    text_model: PipelineModel | None = None
    learned_text: TextVocabulary | None = None

    @property
    def vocabulary(self) -> list[str] | None:
        return None if self.learned_text is None else list(self.learned_text.terms)

    @property
    def dimension_text(self) -> str:
        if self.vocabulary is not None:
            return f"the vocabulary has {self.dimension} terms"
        return f"the feature vectors have {self.dimension} values"


def featurize(
    rows: DataFrame, config: JobConfig, learned_text: TextVocabulary | None = None, vector_length: int | None = None,
    held: ExitStack | None = None,
) -> Featurized:
    """Text mode: Spark ML count vectors (by a saved model's ``learned_text`` when given, else a new fit); vector mode: the checked numeric column.

    Vector mode expects vectors of ``vector_length`` values when it is given (a fitted model's input
    width: nothing is computed), else the length most usable rows have. A new text fit keeps the
    rows' terms on disk until ``held`` closes (text.fit_and_vectorize), so it needs ``held``.
    """
    if config.input.features_col is not None:
        arrays = as_feature_arrays(rows, config.input.features_col)
        length = vector_length if vector_length is not None else most_common_length(arrays.filter(F.col(REASON_COL).isNull()))
        return Featurized(
            rows=with_vector_reason(arrays, length),
            column=FEATURES_COL,
            source=config.input.features_col,
            dimension=length,
        )
    # The vocabulary comes from the accepted rows only; every row is vectorized, so that
    # the rejects keep their place in one DataFrame with the rest.
    if learned_text is None:
        if held is None:
            raise TypeError("featurize needs held (an ExitStack) to fit a text model")
        text_model, vectorized = fit_and_vectorize(rows, F.col(REASON_COL).isNull(), config.input.text_col, config.text, held)
        learned_text = learned(text_model)
    else:
        text_model = text_model_reading(learned_text, config.input.text_col)
        vectorized = vectorize(text_model, rows)
    return Featurized(
        rows=with_text_reason(vectorized),
        column=COUNTS_COL,
        source=config.input.text_col,
        dimension=len(learned_text.terms),
        text_model=text_model,
        learned_text=learned_text,
    )


def check_usable(n_usable: int, features: Featurized, config: JobConfig) -> None:
    """Fail before training when the rows or the input vectors cannot support the configured model."""
    check_enough_rows(n_usable, config.cluster)
    if features.dimension <= config.autoencoder.bottleneck:
        advice = "lower text.min_df or give more text" if features.vocabulary is not None else "lower the bottleneck"
        raise InputError(
            f"{features.dimension_text}, not more than autoencoder.bottleneck={config.autoencoder.bottleneck}: {advice}"
        )


def out_of_vocabulary_share(usable: DataFrame, features: Featurized) -> float | None:
    """Of the usable rows' words (cleaned, stop words removed), the share the vocabulary lacks; None in vector mode.

    A saved model's vocabulary is frozen: a rising share says the new data speaks of things the model cannot see.
    ``usable`` holds at least one row (Spark's Summarizer refuses an empty input): every caller has
    fitted or assigned rows by then.
    """
    if features.vocabulary is None:
        return None
    # Summed in the JVM, term by term: a pandas UDF summing each row's counts was 4 of the write
    # stage's 26 s on 300,000 synthetic rows.
    words, known = usable.agg(F.sum(WORD_COUNT_COL), Summarizer.sum(F.col(features.column))).first()
    known = float(np.sum(known.toArray()))
    return 1.0 - known / words if words else None

"""Text mode's vectorize stage, in Spark ML (JVM): text in, sparse term counts out; and the same
tokens counted in windows on the executors, for topic coherence."""

from __future__ import annotations

import operator
from contextlib import ExitStack

from pyspark import StorageLevel
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import CountVectorizer, RegexTokenizer, SQLTransformer, StopWordsRemover
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from n2d_spark.core.columns import quoted
from n2d_spark.core.config import TextConfig
from n2d_spark.core.metrics import WindowCounts, count_windows
from n2d_spark.core.resources import persisted
from n2d_spark.rows.sampling import hash_sample

COUNTS_COL = "counts"
# Words left after cleaning and stop-word removal: 0 means the text was empty after cleaning.
WORD_COUNT_COL = "_n_words"
_CLEAN_COL = "_clean_text"
_TOKENS_COL = "_tokens"
_TERMS_COL = "_terms"


def _cleaning_sql(text_col: str) -> str:
    # Tags and entities become spaces (so "end.<br />Next" stays two words); apostrophes are
    # kept only inside words, so "don't" is one token that the stop-word list knows.
    # coalesce: a null review is an empty document, not a null the tokenizer rejects.
    return (
        f"SELECT *, lower(regexp_replace(regexp_replace(regexp_replace(coalesce({quoted(text_col)}, ''), "
        r"'<[^>]*>', ' '), '&[#a-zA-Z0-9]+;', ' '), "
        r"'(?<!\\p{L})[\\x27\\x{2019}]|[\\x27\\x{2019}](?!\\p{L})', ' ')) AS "
        f"{_CLEAN_COL} FROM __THIS__"
    )


def build_text_pipeline(text_col: str, config: TextConfig) -> Pipeline:
    return Pipeline(
        stages=[
            SQLTransformer(statement=_cleaning_sql(text_col)),
            RegexTokenizer(
                inputCol=_CLEAN_COL,
                outputCol=_TOKENS_COL,
                pattern=r"[^\p{L}\p{N}'’]+",
                toLowercase=False,
                minTokenLength=2,
            ),
            StopWordsRemover(inputCol=_TOKENS_COL, outputCol=_TERMS_COL),
            # Spark 4's CountVectorizer ranks terms by count, then term, so the vocabulary is a
            # function of the rows, not of their partitioning (tests/test_text.py checks it).
            CountVectorizer(
                inputCol=_TERMS_COL,
                outputCol=COUNTS_COL,
                vocabSize=config.vocab_size,
                minDF=config.min_df,
            ),
        ]
    )


def fit_text_model(rows: DataFrame, text_col: str, config: TextConfig) -> PipelineModel:
    return build_text_pipeline(text_col, config).fit(rows)


def reading(text_model: PipelineModel, text_col: str) -> PipelineModel:
    """A fitted text model that reads ``text_col``: its cleaning stage rebuilt by this code.

    A saved model's cleaning stage names the training run's text column in the SQL it stored;
    rebuilt, it reads the column new data has (``assign --set input.text_col=...``), and the
    stored statement is never run.
    """
    return PipelineModel(stages=[SQLTransformer(statement=_cleaning_sql(text_col)), *text_model.stages[1:]])


def vectorize(text_model: PipelineModel, rows: DataFrame) -> DataFrame:
    """The input's columns plus ``counts`` (a sparse vector over the vocabulary) and ``_n_words``."""
    return _with_word_counts(text_model.transform(rows))


def fit_and_vectorize(rows: DataFrame, fit_on: Column, text_col: str, config: TextConfig, held: ExitStack) -> tuple[PipelineModel, DataFrame]:
    """A text model fitted on the rows where ``fit_on`` holds, and every row of ``rows`` vectorized by it.

    Fitting the pipeline and then transforming with it cleaned and tokenized every row twice: the
    CountVectorizer's fit and the fitted model's transform each run the regexes. Here each row is
    cleaned and tokenized once, and its terms kept on disk (not in the heap) until ``held``
    closes, for both passes (scripts/studies/vectorize_profile.py; BENCHMARKS.md, "A scale model").
    """
    *steps, vectorizer = build_text_pipeline(text_col, config).getStages()
    terms = persisted(held, PipelineModel(stages=steps).transform(rows).drop(_CLEAN_COL, _TOKENS_COL), StorageLevel.DISK_ONLY)
    counts_model = vectorizer.fit(terms.filter(fit_on))
    return PipelineModel(stages=[*steps, counts_model]), _with_word_counts(counts_model.transform(terms))


def _with_word_counts(vectorized: DataFrame) -> DataFrame:
    return vectorized.withColumn(WORD_COUNT_COL, F.size(F.col(_TERMS_COL))).drop(_CLEAN_COL, _TOKENS_COL, _TERMS_COL)


def count_term_windows(text_model: PipelineModel, rows: DataFrame, n_rows: int, seed: int, terms: list[str]) -> WindowCounts:
    """Sliding-window counts of ``terms`` over ``n_rows`` rows, their text cleaned, tokenized and
    stop-word-filtered as the vocabulary saw it, in text order. The rows are the first by a hash of
    their id seeded with ``seed``, as the job's other samples are drawn (``hash_sample``).

    Counted on the executors, a partial count per partition summed on the driver, so only a
    terms x terms matrix per partition travels, whatever ``n_rows`` is.
    """
    tokenize = PipelineModel(stages=text_model.stages[:-1])
    picked = tokenize.transform(hash_sample(rows, n_rows, seed)).select(_TERMS_COL)
    # The limit leaves one partition: spread it over the cores (integer counts add up in any order).
    spread = picked.repartition(rows.sparkSession.sparkContext.defaultParallelism)

    def count(partition):
        yield count_windows((row[0] for row in partition), terms)

    return spread.rdd.mapPartitions(count).fold(WindowCounts.empty(terms), operator.add)


def vocabulary(text_model: PipelineModel) -> list[str]:
    return list(text_model.stages[-1].vocabulary)

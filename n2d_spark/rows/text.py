"""Text mode's vectorize stage, in Spark ML (JVM): text in, sparse term counts out; and the same
tokens counted in windows on the executors, for topic coherence."""

from __future__ import annotations

import operator
from contextlib import ExitStack

from pyspark import StorageLevel
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import CountVectorizer, CountVectorizerModel, RegexTokenizer, SQLTransformer, StopWordsRemover
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from n2d_spark.core.config import TextConfig
from n2d_spark.core.metrics import WindowCounts, count_windows
from n2d_spark.core.resources import persisted
from n2d_spark.model.text_vocabulary import (
    CLEAN_COL,
    MIN_TOKEN_LENGTH,
    TERMS_COL,
    TOKEN_PATTERN,
    TOKENS_COL,
    TextVocabulary,
    cleaning_sql,
)
from n2d_spark.rows.sampling import hash_sample

COUNTS_COL = "counts"
# Words left after cleaning and stop-word removal: 0 means the text was empty after cleaning.
WORD_COUNT_COL = "_n_words"


def _tokenizing_stages(text_col: str, stop_words: list[str] | None = None) -> list:
    """Clean, split and drop stop words (Spark's English list unless given): the stages before counting."""
    remover = StopWordsRemover(inputCol=TOKENS_COL, outputCol=TERMS_COL)
    if stop_words is not None:
        remover.setStopWords(stop_words)
    return [
        SQLTransformer(statement=cleaning_sql(text_col)),
        RegexTokenizer(
            inputCol=CLEAN_COL, outputCol=TOKENS_COL, pattern=TOKEN_PATTERN, toLowercase=False, minTokenLength=MIN_TOKEN_LENGTH
        ),
        remover,
    ]


def build_text_pipeline(text_col: str, config: TextConfig) -> Pipeline:
    # Spark 4's CountVectorizer ranks terms by count, then term, so the vocabulary is a
    # function of the rows, not of their partitioning (tests/test_text.py checks it).
    vectorizer = CountVectorizer(inputCol=TERMS_COL, outputCol=COUNTS_COL, vocabSize=config.vocab_size, minDF=config.min_df)
    return Pipeline(stages=[*_tokenizing_stages(text_col), vectorizer])


def fit_text_model(rows: DataFrame, text_col: str, config: TextConfig) -> PipelineModel:
    return build_text_pipeline(text_col, config).fit(rows)


def learned(text_model: PipelineModel) -> TextVocabulary:
    """What a fitted text model learned, as the bundle stores it."""
    return TextVocabulary(tuple(vocabulary(text_model)), tuple(text_model.stages[-2].getStopWords()))


def text_model_reading(learned_text: TextVocabulary, text_col: str) -> PipelineModel:
    """The fitted text model that ``learned_text`` describes, built by this code and reading ``text_col``.

    A saved model is rebuilt so, never loaded as Spark ML saved it: it reads the column new data
    has (``assign --set input.text_col=...``), and runs no statement a bundle carries.
    """
    counts = CountVectorizerModel.from_vocabulary(list(learned_text.terms), inputCol=TERMS_COL, outputCol=COUNTS_COL)
    return PipelineModel(stages=[*_tokenizing_stages(text_col, list(learned_text.stop_words)), counts])


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
    terms = persisted(held, PipelineModel(stages=steps).transform(rows).drop(CLEAN_COL, TOKENS_COL), StorageLevel.DISK_ONLY)
    counts_model = vectorizer.fit(terms.filter(fit_on))
    return PipelineModel(stages=[*steps, counts_model]), _with_word_counts(counts_model.transform(terms))


def _with_word_counts(vectorized: DataFrame) -> DataFrame:
    return vectorized.withColumn(WORD_COUNT_COL, F.size(F.col(TERMS_COL))).drop(CLEAN_COL, TOKENS_COL, TERMS_COL)


def count_term_windows(text_model: PipelineModel, rows: DataFrame, n_rows: int, seed: int, terms: list[str]) -> WindowCounts:
    """Sliding-window counts of ``terms`` over ``n_rows`` rows, their text cleaned, tokenized and
    stop-word-filtered as the vocabulary saw it, in text order. The rows are the first by a hash of
    their id seeded with ``seed``, as the job's other samples are drawn (``hash_sample``).

    Counted on the executors, a partial count per partition summed on the driver, so only a
    terms x terms matrix per partition travels, whatever ``n_rows`` is.
    """
    tokenize = PipelineModel(stages=text_model.stages[:-1])
    picked = tokenize.transform(hash_sample(rows, n_rows, seed)).select(TERMS_COL)
    # The limit leaves one partition: spread it over the cores (integer counts add up in any order).
    spread = picked.repartition(rows.sparkSession.sparkContext.defaultParallelism)

    def count(partition):
        yield count_windows((row[0] for row in partition), terms)

    return spread.rdd.mapPartitions(count).fold(WindowCounts.empty(terms), operator.add)


def vocabulary(text_model: PipelineModel) -> list[str]:
    return list(text_model.stages[-1].vocabulary)

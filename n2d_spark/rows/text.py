"""Text mode's vectorize stage, in Spark ML (JVM): text in, sparse term counts out; and the same
tokens counted in windows on the executors, for topic coherence."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import CountVectorizer, CountVectorizerModel, RegexTokenizer, SQLTransformer, StopWordsRemover
from pyspark.ml.util import RemoteModelRef
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from n2d_spark.core.columns import WORD_COUNT_COL
from n2d_spark.core.config import TextConfig
from n2d_spark.core.metrics import WindowCounts, count_term_ids
from n2d_spark.core.resources import persisted
from n2d_spark.core.session import default_parallelism
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
# A partition's window counts (count_term_windows): the terms x terms matrix, flattened, and its totals.
_TOGETHER, _WINDOWS, _DOCUMENTS = "together", "n_windows", "n_documents"
_COUNTS_SCHEMA = pa.schema([(_TOGETHER, pa.list_(pa.int64())), (_WINDOWS, pa.int64()), (_DOCUMENTS, pa.int64())])


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
    counts = _pinned(CountVectorizerModel.from_vocabulary(list(learned_text.terms), inputCol=TERMS_COL, outputCol=COUNTS_COL))
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
    counts_model = _pinned(vectorizer.fit(terms.filter(fit_on)))
    return PipelineModel(stages=[*steps, counts_model]), _with_word_counts(counts_model.transform(terms))


def _pinned(model: CountVectorizerModel) -> CountVectorizerModel:
    """``model``, which on Spark Connect the server's ML cache holds, never deleted from its finalizer.

    pyspark 4.3 deletes a Connect model from the server in its finalizer, by a blocking call; when
    the garbage collector runs that finalizer during another call to the server, the client waits
    forever (seen in tests/test_estimator.py's Connect test). One more reference keeps the
    finalizer from calling; the server drops the model when the session ends. A classic session's
    model is a JVM object and is left as it is.
    """
    if isinstance(model._java_obj, RemoteModelRef):
        model._java_obj.add_ref()
    return model


def _with_word_counts(vectorized: DataFrame) -> DataFrame:
    return vectorized.withColumn(WORD_COUNT_COL, F.size(F.col(TERMS_COL))).drop(CLEAN_COL, TOKENS_COL, TERMS_COL)


def count_term_windows(text_model: PipelineModel, rows: DataFrame, n_rows: int, seed: int, terms: list[str]) -> WindowCounts:
    """Sliding-window counts of ``terms`` over ``n_rows`` rows, their text cleaned, tokenized and
    stop-word-filtered as the vocabulary saw it, in text order. The rows are the first by a hash of
    their id seeded with ``seed``, as the job's other samples are drawn (``hash_sample``).

    Counted on the executors (``mapInArrow``, which Spark Connect has too), a partial count per
    partition summed on the driver, so only a terms x terms matrix per partition travels, whatever
    ``n_rows`` is.
    """
    tokenize = PipelineModel(stages=text_model.stages[:-1])
    picked = tokenize.transform(hash_sample(rows, n_rows, seed)).select(TERMS_COL)
    # The limit leaves one partition: spread it over the cores (integer counts add up in any order).
    spread = picked.repartition(default_parallelism(rows.sparkSession))
    term_set = pa.array(terms, type=pa.string())

    def count(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # Arrow all the way: tokens become term indices in one hashed lookup (pyarrow's index_in),
        # never a Python string each (scripts/studies/npmi_count.py).
        counts = WindowCounts.empty(terms)
        for batch in batches:
            documents = batch.column(TERMS_COL)
            ids = pc.fill_null(pc.index_in(documents.flatten(), value_set=term_set), -1).to_numpy()
            offsets = documents.offsets.to_numpy() - documents.offsets[0].as_py()
            counts += count_term_ids(ids, offsets, terms)
        yield pa.RecordBatch.from_pydict(
            {_TOGETHER: [counts.together.ravel().tolist()], _WINDOWS: [counts.n_windows], _DOCUMENTS: [counts.n_documents]},
            schema=_COUNTS_SCHEMA,
        )

    partials = spread.mapInArrow(count, f"{_TOGETHER} array<long>, {_WINDOWS} long, {_DOCUMENTS} long").collect()
    shape = (len(terms), len(terms))
    return sum(
        (WindowCounts(list(terms), np.asarray(p[_TOGETHER], dtype=np.int64).reshape(shape), p[_WINDOWS], p[_DOCUMENTS]) for p in partials),
        WindowCounts.empty(terms),
    )


def vocabulary(text_model: PipelineModel) -> list[str]:
    return list(text_model.stages[-1].vocabulary)

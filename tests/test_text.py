from contextlib import ExitStack

import numpy as np
import pandas as pd
from pyspark.sql import functions as F

from n2d_spark.core.config import TextConfig
from n2d_spark.core.metrics import count_windows
from n2d_spark.rows.text import (
    COUNTS_COL,
    WORD_COUNT_COL,
    count_term_windows,
    fit_and_vectorize,
    fit_text_model,
    learned,
    vectorize,
    vocabulary,
)
from n2d_spark.rows.vectorize import Featurized, out_of_vocabulary_share


def _terms(spark, texts, **config):
    frame = spark.createDataFrame([(t,) for t in texts], "review string")
    model = fit_text_model(frame, "review", TextConfig(min_df=1.0, **config))
    vocab = vocabulary(model)
    rows = vectorize(model, frame).collect()
    return vocab, [
        {vocab[i]: v for i, v in zip(row[COUNTS_COL].indices, row[COUNTS_COL].values)} for row in rows
    ]


def test_html_case_stop_words_and_punctuation(spark):
    _, docs = _terms(spark, ["The <b>GHOST</b> was scary.<br /><br />Ghost &amp; don't 'haunt' it's Café"])
    assert docs == [{"ghost": 2.0, "scary": 1.0, "haunt": 1.0, "café": 1.0}]


def test_entities_that_lost_their_ampersand_leave_no_terms(spark):
    # As AG News has them; "clamp;" and "#1" are not entities.
    _, docs = _terms(spark, ["Sony #146;s player, Johnson amp; Johnson amp;amp; quot;clamp; #151; ranked #1 x#146;"])
    assert docs == [{"sony": 1.0, "player": 1.0, "johnson": 2.0, "clamp": 1.0, "ranked": 1.0}]


def test_null_and_empty_texts_are_empty_vectors(spark):
    _, docs = _terms(spark, [None, "", "<br />", "movie"])
    assert docs == [{}, {}, {}, {"movie": 1.0}]


def test_vocabulary_size_and_min_df(spark):
    texts = ["alpha beta gamma", "alpha beta", "alpha delta"]
    vocab, _ = _terms(spark, texts, vocab_size=2)
    assert vocab == ["alpha", "beta"]
    frame = spark.createDataFrame([(t,) for t in texts], "review string")
    model = fit_text_model(frame, "review", TextConfig(min_df=2.0))
    assert sorted(vocabulary(model)) == ["alpha", "beta"]


def test_vocabulary_ranks_by_count_then_term_whatever_the_partitioning(spark):
    # 60 terms, counts 1 to 3 with many ties at the cut-off of 25; a term repeated within one
    # document counts its occurrences but only one document toward min_df.
    texts = [f"w{i:02d} w{(i * 7) % 60:02d} w{(i * 13) % 60:02d}" for i in range(60)] + ["solo solo solo solo"]
    frame = spark.createDataFrame([(t,) for t in texts], "review string")
    counts = pd.Series(" ".join(texts).split()).value_counts()
    documents = pd.Series([term for text in texts for term in set(text.split())]).value_counts()
    kept = sorted(documents.index[documents >= 2], key=lambda term: (-counts[term], term))
    expected = kept[:25]
    assert counts[expected[-1]] == counts[kept[25]], "the cut-off should fall inside a tie"
    for partitions in (1, 3, 8):
        shuffled = frame.repartition(partitions)
        model = fit_text_model(shuffled, "review", TextConfig(vocab_size=25, min_df=2.0))
        assert vocabulary(model) == expected, partitions
    fraction = fit_text_model(frame, "review", TextConfig(vocab_size=1000, min_df=0.02))
    assert vocabulary(fraction) == kept


def test_one_tokenizing_pass_gives_the_two_pass_vocabulary_and_counts(spark):
    # The vocabulary is fitted on the accepted rows (keep), every row is vectorized; the terms are
    # computed once and read back from disk for both passes.
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(40)]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(0, 12)))) + " <br />The end" for _ in range(120)]
    frame = spark.createDataFrame([(i, t, i % 4 != 0) for i, t in enumerate(texts)], "id long, review string, keep boolean").repartition(3)
    config = TextConfig(vocab_size=25, min_df=2.0)
    expected_model = fit_text_model(frame.filter("keep"), "review", config)
    expected = {r["id"]: (r[COUNTS_COL], r[WORD_COUNT_COL]) for r in vectorize(expected_model, frame).collect()}
    with ExitStack() as held:
        model, vectorized = fit_and_vectorize(frame, F.col("keep"), "review", config, held)
        assert vocabulary(model) == vocabulary(expected_model)
        assert {r["id"]: (r[COUNTS_COL], r[WORD_COUNT_COL]) for r in vectorized.collect()} == expected
        assert vectorized.columns == vectorize(expected_model, frame).columns
        plan = vectorized._jdf.queryExecution().executedPlan().toString()
        # The cleaning regexes only below the cached terms (the cached relation's own plan).
        assert plan.index("InMemoryTableScan") < plan.index("regexp_replace")
        # The saved text model still cleans and tokenizes raw text itself, as assign needs.
        assert vectorize(model, frame).count() == 120


def test_no_python_udf_in_the_plan(spark):
    frame = spark.createDataFrame([("some text here",)], "review string")
    model = fit_text_model(frame, "review", TextConfig(min_df=1.0))
    plan = vectorize(model, frame)._jdf.queryExecution().executedPlan().toString()
    assert "Python" not in plan and "ArrowEval" not in plan


def test_term_windows_counted_on_executors_equal_the_driver_count(spark):
    # The job counts coherence windows per partition and sums them: the sum must equal one count
    # over the same documents, and the order and limit must pick the same sampled rows.
    rng = np.random.default_rng(3)
    words = [f"word{i}" for i in range(30)]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(0, 25)))) + " the <br />" for _ in range(200)]
    frame = spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "id long, review string").repartition(5)
    model = fit_text_model(frame, "review", TextConfig(min_df=1.0))
    terms = ["word1", "word2", "word3", "word29", "absent"]
    counts = count_term_windows(model, frame, 120, 7, terms)

    # The rows the job's samples take: the first by a hash of the id seeded with 7.
    picked = frame.orderBy(F.xxhash64("id", F.lit(7))).limit(120).select("review").collect()
    documents = [[w for w in row["review"].split() if w.startswith("word")] for row in picked]
    expected = count_windows(documents, terms)
    assert counts.n_documents == 120 and counts.n_windows == expected.n_windows
    np.testing.assert_array_equal(counts.together, expected.together)
    assert counts.together[4].sum() == 0 and counts.together[0, 0] > 0


def test_the_vectorize_stage_keeps_no_token_cache_once_the_vectors_are_cached(spark, tmp_path):
    """A new text fit keeps each row's tokens on disk for its two passes; the vectorize stage drops
    them once the vectors are cached, not at the end of the run."""
    from n2d_spark.core.config import load_config
    from n2d_spark.core.fs import FileSystem
    from n2d_spark.core.run_context import Run
    from n2d_spark.rows import job_stages
    from n2d_spark.synthetic import generate_reviews

    path = tmp_path / "reviews.csv"
    generate_reviews(300, seed=3).to_csv(path, index=False)
    config = load_config(None, ["text.min_df=1"])

    def storage_levels():
        return sorted(str(rdd.getStorageLevel()) for rdd in spark.sparkContext._jsc.getPersistentRDDs().values())

    before = storage_levels()
    with ExitStack() as cached:
        run = Run(spark, config, str(path), str(tmp_path / "out"), FileSystem(spark, str(path)), cached)
        _, vectors = job_stages.vectorize(run, job_stages.read(run), learned_text=None)
        assert vectors.is_cached
        # The vectors alone: the read rows and the tokens have been released.
        assert len(storage_levels()) == len(before) + 1
    assert storage_levels() == before


def test_out_of_vocabulary_share_counts_every_word_the_vocabulary_lacks(spark):
    # Vocabulary alpha, beta (min_df 2): of 7 words, gamma and delta are outside it.
    frame = spark.createDataFrame([(t,) for t in ["alpha beta gamma", "alpha beta", "Alpha delta"]], "review string")
    model = fit_text_model(frame, "review", TextConfig(min_df=2.0))
    features = Featurized(vectorize(model, frame), COUNTS_COL, "review", 2, model, learned(model))
    assert out_of_vocabulary_share(features.rows, features) == 2 / 7

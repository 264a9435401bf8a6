import numpy as np
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StructField, StructType

from n2d_spark.outputs.cluster_summary import class_tfidf, cluster_summary, top_terms


def test_class_tfidf_by_hand():
    counts = np.array([[3.0, 1.0, 0.0], [0.0, 1.0, 4.0]])
    # Words per cluster 4 and 5 (average 4.5); term totals 3, 2, 4.
    # Shares 3/4, 1/4 and 1/5, 4/5, square-rooted.
    expected = np.array(
        [
            [np.sqrt(0.75) * np.log1p(4.5 / 3), np.sqrt(0.25) * np.log1p(4.5 / 2), 0.0],
            [0.0, np.sqrt(0.2) * np.log1p(4.5 / 2), np.sqrt(0.8) * np.log1p(4.5 / 4)],
        ]
    )
    np.testing.assert_allclose(class_tfidf(counts), expected)


def test_top_terms_skip_absent_terms_and_break_ties_by_vocabulary():
    counts = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    scores = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    assert top_terms(scores, counts, ["a", "b", "c"], n=3) == [["a", "b"], ["c"]]


def test_top_terms_leave_out_terms_without_a_letter():
    vocabulary = ["146", "king", "00", "cambodia", "25", "mail", "x2", "été"]
    counts = np.ones((1, len(vocabulary)))
    # The numbers score highest, and are passed over for the next terms that have a letter.
    scores = np.array([[9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0]])
    assert top_terms(scores, counts, vocabulary, n=4) == [["king", "cambodia", "mail", "x2"]]
    assert top_terms(scores, counts, vocabulary, n=10) == [["king", "cambodia", "mail", "x2", "été"]]


def test_cluster_summary_in_spark(spark):
    rows = [
        (0, Vectors.sparse(3, [0], [2.0])),
        (0, Vectors.sparse(3, [0, 1], [1.0, 1.0])),
        (1, Vectors.sparse(3, [2], [5.0])),
        (-1, Vectors.sparse(3, [1], [1.0])),
    ]
    labelled = spark.createDataFrame(
        rows, StructType([StructField("cluster", IntegerType()), StructField("counts", VectorUDT())])
    )
    summary = cluster_summary(labelled, ["ghost", "love", "alien"], n_terms=2)
    assert summary["cluster"].tolist() == [-1, 0, 1]
    assert summary["size"].tolist() == [1, 2, 1]
    assert summary["top_terms"].tolist() == [["love"], ["ghost", "love"], ["alien"]]


def test_fresh_names_contrast_new_topics_with_each_old_topic_not_with_all_old_rows_at_once(spark):
    """An update names its topics over the new data's words against the old topics' rows. Two new topics of one
    genre beside seven old genres, as many old rows sampled as new ones (``evaluate.coherence_rows``, as on a large
    input): lumped in one class, the old rows left c-TF-IDF three classes, and the words of every review
    ("movie", "film") named both topics (as on 1,000,000 synthetic rows: BENCHMARKS.md)."""
    from n2d_spark.core.columns import CLUSTER_COL, ID_COL, REASON_COL
    from n2d_spark.core.config import load_config
    from n2d_spark.outputs.cluster_summary import fresh_names
    from n2d_spark.synthetic import GENRES, generate_reviews

    reviews = generate_reviews(2_400, seed=3)
    old_genres = [genre for genre in GENRES if genre != "scifi"]
    cluster = reviews["topic"].map({genre: i for i, genre in enumerate(old_genres)})
    scifi = reviews["topic"] == "scifi"
    cluster[scifi] = 7 + (np.arange(len(reviews))[scifi] % 2)
    frame = reviews.assign(**{ID_COL: np.arange(len(reviews)), CLUSTER_COL: cluster.astype(int)})
    rows = spark.createDataFrame(frame[[ID_COL, "review"]]).withColumn(REASON_COL, F.lit(None).cast("string"))
    labels = spark.createDataFrame(frame[[ID_COL, CLUSTER_COL]])
    names = fresh_names(rows, labels, [7, 8], load_config(overrides=["input.text_col=review", "evaluate.coherence_rows=300"]))
    assert sorted(names.index) == [7, 8]
    everyday = {"movie", "film", "story", "plot", "character", "actor", "scene"}
    for topic in (7, 8):
        assert not everyday & set(names.loc[topic, "top_terms"][:3]), names.loc[topic, "name"]

import pandas as pd

from n2d_spark.config import InputConfig
from n2d_spark.read import read_reviews
from n2d_spark.synthetic import GENRES, generate_reviews, write_corpus


def test_deterministic_by_seed():
    pd.testing.assert_frame_equal(generate_reviews(50, seed=3), generate_reviews(50, seed=3))
    assert not generate_reviews(50, seed=3).equals(generate_reviews(50, seed=4))


def test_planted_topics_and_sentiments():
    frame = generate_reviews(2000, seed=0)
    assert list(frame.columns) == ["review", "sentiment", "topic"]
    assert set(frame["topic"]) == set(GENRES)
    assert set(frame["sentiment"]) == {"positive", "negative"}
    # Each review carries words of its own genre.
    for review, topic in zip(frame["review"][:200], frame["topic"][:200]):
        words = set(review.lower().replace("<br />", " ").split())
        assert words & set(GENRES[topic].split()), (topic, review)
    assert frame["review"].str.contains("<br />").mean() > 0.1
    assert frame["review"].str.contains('"').mean() > 0.1
    assert frame["review"].str.split().str.len().median() > 60


def test_csv_round_trip_through_spark(spark, tmp_path):
    frame = generate_reviews(300, seed=1)
    path = write_corpus(frame, tmp_path / "synthetic.csv.gz")
    read = read_reviews(spark, str(path), InputConfig()).orderBy("id").toPandas()
    assert read["review"].tolist() == frame["review"].tolist()
    assert read["topic"].tolist() == frame["topic"].tolist()


def test_genre_share_sets_the_strength_of_the_planted_signal():
    def genre_word_share(frame):
        shares = []
        for review, topic in zip(frame["review"], frame["topic"]):
            words = review.lower().replace("<br />", " ").split()
            genre = set(GENRES[topic].split())
            shares.append(sum(w.strip('.,"<>/i') in genre for w in words) / len(words))
        return sum(shares) / len(shares)

    weak = genre_word_share(generate_reviews(300, seed=1, genre_share=(0.03, 0.10)))
    default = genre_word_share(generate_reviews(300, seed=1))
    assert 0.03 <= weak <= 0.10 < 0.15 <= default <= 0.30

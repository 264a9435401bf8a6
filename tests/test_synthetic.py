import pandas as pd

from n2d_spark.core.config import InputConfig
from n2d_spark.rows.read import read_rows
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
    read = read_rows(spark, str(path), InputConfig()).orderBy("id").toPandas()
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


def test_dates_plant_a_rising_and_a_fading_genre_and_change_nothing_else():
    from n2d_spark.synthetic import DATE_SPAN, TRENDS

    plain, dated = generate_reviews(4000, seed=2), generate_reviews(4000, seed=2, dates=True)
    pd.testing.assert_frame_equal(plain, dated.drop(columns="date"))
    dates = pd.to_datetime(dated["date"])
    assert str(dates.min().date()) >= DATE_SPAN[0] and str(dates.max().date()) <= DATE_SPAN[1]
    first_half = dates < pd.Timestamp("2025-01-01")
    rising, fading = dated["topic"] == TRENDS["rising"], dated["topic"] == TRENDS["fading"]
    # Density 3u^2: 1/8 of the rising genre's rows in the first half, 7/8 in the second.
    assert rising[first_half].mean() < 0.06 < 0.2 < rising[~first_half].mean()
    assert fading[~first_half].mean() < 0.06 < 0.2 < fading[first_half].mean()

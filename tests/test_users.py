"""Users (input.user_col): topic shares and profiles, grouped in Spark (rows/users.py); the planted reviewers."""

from __future__ import annotations

import numpy as np
import pytest

from n2d_spark.rows.users import user_profiles, user_topics
from n2d_spark.synthetic import GENRES, generate_reviews


def test_topic_shares_largest_first_with_names(spark):
    labelled = spark.createDataFrame(
        [("ann", 1), ("ann", 1), ("ann", 2), ("ann", 3), ("ann", 4), ("bob", 2)], "user string, cluster int"
    )
    names = spark.createDataFrame([(1, "ghosts"), (2, "space"), (3, "food"), (4, "cars")], "cluster int, name string")
    found = {row["user"]: row for row in user_topics(labelled, names).collect()}
    assert found["ann"]["rows"] == 5 and found["bob"]["rows"] == 1
    # Three topics at most, largest first, equal shares by cluster.
    assert [(t["cluster"], t["name"], t["share"]) for t in found["ann"]["topics"]] == [
        (1, "ghosts", 0.4), (2, "space", 0.2), (3, "food", 0.2)
    ]
    assert [(t["cluster"], t["share"]) for t in found["bob"]["topics"]] == [(2, 1.0)]


def test_a_profile_is_the_mean_of_unit_embeddings(spark):
    embedded = spark.createDataFrame(
        [("ann", [3.0, 4.0]), ("ann", [0.0, 2.0]), ("bob", [1.0, 0.0]), ("bob", [0.0, 0.0])],
        "user string, embedding array<float>",
    )
    profiles = {row["id"]: row["embedding"] for row in user_profiles(embedded).collect()}
    np.testing.assert_allclose(profiles["ann"], [0.3, 0.9], rtol=1e-6)
    # A zero embedding has no direction: it adds nothing.
    np.testing.assert_allclose(profiles["bob"], [1.0, 0.0], rtol=1e-6)


def test_planted_reviewers_favour_their_genre_and_leave_the_other_columns_as_they_were():
    plain = generate_reviews(2000, seed=3)
    with_users = generate_reviews(2000, seed=3, users=40)
    assert with_users.drop(columns="user").equals(plain)
    shares = with_users.groupby("user")["topic"].agg(lambda topics: topics.value_counts(normalize=True).iloc[0])
    assert with_users["user"].nunique() == 40 and shares.mean() == pytest.approx(0.72, abs=0.08)
    genres = list(GENRES)
    favourites = with_users.groupby("user")["topic"].agg(lambda topics: topics.value_counts().idxmax())
    planted = {f"user{u:04d}": genres[u % len(genres)] for u in range(40)}
    assert (favourites == favourites.index.map(planted)).mean() >= 0.95

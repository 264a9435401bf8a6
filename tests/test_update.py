"""``n2d-spark update`` end to end on real Spark: a genre the model never saw becomes new topics, old topics
and the other rows keep their labels, the updated model has its lineage, and an update of it works too."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from pyspark.sql import types as T

from n2d_spark import cli
from n2d_spark.core.config import load_config
from n2d_spark.core.errors import BundleError, ConfigError
from n2d_spark.model.assign_policy import check_assign_overrides
from n2d_spark.model.encoder import smoothed_idf
from n2d_spark.core.fs import FileSystem
from n2d_spark.model.bundle import load_bundle
from n2d_spark.model.novelty import TERMS, calibrate, density_ratios, term_points
from n2d_spark.rows.fit import calibrate_novelty
from n2d_spark.rows.update import log_novelty_in_space
from n2d_spark.pipeline import run_assign, run_job, run_update
from n2d_spark.synthetic import GENRES, generate_reviews, write_corpus

from conftest import REPO, rewrite_parts

pytestmark = pytest.mark.slow

WITHHELD = "scifi"
# The quantile the fixture's model is trained and updated with: the default.
CHANCE_QUANTILE = load_config().update.novelty_quantile


@pytest.fixture(scope="module")
def updated(spark, tmp_path_factory):
    """A model trained without one genre, and its update with rows of every genre."""
    work = tmp_path_factory.mktemp("update")
    trained = generate_reviews(3000, seed=0)
    write_corpus(trained[trained["topic"] != WITHHELD], work / "train.csv")
    new = write_corpus(generate_reviews(2400, seed=1), work / "new.csv")
    config = load_config(REPO / "conf" / "synthetic.yaml", ["similar.k=0"])
    run_job(spark, config, str(work / "train.csv"), str(work / "trained"))
    manifest = run_update(spark, str(work / "trained" / "model"), str(new), str(work / "updated"), ["evaluate.label_col=topic"]).manifest
    return work, manifest


def _labels(folder):
    return pd.read_parquet(folder / "labels").sort_values("id").reset_index(drop=True)


def test_a_withheld_genre_becomes_new_topics_and_other_rows_keep_their_labels(spark, updated):
    work, manifest = updated
    labels = _labels(work / "updated")
    update = manifest["update"]
    # labels/ as a training run writes it, with each row's novelty after its second cluster.
    assert list(labels.columns[:6]) == ["id", "cluster", "umap", "confidence", "second_cluster", "novelty"]
    assert labels["novelty"].dtype == "float64" and labels["novelty"].notna().all()
    new_topics = [topic["cluster"] for topic in update["new_topics"]]
    withheld = labels["topic"] == WITHHELD
    assert new_topics and min(new_topics) == 7  # the trained model's seven genres keep ids 0-6
    assert labels.loc[withheld, "cluster"].isin(new_topics).mean() >= 0.9
    assert (labels.loc[withheld, "novelty"] > 1).mean() >= 0.9
    # About 1 - quantile of the rows of known topics are novel by chance (the calibration): at most twice that.
    assert (labels.loc[~withheld, "novelty"] > 1).mean() <= 2 * (1 - CHANCE_QUANTILE)
    # Every row the update did not move into a new topic has the old model's label.
    old = run_assign(spark, str(work / "trained" / "model"), str(work / "new.csv"), str(work / "assigned")).manifest
    assert old["model_id"] == update["parent_model"]
    before = _labels(work / "assigned")
    kept = ~labels["cluster"].isin(new_topics)
    assert (labels.loc[kept, "cluster"] == before.loc[kept, "cluster"]).all()
    assert (labels.loc[~withheld, "cluster"] == before.loc[~withheld, "cluster"]).mean() >= 0.95
    # The new rows are the novel rows that joined a new topic.
    in_new_topics = labels["cluster"].isin(new_topics)
    assert update["novel_row_share"] == pytest.approx((labels["novelty"] > 1).mean())
    assert update["new_row_share"] == pytest.approx(in_new_topics.mean()) and (labels.loc[in_new_topics, "novelty"] > 1).all()
    # A text model tells new rows in its embedding and its terms together (model/novelty.py).
    assert [space["space"] for space in update["novelty"]["spaces"]] == ["embedding", "terms"]
    assert update["out_of_vocabulary_share"]["new"] > update["out_of_vocabulary_share"]["training"]
    page = (work / "updated" / "report" / "update.html").read_text()
    # The report names the new topics and loads nothing.
    assert all(topic["name"] in page for topic in update["new_topics"]) and "<script" not in page and "src=" not in page
    assert "measured in the embedding and the rows&#x27; terms (the geometric mean of the two)" in page
    summary = cli.format_summary(manifest)
    assert f"{update['new_rows']} rows new" in summary and all(topic["name"] in summary for topic in update["new_topics"][:3])


def test_old_topics_keep_ids_and_names_and_new_ones_are_named_from_the_new_words(updated):
    work, manifest = updated
    trained = pd.read_parquet(work / "trained" / "clusters").set_index("cluster")
    now = pd.read_parquet(work / "updated" / "clusters").set_index("cluster")
    parent = manifest["update"]["parent_model"]
    for cluster in trained.index:
        assert now.loc[cluster, "name"] == trained.loc[cluster, "name"]
        assert list(now.loc[cluster, "top_terms"]) == list(trained.loc[cluster, "top_terms"])
        assert now.loc[cluster, "first_model"] == parent
    new = now[now["first_model"] == manifest["model_id"]]
    assert len(new) == len(manifest["update"]["new_topics"]) > 0
    # The withheld genre's words are outside the model's vocabulary, but they name its new topics.
    scifi_words = set(GENRES[WITHHELD].split())
    assert all(scifi_words & set(terms) for terms in new["top_terms"])


def test_the_updated_model_names_its_parent_and_assigns_and_updates_again(spark, updated, capsys):
    work, manifest = updated
    bundle = json.loads((work / "updated" / "model" / "bundle.json").read_text())
    assert bundle["parent_model_id"] == manifest["update"]["parent_model"] != bundle["model_id"] == manifest["model_id"]
    assert {"topics.json", "novelty.npz", "novelty_terms.npz", "added.npz"} <= set(bundle["parts"])

    # assign with the updated model puts the withheld genre in the new topics.
    run_assign(spark, str(work / "updated" / "model"), str(work / "new.csv"), str(work / "assigned-again"))
    again = _labels(work / "assigned-again")
    new_topics = [topic["cluster"] for topic in manifest["update"]["new_topics"]]
    assert again.loc[again["topic"] == WITHHELD, "cluster"].isin(new_topics).mean() >= 0.9
    # assign labels the rows as the update did: it too checks an added topic's rows in their terms.
    assert (again["cluster"] == _labels(work / "updated")["cluster"]).mean() >= 0.98

    # An update of the update, with the same rows: they are known now, and no topic is added or renumbered.
    second = run_update(
        spark, str(work / "updated" / "model"), str(work / "new.csv"), str(work / "updated-twice"),
        ["update.retrain_new_share=0.5", "evaluate.label_col=topic"],
    ).manifest
    assert second["update"]["parent_model"] == manifest["model_id"]
    # It saves the update.* settings it ran with, its parent's others (N2DModel.update too: tests/test_estimator.py).
    parent, saved = (json.loads((work / name / "model" / "bundle.json").read_text())["config"] for name in ("updated", "updated-twice"))
    assert saved == {**parent, "update": {**parent["update"], "retrain_new_share": 0.5}}
    assert second["update"]["novel_row_share"] <= 2 * (1 - CHANCE_QUANTILE) and second["update"]["new_topics"] == []
    twice = pd.read_parquet(work / "updated-twice" / "clusters").set_index("cluster")
    assert set(new_topics) <= set(twice.index)
    assert (twice.loc[new_topics, "first_model"] == manifest["model_id"]).all()

    # The new topics' rows are known in the terms space too, as large a share of its known rows as in the embedding's.
    trained_model, updated_model = (
        load_bundle(spark, FileSystem(spark, str(work / name / "model")), str(work / name / "model")) for name in ("trained", "updated")
    )
    before, after = trained_model.novelty.terms.known.shape[0], updated_model.novelty.terms.known.shape[0]
    embedding_before, added = len(trained_model.assigner.known_rows), updated_model.assigner.added.topics
    share = before / embedding_before
    assert after - before == sum(max(1, round(n * share)) for n in np.unique(added, return_counts=True)[1]) > 0
    assert updated_model.novelty.terms.training_known_rows == trained_model.novelty.terms.training_known_rows == before


def test_a_bundle_from_before_update_is_refused_in_one_line(spark, updated, tmp_path, capsys):
    work, _ = updated
    older = tmp_path / "model"
    shutil.copytree(work / "trained" / "model", older)
    rewrite_parts(older, ["topics.json", "novelty.npz"], {}, format_version=3)
    with pytest.raises(BundleError, match=r"format version 3 predates update .* assign still reads it"):
        run_update(spark, str(older), str(work / "new.csv"), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["no_usable_rows", "other_text_column"])
def test_new_data_it_cannot_use_is_one_line_and_exit_2(spark, updated, tmp_path, monkeypatch, capsys, case):
    work, _ = updated
    # The console script in this process, on the suite's session (which it must not stop): no second JVM.
    monkeypatch.setattr(spark, "stop", lambda: None)
    monkeypatch.setattr(cli, "build_local_session", lambda _config, verbose: spark)
    if case == "no_usable_rows":
        pd.DataFrame({"review": ["", "  ", "!!!"] * 5}).to_csv(tmp_path / "new.csv", index=False)
    else:
        pd.DataFrame({"body": ["a haunted house"] * 5}).to_csv(tmp_path / "new.csv", index=False)
    code = cli.main(["update", "--model", str(work / "trained" / "model"), "--input", str(tmp_path / "new.csv"),
                     "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("n2d-spark: error: ")
    assert not (tmp_path / "out").exists()
    if case == "other_text_column":
        assert "'review'" in err[0] and "body" in err[0]


def test_update_refuses_settings_that_change_the_model(updated, tmp_path, capsys):
    work, _ = updated
    code = cli.main(["update", "--model", str(work / "trained" / "model"), "--input", str(work / "new.csv"),
                     "--output", str(tmp_path / "out"), "--set", "cluster.k=3"])
    assert code == 2 and "update can set" in capsys.readouterr().err
    check_assign_overrides(["update.min_topic_rows=10"], "update")
    with pytest.raises(ConfigError, match="assign can set"):
        check_assign_overrides(["update.min_topic_rows=10"], "assign")


def test_in_the_terms_space_words_outside_the_vocabulary_tell_a_new_row():
    """A text model measures novelty in its rows' terms, with one more column for the words outside its
    vocabulary: rows whose known words look like the training rows' but which bring many unknown words are new;
    rows like the training rows are not."""
    counts = sp.csr_matrix(np.array([[2, 0, 1], [0, 0, 0]], np.float32))
    np.testing.assert_array_equal(
        term_points(counts, np.array([5, 4]), np.array([1.0, 2.0, 0.5], np.float32)).toarray(),
        [[2, 0, 0.5, 2], [0, 0, 0, 4]],
    )

    rng = np.random.default_rng(0)

    def rows(n, unknown):
        # Five topics of 20 terms each; a row draws 6 words from its topic, plus ``unknown`` words outside the vocabulary.
        topics = rng.integers(0, 5, n)
        terms = topics[:, None] * 20 + rng.integers(0, 20, (n, 6))
        counts = sp.csr_matrix((np.ones(terms.size, np.float32), (np.repeat(np.arange(n), 6), terms.ravel())), shape=(n, 100))
        return counts, counts.sum(axis=1).A1 + unknown(n)

    train, train_words = rows(2000, lambda n: rng.integers(0, 3, n))
    idf = smoothed_idf(train)
    calibration = calibrate(term_points(train, train_words, idf), "cosine", seed=0, idf=idf)
    known_like, words = rows(600, lambda n: rng.integers(0, 3, n))
    bringing_new_words, new_words = rows(400, lambda n: rng.integers(8, 12, n))
    points = term_points(sp.vstack([known_like, bringing_new_words], format="csr"), np.concatenate([words, new_words]), idf)
    known = calibration.known_rows(np.zeros((0, 2)), points.shape[0])
    ratios = density_ratios(points, known, points, np.ones(points.shape[0], bool), calibration.neighbours, "cosine")
    is_new = ratios / np.median(ratios) / calibration.threshold(0.98) > 1
    assert is_new[600:].mean() >= 0.9 and is_new[:600].mean() <= 0.1


def test_the_terms_space_is_calibrated_on_rows_with_terms_and_left_out_when_too_few():
    """Rows without a vocabulary term (never embedded, so never scored) stay out of the terms' calibration; a
    sample too small to halve leaves a text model with the embedding's novelty alone; vector mode has only it."""
    rng = np.random.default_rng(0)
    fit_embeddings = rng.normal(size=(400, 4)).astype(np.float32)
    config = load_config(None)

    def sample(n_rows, n_empty):
        counts = rng.integers(0, 3, (n_rows, 30)) * (rng.random((n_rows, 30)) < 0.2)
        counts[np.arange(n_rows), rng.integers(0, 30, n_rows)] += 1  # every row has a vocabulary term
        counts = sp.csr_matrix(np.vstack([counts, np.zeros((n_empty, 30))]).astype(np.float32))
        return counts, np.asarray(counts.sum(axis=1)).ravel() + 3

    counts, words = sample(200, 60)
    signals = calibrate_novelty(fit_embeddings, counts, words, config)
    assert signals.embedding.sample_rows == 200 and signals.terms.sample_rows == 100
    # Every known row has a vocabulary term besides its column of words outside the vocabulary.
    assert (np.diff(signals.terms.known[:, :-1].tocsr().indptr) > 0).all()
    # 31 rows with terms halve into 15, too few for the 15th nearest row; with the 40 empty ones they would not.
    small, small_words = sample(31, 40)
    assert calibrate_novelty(fit_embeddings, small, small_words, config).terms is None
    vector = calibrate_novelty(fit_embeddings, fit_embeddings, None, config)
    assert vector.terms is None and np.array_equal(vector.embedding.quantiles, signals.embedding.quantiles)


def test_a_rows_novelty_is_the_geometric_mean_of_its_novelty_in_each_space():
    """Each space's novelty is the ratio over its scale; the row's is their geometric mean, so a row far out in
    one space and ordinary in the other can be new, and a row repeated among the new rows (ratio 0) never is."""
    in_embedding = log_novelty_in_space(np.array([2.0, 0.9, 1.2, 0.0]), scale=1.0)
    in_terms = log_novelty_in_space(np.array([4.0, 3.0, 0.6, 5.0]), scale=2.0)
    novelty = np.exp((in_embedding + in_terms) / 2)
    np.testing.assert_allclose(novelty[:3], [np.sqrt(2 * 2), np.sqrt(0.9 * 1.5), np.sqrt(1.2 * 0.3)])
    assert (novelty > 1).tolist() == [True, True, False, False] and novelty[3] == 0


def _model_with_an_added_topic():
    """A model with two topics of fit rows near (0, 0) and (0, 3) (their UMAP coordinates the same), an added topic 7
    near (10, 10), and the terms: words 0-1 the training rows', 2-3 the added topic's."""
    from types import SimpleNamespace

    from n2d_spark.model.assigner import AddedTopics
    from n2d_spark.model.cluster import fit_clusters
    from n2d_spark.model.novelty import TERMS, NoveltyCalibration

    rng = np.random.default_rng(0)
    fit_rows = np.vstack([rng.normal(0, 0.1, (10, 2)), rng.normal([0, 3], 0.1, (10, 2))]).astype(np.float32)
    clusters, _ = fit_clusters(fit_rows, load_config(None, ["cluster.k=2"]).cluster)
    added = AddedTopics.appended(None, rng.normal(10, 0.1, (20, 2)), np.full(20, 7), neighbours=5, metric="euclidean")
    assigner = SimpleNamespace(added=added, fit_rows=fit_rows, known_rows=np.vstack([fit_rows, added.rows]), clusters=clusters)
    known = sp.csr_matrix(np.vstack([np.tile([1, 1, 0, 0, 0], (20, 1)), np.tile([0, 0, 1, 1, 0], (20, 1))]).astype(np.float32))
    terms = NoveltyCalibration(5, 20, 0, "cosine", np.linspace(0, 2, 1001), TERMS, np.ones(4, np.float32), known, training_known_rows=20)
    return assigner, terms


def test_a_row_the_embedding_moves_to_a_new_topic_joins_it_only_if_its_terms_lie_there_too(spark):
    """At an update, a novel row whose embedding lies among a new topic's rows joins it only when more than half
    of its nearest known rows in its terms are rows of added topics too; otherwise it keeps the old model's label."""
    from pyspark.ml.linalg import Vectors

    from n2d_spark.model.novelty import NoveltyCalibration
    from n2d_spark.rows.update import relabelled

    assigner, terms = _model_with_an_added_topic()
    idf = terms.idf
    assert terms.added_neighbour_share(term_points(sp.csr_matrix([[0, 0, 2, 1], [2, 1, 0, 0]]), np.array([3, 3]), idf), 5).tolist() == [1, 0]
    rows = spark.createDataFrame(
        [
            (1, [10.0, 10.0], 0, 0.9, 1, Vectors.sparse(4, [2, 3], [1.0, 1.0]), 2),  # the new topic's words: joins
            (2, [10.0, 10.0], 0, 0.9, 1, Vectors.sparse(4, [0, 1], [1.0, 1.0]), 2),  # its old topic's words: stays
            (3, [0.0, 0.0], 2, 0.8, 0, Vectors.sparse(4, [2, 3], [1.0, 1.0]), 2),  # among the fit rows: stays
        ],
        ["id", "embedding", "cluster", "confidence", "second_cluster", "terms", "_n_words"],
    )
    moved = relabelled(rows, assigner, terms, "terms", [7])
    assert "terms" not in moved.columns and "_n_words" not in moved.columns
    moved = moved.toPandas().set_index("id")
    assert moved["cluster"].to_dict() == {1: 7, 2: 0, 3: 2}
    assert moved.loc[2, "second_cluster"] == 1 and moved.loc[1, "second_cluster"] == 0
    # Where the terms keep a tenth of the embedding's rows, the vote takes k times that, at least 5.
    from types import SimpleNamespace

    from n2d_spark.rows.update import terms_vote_neighbours

    def fitted_on(n_rows):
        return SimpleNamespace(added=SimpleNamespace(neighbours=15), fit_rows=np.zeros((n_rows, 2)))

    assert terms_vote_neighbours(fitted_on(200), terms) == 5 and terms_vote_neighbours(fitted_on(20), terms) == 15
    # A bundle that cannot tell its added rows in the terms: the embedding alone decides.
    untold = relabelled(rows, assigner, NoveltyCalibration(5, 20, 0, "cosine", np.linspace(0, 2, 1001), TERMS, idf, terms.known), "terms", [7])
    assert untold.toPandas().set_index("id")["cluster"].to_dict() == {1: 7, 2: 7, 3: 2}


def test_an_update_moves_a_novel_row_into_its_own_new_topics_only(spark):
    """Two updates: the first added topic 7, the second adds topic 8. A novel row of the second whose nearest known rows
    are mostly added rows only because topic 8's rows came near, and mostly topic 7's among those, keeps the old
    model's label: the old model had topic 7 and did not give it. A row among topic 8's rows joins it."""
    from types import SimpleNamespace

    from n2d_spark.model.assigner import AddedTopics, Assignment
    from n2d_spark.rows.update import relabelled

    rng = np.random.default_rng(0)
    # Near (5, 5): two fit rows at 0.3, two rows of topic 7 at 0.25 and one of topic 8 at 0.49; the rest far off.
    fit_rows = np.vstack([rng.normal(0, 0.1, (10, 2)), rng.normal([0, 3], 0.1, (10, 2)), [[5.0, 5.3], [5.0, 4.7]]])
    first = AddedTopics.appended(None, np.vstack([rng.normal(10, 0.1, (20, 2)), [[5.25, 5], [4.75, 5]]]), np.full(22, 7), 5, "euclidean")
    second = AddedTopics.appended(first, np.vstack([rng.normal([10, -10], 0.1, (20, 2)), [[5.35, 5.35]]]), np.full(21, 8), 5, "euclidean")
    # The first update's model leaves the row at (5, 5) where the original model puts it.
    given = Assignment(np.zeros((1, 0)), np.array([1]), np.array([0.6]), np.array([0]))
    assert first.relabel(given, np.array([[5.0, 5.0]]), np.vstack([fit_rows, first.rows]).astype(np.float32)).labels.tolist() == [1]
    assigner = SimpleNamespace(added=second, known_rows=np.vstack([fit_rows, second.rows]).astype(np.float32))
    rows = spark.createDataFrame(
        [(1, [5.0, 5.0], 1, 0.6, 0), (2, [10.0, -10.0], 0, 0.3, 1)], ["id", "embedding", "cluster", "confidence", "second_cluster"],
    )
    moved = relabelled(rows, assigner, None, None, [8]).toPandas().set_index("id")
    assert moved["cluster"].to_dict() == {1: 1, 2: 8}
    assert moved.loc[1, "second_cluster"] == 0 and moved.loc[2, "second_cluster"] == 0


def test_an_updated_model_gives_an_added_topic_only_rows_whose_terms_lie_among_its_rows(spark):
    """``assign`` and the estimator's transform with an updated model: a row the embedding put in an added topic
    whose terms lie among the training rows gets the label the model had before its updates, from its UMAP
    coordinates, with that label's confidence and second topic; the other rows are as they were."""
    from pyspark.ml.linalg import Vectors

    from n2d_spark.rows.assign import assignment_schema
    from n2d_spark.rows.update import checked_in_terms

    assigner, terms = _model_with_an_added_topic()
    near_second = int(assigner.clusters.predict(np.array([[0.0, 3.0]], np.float32))[0])
    assigned = spark.createDataFrame(
        [(1, 7, [0.0, 3.0], 0.9, near_second), (2, 7, [0.0, 3.0], 0.9, near_second), (3, near_second, [0.0, 3.0], 0.5, 7)],
        assignment_schema(T.LongType()),
    )
    vectors = spark.createDataFrame(
        [(i, Vectors.sparse(4, words, [1.0, 1.0]), 2) for i, words in ((1, [2, 3]), (2, [0, 1]), (3, [2, 3]))],
        ["id", "terms", "_n_words"],
    )
    checked = checked_in_terms(assigned, vectors, "terms", assigner, terms)
    assert checked.schema == assigned.schema
    rows = checked.toPandas().set_index("id")
    assert rows["cluster"].to_dict() == {1: 7, 2: near_second, 3: near_second}
    confidence, second = assigner.clusters.confidence(np.array([[0.0, 3.0]], np.float32), np.array([near_second]))
    assert rows.loc[2, "confidence"] == pytest.approx(float(confidence[0])) and rows.loc[2, "second_cluster"] == second[0]
    assert rows.loc[3, "confidence"] == pytest.approx(0.5) and rows.loc[1, "confidence"] == pytest.approx(0.9)


def test_the_terms_known_rows_count_the_training_runs_through_a_bundle():
    """The terms space's calibration keeps how many of its known rows are the training run's through the bundle's arrays
    and an update's added rows; a calibration saved before that count is read without it."""
    from n2d_spark.model.novelty import NoveltyCalibration

    rng = np.random.default_rng(1)
    counts = sp.csr_matrix(rng.integers(0, 3, (200, 30)).astype(np.float32))
    idf = smoothed_idf(counts)
    calibration = calibrate(term_points(counts, counts.sum(axis=1).A1 + 2, idf), "cosine", seed=0, idf=idf)
    assert calibration.training_known_rows == calibration.known.shape[0] == 100
    grown = calibration.with_known(sp.csr_matrix(np.ones((40, 31), np.float32)), share=0.5)
    assert grown.known.shape[0] == 120 and grown.training_known_rows == 100
    # Each topic keeps its share of rows, and at least one: a small topic keeps rows to vote for it.
    by_topic = calibration.with_known(sp.csr_matrix(np.ones((40, 31), np.float32)), share=0.1, topics=np.repeat([7, 8], [38, 2]))
    assert by_topic.known.shape[0] == 100 + 4 + 1
    arrays, scalars = grown.to_arrays()
    assert NoveltyCalibration.from_arrays(arrays, scalars).training_known_rows == 100
    del scalars["training_known_rows"]
    assert NoveltyCalibration.from_arrays(arrays, scalars).training_known_rows is None
    with pytest.raises(ValueError, match="training_known_rows"):
        NoveltyCalibration.from_arrays(arrays, {**scalars, "training_known_rows": 121})


def test_a_new_topic_dropped_after_the_rows_are_checked_leaves_the_others_numbered_after_the_model():
    """A new topic too few rows join is dropped from the update: its rows leave the added topics and the terms' known
    rows, the topics after it take the ids from the first new one on, and an earlier update's topics stay as they were."""
    from n2d_spark.model.assigner import AddedTopics
    from n2d_spark.rows.update import NewTopics

    earlier = AddedTopics.appended(None, np.zeros((2, 2)), np.array([7, 7]), neighbours=5, metric="euclidean")
    added = AddedTopics.appended(earlier, np.ones((6, 2)), np.array([8, 8, 9, 9, 10, 10]), neighbours=5, metric="euclidean")
    found = NewTopics(added, [8, 9, 10], {"found": 3}, sp.csr_matrix(np.eye(6, dtype=np.float32)), np.array([8, 8, 9, 9, 10, 10]))
    kept = found.without([9])
    assert kept.topic_ids == [8, 9] and kept.about["found"] == 2 and kept.about["too_few_rows_joined"] == 1
    assert kept.added.topics.tolist() == [7, 7, 8, 8, 9, 9] and kept.added.generation.tolist() == [1, 1, 2, 2, 2, 2]
    assert kept.known_terms_topics.tolist() == [8, 8, 9, 9] and kept.known_terms.toarray()[:, [0, 1, 4, 5]].sum() == 4
    none_left = kept.without([8, 9])
    assert none_left.topic_ids == [] and none_left.added.topics.tolist() == [7, 7] and "why_none" in none_left.about
    assert NewTopics(AddedTopics.appended(None, np.ones((2, 2)), np.array([3, 3]), 5, "euclidean"), [3], {}).without([3]).added is None


def test_after_several_updates_the_added_rows_stay_within_the_models_fit_rows():
    """Each update appends its new topics' sampled rows to the added topics, which every assign searches and ships:
    they stay within a bound (the model's fit rows' count). Each topic keeps at most the same number of rows, a small
    topic all of its own, none is lost, and a topic cut at a later update keeps a part of the rows it had."""
    from n2d_spark.rows.update import added_within

    rng = np.random.default_rng(0)
    bound, added, history = 100, None, []
    for generation, sizes in enumerate([{7: 80}, {8: 60, 9: 5}, {10: 90, 11: 30}], start=1):
        topics = np.repeat(list(sizes), list(sizes.values()))
        rows = rng.normal(size=(len(topics), 3)).astype(np.float32)
        added, kept = added_within(added, rows, topics, bound, 0, 5, "euclidean")
        # ``kept``: which of the update's rows the model stores, in the order stored (its terms keep the same rows).
        np.testing.assert_array_equal(added.rows[added.generation == generation], rows[kept])
        assert len(added.rows) <= bound and len(added.rows) == len(added.topics) == len(added.generation)
        history.append(added)

    def kept_of(added, topic):
        return {tuple(row) for row in added.rows[added.topics == topic]}

    assert len(history[0].rows) == 80
    assert dict(zip(*np.unique(history[1].topics, return_counts=True))) == {7: 47, 8: 47, 9: 5}
    assert dict(zip(*np.unique(history[2].topics, return_counts=True))) == {7: 23, 8: 23, 9: 5, 10: 23, 11: 23}
    assert kept_of(history[2], 7) < kept_of(history[1], 7) < kept_of(history[0], 7)
    assert kept_of(history[2], 9) == kept_of(history[1], 9)


def test_after_several_updates_the_terms_known_rows_of_added_topics_stay_within_the_training_runs():
    """The terms space keeps a share of each update's rows as known rows: at most as many as the training run's
    in all, the training run's all kept."""
    from n2d_spark.rows.update import terms_known_within

    rng = np.random.default_rng(1)
    counts = sp.csr_matrix(rng.integers(0, 3, (200, 30)).astype(np.float32))
    idf = smoothed_idf(counts)
    terms = calibrate(term_points(counts, counts.sum(axis=1).A1 + 2, idf), "cosine", seed=0, idf=idf)
    training = terms.known.toarray()
    for update in range(4):
        new_rows = sp.csr_matrix(rng.random((60, 31)).astype(np.float32))
        terms = terms_known_within(terms.with_known(new_rows, share=1.0, topics=np.repeat([7 + update], 60)))
        assert terms.known.shape[0] <= 2 * terms.training_known_rows == 200
    assert terms.known.shape[0] == 200
    np.testing.assert_array_equal(terms.known[:100].toarray(), training)


def test_rows_novel_by_chance_form_no_group_however_many_rows_the_new_data_has():
    """The group test weighs each sampled novel row by the share of the new data it stands for: the fringe of a known
    topic (its 3% farthest rows, of 60,000 new rows against a 400-row known sample) outnumbers the known rows near it
    and passes unweighed, but not weighed; a new subject beside the known rows, some of them among its
    rows' nearest, passes both ways."""
    from n2d_spark.rows.update import novel_row_weight, novel_weight_shares

    rng = np.random.default_rng(0)
    known = rng.normal(size=(400, 8)).astype(np.float32)
    new_data = rng.normal(size=(60_000, 8))
    radius = np.linalg.norm(new_data, axis=1)
    fringe = new_data[radius > np.quantile(radius, 0.97)]
    subject = rng.normal(size=(1_500, 8)) * 0.7 + 1.5
    novel = np.vstack([fringe, subject]).astype(np.float32)
    labels = np.repeat([0, 1], [len(fringe), len(subject)])
    sampled = rng.permutation(len(novel))[:2_000]
    weight = novel_row_weight(len(novel), len(sampled), len(new_data) + len(subject), len(known))
    assert weight < 0.02
    unweighed = novel_weight_shares(novel[sampled], labels[sampled], known, 1.0, 15, "euclidean")
    weighed = novel_weight_shares(novel[sampled], labels[sampled], known, weight, 15, "euclidean")
    assert unweighed[0] > 0.6 and weighed[0] < 0.2
    assert unweighed[1] > 0.9 and 0.6 < weighed[1] < unweighed[1]


def test_a_group_is_a_known_topic_grown_when_the_old_model_labels_it_surely_and_knows_its_words():
    from n2d_spark.rows.update import KnownTopicGrown

    rng = np.random.default_rng(0)
    one_topic, spread = np.zeros(100, np.int32), rng.integers(0, 4, 100).astype(np.int32)
    sure, unsure = np.full(100, 0.95, np.float32), np.full(100, 0.3, np.float32)
    words, known_words, few_known = np.full(100, 20.0), np.full(100, 19.0), np.full(100, 12.0)
    members = np.ones(100, bool)

    def grown(labels, confidence, known):
        return KnownTopicGrown(labels, confidence, 0.96, words, known, training_oov=0.02, oov_rise=0.05).about(members)

    assert grown(one_topic, sure, known_words) == {
        "old_topic_share": 1.0, "old_confidence": 0.95, "out_of_vocabulary_share": 0.05, "a_known_topic_grown": True,
    }
    assert not grown(spread, sure, known_words)["a_known_topic_grown"]
    assert not grown(one_topic, unsure, known_words)["a_known_topic_grown"]
    # A new subject a coarse model puts in one of its topics as surely: 40% of its words are outside the vocabulary.
    assert not grown(one_topic, sure, few_known)["a_known_topic_grown"]


def test_a_known_genre_that_grows_in_the_new_data_is_no_new_topic(spark, updated):
    """New data half horror, a seventh of the training data: its horror rows are denser than the training's, so many
    are novel and form groups; the old model labels those groups horror as surely as its own rows, and knows
    their words, so none is new."""
    work, _ = updated
    reviews = generate_reviews(4000, seed=2)
    horror = reviews[reviews["topic"] == "horror"]
    others = reviews[~reviews["topic"].isin(["horror", WITHHELD])].head(len(horror))
    new = write_corpus(pd.concat([horror, others]), work / "horror-half.csv")
    update = run_update(spark, str(work / "trained" / "model"), str(new), str(work / "horror-half"), ["evaluate.label_col=topic"]).manifest["update"]
    assert update["novel_row_share"] > 0.2
    assert update["new_topics"] == [] and update["new_rows"] == 0
    # Groups that pass the group test and are large enough: stopped only because they are horror grown.
    stopped = [c for c in update["new_topic_search"]["candidates"] if c["novel_weight_share"] > 0.5 and c["rows"] >= 50]
    assert stopped and all(c["a_known_topic_grown"] and c["old_topic_share"] >= 0.9 for c in stopped)

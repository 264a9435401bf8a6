"""End to end: the whole job on real Spark, through the Python API and the console script (spark-submit: tests/test_standalone.py)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plotly.offline import get_plotlyjs
from sklearn.metrics import adjusted_rand_score

from pyspark.sql import functions as F

from n2d_spark import cli
from n2d_spark.core.config import load_config
from n2d_spark.model.cluster import fit_clusters
from n2d_spark.outputs.catalog import TableError
from n2d_spark.outputs.queries import QUERIES, duckdb_parquet, render, spark_parquet
from n2d_spark.core.errors import InputError
from n2d_spark.lookup import similar_rows
from n2d_spark.pipeline import run_assign, run_job, run_update
from n2d_spark.rows.sampling import collect_sample
from n2d_spark.synthetic import GENRES, generate_reviews, write_corpus

from conftest import IMDB_CSV, REPO, as_format_1, requires_imdb

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def synthetic_run(spark, tmp_path_factory):
    """The default config on a 5,000-review synthetic corpus with dates, run once for the tests below.

    Two columns are named as Spark would misread them unquoted: a dot (a struct's field) and a backtick.
    """
    work = tmp_path_factory.mktemp("synthetic")
    reviews = generate_reviews(5000, seed=0, dates=True, users=200).rename(
        columns={"sentiment": "meta.sentiment", "date": "when`day"}
    )
    corpus = write_corpus(reviews, work / "synthetic.csv.gz")
    config = load_config(REPO / "conf" / "synthetic.yaml", ["input.time_col=when`day", "input.user_col=user"])
    result = run_job(spark, config, str(corpus), str(work / "out"))
    return work / "out", result.manifest


def test_planted_topics_are_recovered(synthetic_run):
    _, manifest = synthetic_run
    assert manifest["evaluation"]["label_col"] == "topic"
    assert manifest["evaluation"]["ari"] >= 0.9


def test_every_row_is_labelled_once(spark, synthetic_run):
    out, manifest = synthetic_run
    labels = spark.read.parquet(str(out / "labels"))
    assert manifest["rows"] == {
        "in": 5000, "labelled": 5000, "rejected": 0, "autoencoder_sample": 5000,
        "manifold_fit": 5000, "assigned_on_executors": 0,
    }
    assert manifest["rejected_by_reason"] == {}
    assert labels.count() == 5000
    assert labels.select("id").distinct().count() == 5000
    assert labels.filter("cluster IS NULL OR umap IS NULL").count() == 0


def test_output_layout_and_schema(spark, synthetic_run):
    out, manifest = synthetic_run
    labels = spark.read.parquet(str(out / "labels"))
    assert labels.columns == ["id", "cluster", "umap", "confidence", "second_cluster", "run_id", "model_id", "meta.sentiment", "topic", "when`day", "user"]
    assert spark.read.parquet(str(out / "rejected")).count() == 0
    assert dict(labels.dtypes) == {
        "id": "bigint", "cluster": "int", "umap": "array<float>", "confidence": "float", "second_cluster": "int", "run_id": "string", "model_id": "string",
        "meta.sentiment": "string", "topic": "string", "when`day": "string", "user": "string",
    }
    assert labels.select("run_id", "model_id").distinct().collect() == [(manifest["run_id"], manifest["model_id"])]
    # Spark reads every Parquet column back as nullable: "never null" is checked on the values.
    never_null = ("id", "cluster", "umap", "confidence", "second_cluster", "run_id", "model_id")
    assert labels.filter(" OR ".join(f"{c} IS NULL" for c in never_null)).count() == 0
    assert {len(r["umap"]) for r in labels.select("umap").collect()} == {5}
    clusters = spark.read.parquet(str(out / "clusters")).toPandas()
    sizes = labels.groupBy("cluster").count().toPandas().set_index("cluster")["count"].to_dict()
    assert clusters.set_index("cluster")["size"].to_dict() == sizes
    assert all(1 <= len(terms) <= 10 for terms in clusters["top_terms"])
    # Three example ids per cluster, each labelled with that cluster.
    examples = clusters.explode("example_ids").rename(columns={"example_ids": "id"}).astype({"id": "int64"})
    assert (clusters["example_ids"].map(len) == clusters["size"].clip(upper=3)).all()
    assert examples.merge(labels.select("id", "cluster").toPandas(), on=["id", "cluster"]).shape[0] == len(examples)
    # Planted genres' words co-occur: every sizeable cluster's top terms cohere.
    assert clusters.loc[clusters["size"] > 200, "coherence"].between(0.0, 1.0).all()
    # Each topic is named by its cluster number and its three best terms.
    assert clusters["name"].tolist() == ["_".join([str(c), *t[:3]]) for c, t in zip(clusters["cluster"], clusters["top_terms"])]
    assert clusters["merged_from"].map(list).tolist() == [[c] for c in clusters["cluster"]]
    # A trained model's topics first appeared in it.
    assert (clusters["first_model"] == manifest["model_id"]).all()
    # The hierarchy over the clusters: one merge fewer than clusters, its root holding them all.
    tree = spark.read.parquet(str(out / "topic_tree")).toPandas().sort_values("node")
    found = sorted(c for c in clusters["cluster"] if c != -1)
    assert len(tree) == len(found) - 1 and sorted(tree["clusters"].iloc[-1]) == found
    assert 0.0 < manifest["clusters"]["silhouette"] <= 1.0
    assert (out / "model" / "encoder.npz").is_file()
    assert (out / "model" / "text.json").is_file() and not (out / "model" / "text_pipeline").exists()
    assert not list(out.parent.glob("out.staging-*"))


def test_confidence_is_highest_at_a_clusters_centre(spark, synthetic_run):
    """Every row's confidence is in [0, 1]; within each cluster, the rows nearest its centre (in the
    manifold) are surer than those farthest from it; the second cluster is another cluster."""
    out, _ = synthetic_run
    labels = spark.read.parquet(str(out / "labels")).select("cluster", "umap", "confidence", "second_cluster").toPandas()
    assert labels["confidence"].between(0, 1).all()
    clusters = set(labels["cluster"])
    assert len(clusters) > 1 and set(labels["second_cluster"]) <= clusters
    assert (labels["second_cluster"] != labels["cluster"]).all()
    for _, rows in labels.groupby("cluster"):
        points = np.vstack(rows["umap"].to_numpy())
        order = np.argsort(np.linalg.norm(points - points.mean(axis=0), axis=1))
        fifth = max(1, len(order) // 5)
        centre, edge = rows["confidence"].to_numpy()[order[:fifth]], rows["confidence"].to_numpy()[order[-fifth:]]
        assert centre.mean() > edge.mean()


def test_report_is_written_beside_the_output(synthetic_run):
    out, manifest = synthetic_run
    report = out / "report"
    # Hadoop's local file system adds hidden .crc checksum files beside each.
    assert sorted(p.name for p in report.iterdir() if not p.name.startswith(".")) == [
        "cluster_sizes.png", "loss.png", "map_clusters.png", "map_labels.png", "report.html", "topic_tree.png"
    ]
    html = (report / "report.html").read_text()
    assert html.count(get_plotlyjs()) == 1
    # The five plots as images (plotly.js itself holds that prefix too).
    assert html.replace(get_plotlyjs(), "").count("data:image/png;base64,") == 5
    for view in ("n2d-map", "n2d-topics", "n2d-time"):
        assert f'<div id="{view}"' in html, view
    # Under the 15 MB, with plotly.js (about 5 MB) inline.
    assert (report / "report.html").stat().st_size < 15_000_000
    assert f"{manifest['topics']['npmi']:.3f}" in html and "sliding windows of 10 terms" in html
    assert f"{manifest['evaluation']['nmi']:.3f}" in html


def test_topics_over_time_show_the_planted_trends(spark, synthetic_run):
    from n2d_spark.synthetic import TRENDS

    out, manifest = synthetic_run
    about = manifest["topics_over_time"]
    # Two years of dates: auto picks months.
    assert about["bucket"] == "month" and about["periods"] == 24 and about["rows_without_time"] == 0
    table = spark.read.parquet(str(out / "topics_over_time")).toPandas()
    assert table["rows"].sum() == 5000
    assert table.groupby("period")["share"].sum().round(9).eq(1.0).all()
    labels = spark.read.parquet(str(out / "labels")).toPandas()
    topic_of_cluster = labels.groupby("cluster")["topic"].agg(lambda t: t.mode()[0])
    periods = sorted(table["period"].unique())

    def share(genre: str, months) -> float:
        clusters = topic_of_cluster[topic_of_cluster == genre].index
        rows = table[table["period"].isin(months)]
        return rows.loc[rows["cluster"].isin(clusters), "rows"].sum() / rows["rows"].sum()

    first, last = periods[:6], periods[-6:]
    # Planted: the rising genre's dates have density 3u^2 over the span, the fading one's 3(1-u)^2,
    # so its share of the first (last) quarter's rows is about 1% against about 27%.
    assert share(TRENDS["rising"], first) < 0.05 < 0.18 < share(TRENDS["rising"], last)
    assert share(TRENDS["fading"], last) < 0.05 < 0.18 < share(TRENDS["fading"], first)
    # A period's top terms come from its own rows: the rising genre's words name its cluster in the last month.
    rising = topic_of_cluster[topic_of_cluster == TRENDS["rising"]].index[0]
    terms = table[(table["period"] == periods[-1]) & (table["cluster"] == rising)]["top_terms"].iloc[0]
    assert set(terms[:5]) <= set(GENRES[TRENDS["rising"]].split())


def test_report_renders_offline_in_a_browser(synthetic_run, tmp_path):
    from chromium import probe_report, screenshot

    out, manifest = synthetic_run
    page = out / "report" / "report.html"
    seen, dom = probe_report(page, tmp_path, search_word="spaceship")
    views = seen["views"]
    # Every sampled row is a point; the legend lists every topic (and its rows on the map).
    assert views["map"]["points"] == manifest["config"]["evaluate"]["map_rows"] == 5000
    clusters = pd.read_parquet(out / "clusters")
    assert [entry.rsplit(" (", 1)[0] for entry in views["map"]["legend"]] == clusters["name"].tolist()
    assert views["topics"]["points"] == len(clusters)
    assert len(views["time"]["legend"]) == len(clusters) and views["time"]["points"] == 24 * len(clusters)
    # The search box highlights exactly the rows it counts: some, not all.
    hits = int(seen["search"]["note"].split(" of ")[0])
    assert 0 < hits < 5000 and seen["search"]["highlighted"] == hits
    # Offline: the page asked the network for nothing, and links to nothing outside itself.
    assert seen["requests"] == []
    # (Script text is left out: plotly.js holds URLs for features the report does not use, maps' tiles.)
    elements = re.sub(r"<script\b.*?</script>", "", dom, flags=re.DOTALL | re.IGNORECASE)
    assert "n2d-map" in elements
    assert not re.search(r"""\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", elements, flags=re.IGNORECASE)
    shot = REPO / "test-artifacts" / "report_synthetic.png"
    screenshot(page, shot)
    assert shot.stat().st_size > 50_000


def test_top_terms_name_the_planted_genres(spark, synthetic_run):
    out, _ = synthetic_run
    labels = spark.read.parquet(str(out / "labels")).toPandas()
    clusters = spark.read.parquet(str(out / "clusters")).toPandas()
    for _, row in clusters[clusters["size"] > 200].iterrows():
        topic = labels.loc[labels["cluster"] == row["cluster"], "topic"].mode()[0]
        assert set(row["top_terms"][:5]) <= set(GENRES[topic].split()), (topic, row["top_terms"])


def test_neighbours_of_every_row_mostly_share_its_planted_topic(spark, synthetic_run):
    out, manifest = synthetic_run
    neighbours = spark.read.parquet(str(out / "neighbours"))
    assert neighbours.columns == ["id", "neighbour_id", "rank", "similarity", "run_id", "model_id"]
    assert neighbours.count() == 5000 * 10 and neighbours.select("id").distinct().count() == 5000
    # embeddings/, which `n2d-spark similar` searches: every labelled row's embedding, once.
    embeddings = spark.read.parquet(str(out / "embeddings"))
    assert [(f.name, f.dataType.simpleString()) for f in embeddings.schema] == [("id", "bigint"), ("embedding", "array<float>")]
    assert embeddings.count() == 5000 and embeddings.select("id").distinct().count() == 5000
    assert manifest["neighbours"] == {
        "k": 10, "similarity": "cosine of the autoencoder's embeddings", "cells": 3, "probes": 3, "rows_with_fewer_than_k": 0,
    }
    topics = spark.read.parquet(str(out / "labels")).select("id", "topic")
    theirs = topics.select(F.col("id").alias("neighbour_id"), F.col("topic").alias("their_topic"))
    pairs = neighbours.join(topics, "id").join(theirs, "neighbour_id")
    # Precision@10 against the planted topics (1.0 on this machine): 0.9 leaves room for another CPU.
    assert pairs.filter("topic = their_topic").count() / pairs.count() >= 0.9


def test_similar_reviewers_share_their_planted_favourite_genre(spark, synthetic_run):
    """200 reviewers, each writing 70% of their reviews in one genre (synthetic._planted_users)."""
    out, manifest = synthetic_run
    assert manifest["users"] == {"users": 200, "min_user_rows": 3, "with_similar_users": 200}
    users = spark.read.parquet(str(out / "users")).toPandas().set_index("user")
    assert list(users.columns) == ["rows", "topics", "run_id", "model_id"] and users["rows"].sum() == 5000
    shares = [[t["share"] for t in topics] for topics in users["topics"]]
    assert all(0 < len(s) <= 3 and s == sorted(s, reverse=True) and sum(s) <= 1.0 + 1e-9 for s in shares)
    labels = spark.read.parquet(str(out / "labels")).select("user", "topic").toPandas()
    favourite = labels.groupby("user")["topic"].agg(lambda topics: topics.value_counts().idxmax())
    similar_users = spark.read.parquet(str(out / "similar_users")).toPandas()
    assert list(similar_users.columns) == ["user", "neighbour", "rank", "similarity", "run_id", "model_id"]
    top5 = similar_users[similar_users["rank"] <= 5]
    assert len(top5) == 200 * 5 and not (top5["user"] == top5["neighbour"]).any()
    agree = (top5["neighbour"].map(favourite) == top5["user"].map(favourite)).groupby(top5["user"]).mean()
    # The bar; measured on this corpus: see docs/similar.md.
    assert agree.mean() >= 0.9


def test_similar_rows_by_id_and_by_text(spark, synthetic_run, tmp_path):
    out, _ = synthetic_run
    labels = spark.read.parquet(str(out / "labels")).select("id", "cluster", "topic").toPandas().set_index("id")
    asked = int(labels.index[17])
    by_id = similar_rows(spark, str(out), 5, row_id=str(asked)).rows
    assert list(by_id.columns) == ["rank", "id", "similarity", "cluster", "name"]  # the output has no text column
    assert by_id["rank"].tolist() == [1, 2, 3, 4, 5] and asked not in set(by_id["id"])
    assert (by_id["similarity"].diff().dropna() <= 0).all()
    # The exact scan agrees with neighbours/ (a cell search) on the best row.
    best = spark.read.parquet(str(out / "neighbours")).filter(f"id = {asked} AND rank = 1").first()["neighbour_id"]
    assert by_id["id"].iloc[0] == best
    sample = generate_reviews(1, seed=9).iloc[0]
    by_text = similar_rows(spark, str(out), 10, text=sample["review"]).rows
    assert len(by_text) == 10
    assert (labels.loc[by_text["id"], "topic"] == sample["topic"]).mean() >= 0.8


@pytest.mark.parametrize("request_, message", [
    ({"row_id": "123456789"}, r"^id 123456789 is not a labelled row of \S+/out$"),
    ({"row_id": "abc"}, r"^id 'abc' is not a whole number, as this output's ids are$"),
    ({"text": "   "}, r"^the text is empty$"),
    ({"text": "zzzqx vvvqk"}, r"^the text has no term of the model's vocabulary$"),
    ({"text": "the and of it"}, r"^the text has nothing to compare: empty after cleaning$"),
])
def test_a_bad_similar_request_is_one_line(spark, synthetic_run, request_, message):
    out, _ = synthetic_run
    with pytest.raises(InputError, match=message):
        similar_rows(spark, str(out), 5, **request_)


def test_similar_on_the_command_line(synthetic_run, tmp_path):
    out, _ = synthetic_run
    result = _cli("similar", "--output", str(out), "--text", "a haunted house and a ghost at night", "--k", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["rank", "id", "similarity", "cluster", "name"] and len(lines) == 4
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "run.json").write_text("{}")
    result = _cli("similar", "--output", str(bare), "--id", "1")
    assert result.returncode == 2 and result.stderr.strip() == (
        f"n2d-spark: error: {bare} has no embeddings/: it was written with similar.k=0, or before this n2d-spark wrote it"
    )


def test_similar_text_refuses_an_output_whose_model_folder_was_retrained(spark, synthetic_run, tmp_path, monkeypatch, capsys):
    """An assign output names its model's folder; once a retrain overwrites that folder, a text would be
    embedded by another encoder than its rows were: one line, exit 2. A run's and an update's output use
    their own model/ (an update's run.json names its parent's folder), so they still answer, and right:
    a row's own text is its best match, at similarity 1."""
    out, _ = synthetic_run
    folder, old, updated, retrained = tmp_path / "model", tmp_path / "old", tmp_path / "updated", tmp_path / "retrained"
    shutil.copytree(out / "model", folder)
    corpus = write_corpus(generate_reviews(600, seed=1), tmp_path / "new.csv")
    first = run_assign(spark, str(folder), str(corpus), str(old)).manifest
    run_update(spark, str(folder), str(corpus), str(updated))
    asked = "a haunted house and a ghost at night"
    assert len(similar_rows(spark, str(old), 3, text=asked).rows) == 3
    # A retrain into the same folder, as `run --output` with output.mode=overwrite replaces its model/.
    small = ["autoencoder.hidden=[64, 32]", "autoencoder.epochs=2", "manifold.n_neighbors=15", "cluster.k=5"]
    again = run_job(spark, load_config(REPO / "conf" / "synthetic.yaml", small), str(corpus), str(retrained)).manifest
    shutil.rmtree(folder)
    shutil.copytree(retrained / "model", folder)
    assert again["model_id"] != first["model_id"]
    assert len(similar_rows(spark, str(retrained), 3, text=asked).rows) == 3
    own_text = pd.read_csv(corpus)["review"].iloc[0]
    assert similar_rows(spark, str(updated), 3, text=own_text).rows["similarity"].iloc[0] > 0.999
    # The console script in this process, on the suite's session (which it must not stop): no second JVM.
    monkeypatch.setattr(spark, "stop", lambda: None)
    monkeypatch.setattr(cli, "build_local_session", lambda _config, verbose=False: spark)
    capsys.readouterr()
    assert cli.main(["similar", "--output", str(old), "--text", asked, "--k", "3"]) == 2
    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err.strip().splitlines()[-1] == (
        f"n2d-spark: error: model bundle {folder} is model {again['model_id']}, but {old} was embedded by "
        f"model {first['model_id']}: the folder has been written since; ask with --id, or label the rows again with this model"
    )


def test_manifest_contents(synthetic_run):
    out, manifest = synthetic_run
    on_disk = json.loads((out / "run.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    assert set(on_disk["stage_seconds"]) == {
        "read", "vectorize", "autoencoder", "embed", "manifold", "cluster", "assign", "evaluate", "write", "neighbours",
        "users", "report",
    }
    assert on_disk["config"]["cluster"]["algorithm"] == "kmeans" and on_disk["config"]["cluster"]["k"] == "auto"
    # The silhouette chose the planted number of topics among the candidates it scored.
    silhouettes = on_disk["clusters"]["k_silhouettes"]
    assert max(silhouettes, key=silhouettes.get) == "8" and on_disk["clusters"]["n_clusters"] == 8
    topics = on_disk["topics"]
    assert 0.2 < topics["npmi"] <= 1.0 and 0.8 <= topics["diversity"] <= 1.0 and topics["documents"] == 5000
    largest = on_disk["clusters"]["largest"]
    assert len(largest) == 5 and largest[0]["share"] >= largest[-1]["share"] and largest[0]["name"].startswith(f"{largest[0]['cluster']}_")
    assert on_disk["versions"]["pyspark"].startswith("4.")
    # Early stopping may end training before the planned epochs (min_steps adds none here: 0).
    epochs = on_disk["autoencoder_epochs"]
    assert epochs["planned"] == on_disk["config"]["autoencoder"]["epochs"]
    assert len(on_disk["autoencoder_history"]["loss"]) == epochs["run"] <= epochs["planned"]
    assert epochs["best"] is None or 1 <= epochs["best"] <= epochs["run"]
    assert on_disk["clusters"]["n_clusters"] >= 2
    assert sum(on_disk["clusters"]["sizes"].values()) + round(on_disk["clusters"]["noise_share"] * 5000) == 5000


def test_fit_on_a_sample_agrees_with_the_fit_on_all_rows(spark, synthetic_run, tmp_path, monkeypatch):
    """manifold.fit_rows below the row count: half the rows fitted, half assigned on the executors."""
    import n2d_spark.rows.fit as fit

    fits, fit_points = [], []

    def recorded_fit_clusters(points, config):
        fitted, labels = fit_clusters(points, config)
        fits.append(labels)
        fit_points.append(points)
        return fitted, labels

    samples = []

    def recorded_collect_sample(rows, column, n_rows, seed):
        ids, matrix = collect_sample(rows, column, n_rows, seed)
        samples.append(ids)
        return ids, matrix

    monkeypatch.setattr(fit, "fit_clusters", recorded_fit_clusters)
    monkeypatch.setattr(fit, "collect_sample", recorded_collect_sample)
    all_rows_out, _ = synthetic_run
    config = load_config(REPO / "conf" / "synthetic.yaml", ["manifold.fit_rows=2500", "similar.k=0"])
    corpus = write_corpus(generate_reviews(5000, seed=0), tmp_path / "synthetic.csv.gz")
    manifest = run_job(spark, config, str(corpus), str(tmp_path / "out")).manifest
    assert manifest["rows"]["manifold_fit"] == 2500 and manifest["rows"]["assigned_on_executors"] == 2500
    assert manifest["rows_per_second_per_core"]["assign"] > 0

    sampled = spark.read.parquet(str(tmp_path / "out" / "labels")).select("id", "cluster").toPandas().set_index("id")
    everything = spark.read.parquet(str(all_rows_out / "labels")).select("id", "cluster").toPandas().set_index("id")
    assert len(sampled) == 5000
    assert adjusted_rand_score(everything.loc[sampled.index, "cluster"], sampled["cluster"]) >= 0.9
    # In text mode the autoencoder's sample comes with each row's word count (collect_term_sample), so the one
    # collect_sample call of the fit picks the manifold's fit sample; its rows keep the fit's own labels.
    assert len(samples) == 1
    fit_ids = samples[0]
    assert len(fit_ids) == 2500
    assert sampled.loc[fit_ids, "cluster"].tolist() == fits[0].tolist()
    # ... and the fit's own UMAP coordinates, to the bit (float32 in labels/).
    umap = spark.read.parquet(str(tmp_path / "out" / "labels")).select("id", "umap").toPandas().set_index("id")
    np.testing.assert_array_equal(np.vstack(umap.loc[fit_ids, "umap"].to_numpy()), fit_points[0].astype(np.float32))
    assert manifest["evaluation"]["ari"] >= 0.9
    # The rows placed outside the fit are as right, against the planted topics, as the fit rows.
    planted = spark.read.parquet(str(tmp_path / "out" / "labels")).select("id", "cluster", "topic").toPandas().set_index("id")
    inside, outside = planted.loc[fit_ids], planted.drop(index=fit_ids)
    assert adjusted_rand_score(outside["topic"], outside["cluster"]) >= adjusted_rand_score(inside["topic"], inside["cluster"]) - 0.02


def test_n2d_beats_kmeans_on_the_raw_vectors(spark, tmp_path):
    """The study's comparison, on a corpus whose planted signal is weak (3-10% of each review's words).

    At the default genre share (10-30%) KMeans on the raw tf-idf vectors recovers the topics
    as well as N2D does (NMI 0.99 or more): the comparison needs a harder corpus.
    """
    corpus = write_corpus(generate_reviews(3000, seed=0, genre_share=(0.03, 0.10)), tmp_path / "weak.csv")
    config = load_config(REPO / "conf" / "synthetic.yaml", ["evaluate.baselines=true", "similar.k=0"])
    manifest = run_job(spark, config, str(corpus), str(tmp_path / "out")).manifest
    baselines = manifest["baselines"]
    assert set(baselines) == {"kmeans_raw", "kmeans_embedding", "n2d"}
    assert baselines["n2d"]["nmi"] == pytest.approx(manifest["evaluation"]["nmi"])
    assert baselines["n2d"]["nmi"] > baselines["kmeans_raw"]["nmi"]
    assert (tmp_path / "out" / "report" / "map_baseline.png").is_file()


def test_assign_labels_new_text_and_reads_the_text_column_it_is_given(spark, synthetic_run, tmp_path):
    """New data has only its text (the model was trained with evaluate.label_col=topic). With
    --set input.text_col=... the model's vocabulary and encoder read that column, whether or not the
    training run's column (review) is beside it; the same texts get the same labels. The names
    hold a dot and a backtick, which Spark reads literally only when quoted."""
    out, _ = synthetic_run
    fresh = generate_reviews(300, seed=5)[["review", "topic"]].rename(columns={"topic": "meta.topic"})
    fresh.insert(0, "doc`id", [f"d{i}" for i in range(300)])
    fresh.to_csv(tmp_path / "review.csv", index=False)
    only = fresh.rename(columns={"review": "body.text"})
    only.to_csv(tmp_path / "body.csv", index=False)
    # The training column beside it, holding what cleaning empties: vectors read from it would be rejects.
    only.assign(review="<br />").to_csv(tmp_path / "both.csv", index=False)

    def labels(name: str, overrides: list[str]) -> pd.DataFrame:
        overrides = ["input.id_col=doc`id", "similar.k=0", *overrides]
        manifest = run_assign(spark, str(out / "model"), str(tmp_path / f"{name}.csv"), str(tmp_path / name), overrides).manifest
        assert manifest["rows"]["labelled"] == 300 and manifest["rows"]["rejected"] == 0
        return spark.read.parquet(str(tmp_path / name / "labels")).toPandas().set_index("id")

    expected = labels("review", [])
    body = labels("body", ["input.text_col=body.text", "evaluate.label_col=meta.topic"])
    assert list(body.columns) == ["cluster", "umap", "confidence", "second_cluster", "run_id", "model_id", "doc`id", "meta.topic"]
    assert body["cluster"].to_dict() == expected["cluster"].to_dict() and len(expected) == 300
    assert labels("both", ["input.text_col=body.text"])["cluster"].to_dict() == expected["cluster"].to_dict()


def test_assign_gives_training_rows_their_training_labels(spark, synthetic_run, tmp_path):
    """A saved model labels its own training rows (all of them transformed, none fitted) as training did."""
    out, manifest = synthetic_run
    corpus = out.parent / "synthetic.csv.gz"
    # A label column given to assign is scored.
    assigned_manifest = run_assign(
        spark, str(out / "model"), str(corpus), str(tmp_path / "assigned"), ["evaluate.label_col=topic"]
    ).manifest
    assert assigned_manifest["evaluation"]["label_col"] == "topic" and assigned_manifest["evaluation"]["ari"] >= 0.9
    assert assigned_manifest["model_id"] == manifest["model_id"]
    assert assigned_manifest["run_id"] != manifest["run_id"]
    assert assigned_manifest["rows"]["assigned_on_executors"] == 5000
    trained = spark.read.parquet(str(out / "labels")).select("id", "cluster")
    assigned = spark.read.parquet(str(tmp_path / "assigned" / "labels")).select("id", F.col("cluster").alias("again"))
    same = trained.join(assigned, "id").filter("cluster = again").count()
    assert same / 5000 >= 0.99


def test_a_damaged_model_is_one_error_line_and_writes_nothing(synthetic_run, tmp_path):
    out, _ = synthetic_run
    model = tmp_path / "model"
    shutil.copytree(out / "model", model)
    umap_part = model / "umap.npz"
    umap_part.write_bytes(umap_part.read_bytes()[:1000])
    result = _cli("assign", "--model", str(model), "--input", str(out.parent / "synthetic.csv.gz"),
                  "--output", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"n2d-spark: error: model bundle {model}: part umap.npz is 1000 bytes, expected "
        f"{(out / 'model' / 'umap.npz').stat().st_size} (truncated or replaced)"
    )
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob("o.staging-*"))


def test_assign_loads_a_pickled_model_only_with_allow_pickle(spark, synthetic_run, tmp_path, monkeypatch, capsys):
    import n2d_spark.cli as cli

    out, _ = synthetic_run
    model = tmp_path / "model"
    shutil.copytree(out / "model", model)
    as_format_1(spark, model)
    generate_reviews(300, seed=5)[["review"]].to_csv(tmp_path / "new.csv", index=False)
    # The console script in this process, on the suite's session (which it must not stop): no second JVM.
    monkeypatch.setattr(spark, "stop", lambda: None)
    monkeypatch.setattr(cli, "build_local_session", lambda _config, verbose: spark)
    arguments = ["assign", "--model", str(model), "--input", str(tmp_path / "new.csv"), "--output", str(tmp_path / "o")]
    assert cli.main(arguments) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"n2d-spark: error: model bundle {model}: format version 1 stores the UMAP and the clusterer as pickles "
        "(umap.pkl, clusters.pkl), and loading a pickle runs code: pass --allow-pickle (load_bundle's "
        "allow_pickle=True) if the bundle is trusted, or train a new model"
    )
    assert not (tmp_path / "o").exists()
    assert cli.main([*arguments, "--allow-pickle"]) == 0
    assert json.loads((tmp_path / "o" / "run.json").read_text())["rows"]["labelled"] == 300


def test_assign_refuses_settings_that_change_the_model(synthetic_run, tmp_path):
    out, _ = synthetic_run
    result = _cli("assign", "--model", str(out / "model"), "--input", str(out.parent / "synthetic.csv.gz"),
                  "--output", str(tmp_path / "o"), "--set", "cluster.eps=0.5")
    assert result.returncode == 2
    assert "n2d-spark: error: --set cluster.eps: fixed by the saved model" in result.stderr


def test_tables_in_the_catalog_and_appended_days(spark, synthetic_run, tmp_path):
    """Two days of new reviews appended to one table with the saved model; fail mode refuses a third."""
    out, manifest = synthetic_run
    model = str(out / "model")
    days = [write_corpus(generate_reviews(300, seed=day), tmp_path / f"day{day}.csv") for day in (1, 2)]
    table = ["output.table=n2d_tests.reviews", "similar.k=0"]
    # The session's warehouse is the working directory's: keep this test's tables in its own folder.
    spark.sql(f"CREATE DATABASE n2d_tests LOCATION '{tmp_path / 'warehouse'}'")
    run_assign(spark, model, str(days[0]), str(tmp_path / "day1"), table)
    with pytest.raises(TableError, match="table n2d_tests.reviews already exists, and the table mode is fail"):
        run_assign(spark, model, str(days[1]), str(tmp_path / "day2"), table)
    assert not (tmp_path / "day2").exists()
    run_assign(spark, model, str(days[1]), str(tmp_path / "day2"), table + ["output.table_mode=append"])
    runs = spark.sql("SELECT run_id, model_id, count(*) AS n FROM n2d_tests.reviews GROUP BY run_id, model_id").collect()
    assert sorted(r["n"] for r in runs) == [300, 300] and {r["model_id"] for r in runs} == {manifest["model_id"]}
    assert spark.table("n2d_tests.reviews_clusters").select("run_id").distinct().count() == 2
    # Rows the table cannot take are refused from the input's columns, before any row is read.
    other = write_corpus(generate_reviews(300, seed=3).assign(shop="web"), tmp_path / "day3.csv")
    with pytest.raises(TableError, match=r"^cannot append to table n2d_tests\.reviews: columns only in the table: none; only in the new rows: shop "):
        run_assign(spark, model, str(other), str(tmp_path / "day3"), table + ["output.table_mode=append"])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("day3")] == ["day3.csv"]


def test_readme_queries_run_on_spark_and_duckdb_alike(spark, synthetic_run):
    import duckdb

    out, _ = synthetic_run
    labels, clusters = str(out / "labels"), str(out / "clusters")
    connection = duckdb.connect()
    for name in QUERIES:
        # below=1: every row counts, so that the synthetic corpus's sure clusters give borders rows too.
        options = {"label_mix": {"label_col": "topic"}, "borders": {"below": 1.0}}.get(name, {})
        on_spark = spark.sql(render(name, labels=spark_parquet(labels), clusters=spark_parquet(clusters), **options))
        on_duckdb = connection.execute(
            render(name, labels=duckdb_parquet(labels), clusters=duckdb_parquet(clusters), **options)
        ).fetchall()
        spark_rows = [tuple(_plain(v) for v in row) for row in on_spark.collect()]
        duckdb_rows = [tuple(_plain(v) for v in row) for row in on_duckdb]
        assert spark_rows == duckdb_rows and spark_rows, name


def _plain(value):
    if isinstance(value, float):
        return round(value, 9)
    return list(value) if isinstance(value, (list, tuple)) else value


@requires_imdb
def test_imdb_slice_end_to_end(spark, tmp_path):
    # A 5,000-row slice written to a temporary file, never into the repo.
    pd.read_csv(IMDB_CSV, nrows=5000).to_csv(tmp_path / "imdb-5000.csv", index=False)
    # Ten epochs, not the extra ones autoencoder.min_steps gives a small sample: the suite's time;
    # the defaults' quality on real text is scripts/quality_bench.py's to measure.
    config = load_config(REPO / "conf" / "imdb.yaml", ["autoencoder.min_steps=0", "similar.k=0"])
    manifest = run_job(spark, config, str(tmp_path / "imdb-5000.csv"), str(tmp_path / "out")).manifest
    assert manifest["rows"]["in"] == manifest["rows"]["labelled"] == 5000
    assert manifest["input_dimension"] == 5000
    labels = spark.read.parquet(str(tmp_path / "out" / "labels"))
    assert labels.count() == 5000
    assert "review" not in labels.columns and "sentiment" in labels.columns
    # Topics that cover the slice, where the study's DBSCAN put every review in one cluster:
    # margins wide enough for any CPU's float results, narrow enough to fail on a blob.
    clusters = manifest["clusters"]
    assert 5 <= clusters["n_clusters"] <= 50 and clusters["noise_share"] == 0.0
    assert clusters["largest"][0]["share"] <= 0.5
    assert manifest["topics"]["npmi"] > 0.0 and manifest["topics"]["diversity"] >= 0.5
    # Sentiment is not a topic: the clusters say little about it.
    assert manifest["evaluation"]["nmi"] < 0.3


def _cli(*args, cwd=REPO):
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    return subprocess.run([str(BIN / "n2d-spark"), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_cli_names_a_bad_config_key_in_one_line(tmp_path):
    result = _cli("run", "--input", "x.csv", "--output", str(tmp_path / "o"), "--set", "autoencoder.epoch=3")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "n2d-spark: error: unknown config key autoencoder.epoch (known keys in autoencoder: "
        "sample_rows, hidden, bottleneck, epochs, min_steps, batch_size, learning_rate, validation_fraction, seed, precision, "
        "early_stopping)"
    ]


def test_cli_missing_input_is_one_line(tmp_path):
    result = _cli("run", "--input", str(tmp_path / "absent.csv"), "--output", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"n2d-spark: error: input not found: {tmp_path / 'absent.csv'}"
    assert "Traceback" not in result.stderr


def test_cli_refuses_an_existing_output_in_one_line_before_spark_starts(tmp_path):
    (tmp_path / "in.csv").write_text("review\nsome text\n")
    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / "run.json").write_text("{}")
    result = _cli("run", "--input", str(tmp_path / "in.csv"), "--output", str(previous))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"n2d-spark: error: output exists: {previous} (set output.mode=overwrite to replace it)"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = _cli("run", "--input", str(tmp_path / "in.csv"), "--output", str(foreign), "--set", "output.mode=overwrite")
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "is not an n2d-spark output" in result.stderr
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_cli_stops_its_session_when_the_job_fails(spark, tmp_path, monkeypatch):
    import n2d_spark.cli as cli
    import n2d_spark.pipeline as pipeline
    from n2d_spark.core.errors import InputError

    def failing_job(*_args):
        raise InputError("the job failed")

    stops = []
    monkeypatch.setattr(spark, "stop", lambda: stops.append(True))
    monkeypatch.setattr(cli, "build_local_session", lambda _config, verbose: spark)
    monkeypatch.setattr(pipeline, "run_job", failing_job)
    (tmp_path / "in.csv").write_text("review\nsome text\n")
    assert cli.main(["run", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out")]) == 2
    assert stops == [True]

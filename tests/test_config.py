import pytest

from n2d_spark.core.config import JobConfig, config_from_dict, load_config
from n2d_spark.core.errors import ConfigError


def test_defaults():
    config = load_config()
    assert config == JobConfig()
    assert config.autoencoder.hidden == [1024, 512, 256]
    assert config.autoencoder.bottleneck == 10
    assert config.autoencoder.sample_rows == 25000
    assert (config.manifold.n_components, config.manifold.n_neighbors, config.manifold.min_dist) == (5, 50, 0.0)
    # The study's DBSCAN left 97.5% of the IMDB reviews in one cluster: conf/seed_study.yaml keeps it.
    assert (config.cluster.algorithm, config.cluster.k, config.cluster.reduce_outliers) == ("kmeans", "auto", True)
    assert config.text.vocab_size == 5000


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("autoencoder:\n  epochs: 3\n  hidden: [64, 32]\ncluster:\n  algorithm: kmeans\n")
    config = load_config(path, ["autoencoder.epochs=7", "cluster.k=4", "input.id_col=null", "text.min_df=3"])
    assert config.autoencoder.epochs == 7
    assert config.autoencoder.hidden == [64, 32]
    assert config.cluster.algorithm == "kmeans"
    assert config.cluster.k == 4
    assert config.input.id_col is None
    assert config.text.min_df == 3.0 and isinstance(config.text.min_df, float)


def test_every_shipped_config_loads():
    from pathlib import Path

    # cluster.yaml holds Spark confs for scripts/submit.sh, not a job config.
    shipped = sorted(p for p in (Path(__file__).resolve().parents[1] / "conf").glob("*.yaml") if p.name != "cluster.yaml")
    assert shipped
    for path in shipped:
        load_config(path)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"autoencoder": {"epoch": 3}}, "unknown config key autoencoder.epoch"),
        ({"autoencoderr": {}}, "unknown config key autoencoderr"),
        ({"autoencoder": {"epochs": "ten"}}, "autoencoder.epochs: expected int, got 'ten'"),
        ({"autoencoder": {"epochs": True}}, "autoencoder.epochs: expected int, got True"),
        ({"autoencoder": {"hidden": [64, "x"]}}, "autoencoder.hidden[1]: expected int"),
        ({"autoencoder": {"hidden": 64}}, "autoencoder.hidden: expected a list"),
        ({"cluster": {"algorithm": "spectral"}}, "cluster.algorithm: expected one of dbscan, kmeans, gmm, hdbscan"),
        ({"cluster": {"eps": 0}}, "cluster.eps: must be > 0"),
        ({"text": {"scaling": "idf"}}, "text.scaling: expected one of"),
        ({"manifold": "fast"}, "manifold: expected a mapping"),
        ({"manifold": {"placement": "umap"}}, "manifold.placement: expected one of learned, transform, got 'umap'"),
        ({"autoencoder": {"bottleneck": 4}, "manifold": {"n_components": 5}}, "manifold.n_components: must be at most"),
        ({"text": {"vocab_size": 8}}, "autoencoder.bottleneck: must be smaller than text.vocab_size"),
    ],
)
def test_bad_keys_are_named(raw, message):
    with pytest.raises(ConfigError) as error:
        config_from_dict(raw)
    assert message in str(error.value)


@pytest.mark.parametrize("override", ["epochs=3", "autoencoder.epochs", "a.b.c=1"])
def test_malformed_override(override):
    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_config(None, [override])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_set_keeps_text_keys_as_text():
    # YAML would read these as a number, booleans and None; a column may be named any of them.
    config = load_config(None, ["input.text_col=2024", "input.id_col=yes", "evaluate.label_col=on", "input.features_col=null"])
    assert (config.input.text_col, config.input.id_col, config.evaluate.label_col) == ("2024", "yes", "on")
    assert config.input.features_col is None
    # Other keys still parse as YAML.
    config = load_config(None, ["autoencoder.epochs=3", "autoencoder.hidden=[8, 4]", "output.include_text=yes", "cluster.k=auto"])
    assert (config.autoencoder.epochs, config.autoencoder.hidden, config.output.include_text, config.cluster.k) == (3, [8, 4], True, "auto")


@pytest.mark.parametrize("command", ["assign", "update"])
def test_a_bare_table_on_assign_uses_fail_whatever_the_training_run_used(command):
    """Trained with ``--table db.reviews --table-mode overwrite --set output.include_text=true``, the model's
    config keeps both; ``assign --table db.reviews`` (the CLI's override ``output.table=db.reviews``) must
    not replace the table every earlier assign appended to, nor copy texts nobody asked for."""
    from n2d_spark.model.assign_policy import assign_config

    trained = load_config(None, ["output.table=db.reviews", "output.table_mode=overwrite", "output.include_text=true"])
    bare = assign_config(trained, ["output.table=db.reviews"], command)
    assert (bare.output.table, bare.output.table_mode, bare.output.include_text) == ("db.reviews", "fail", False)
    asked = assign_config(trained, ["output.table=db.reviews", "output.table_mode=append", "output.include_text=true"], command)
    assert (asked.output.table_mode, asked.output.include_text) == ("append", True)

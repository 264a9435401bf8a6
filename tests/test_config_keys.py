"""`n2d-spark config` and the table of docs/configuration.md: one source (n2d_spark/core/config_keys.py)."""

import yaml

from n2d_spark.cli import main
from n2d_spark.core.config import JobConfig, load_config
from n2d_spark.core.config_keys import MEANINGS, markdown_table

from conftest import REPO


def test_every_key_has_a_meaning():
    keys = {f"{section}.{key}" for section, values in JobConfig().to_dict().items() for key in values}
    assert set(MEANINGS) == keys


def test_configuration_page_table_is_the_generated_one():
    assert markdown_table() in (REPO / "docs" / "configuration.md").read_text()


def test_config_command_prints_yaml_that_reads_back(capsys, tmp_path):
    overrides = ["cluster.k=7", "input.text_col=2024", "autoencoder.hidden=[64, 32]"]
    assert main(["config", "--config", str(REPO / "conf" / "imdb.yaml"), *sum((["--set", o] for o in overrides), [])]) == 0
    printed = capsys.readouterr().out
    expected = load_config(REPO / "conf" / "imdb.yaml", overrides)
    assert yaml.safe_load(printed) == expected.to_dict()
    (tmp_path / "resolved.yaml").write_text(printed)
    assert load_config(tmp_path / "resolved.yaml") == expected
    k_line = next(line for line in printed.splitlines() if line.strip().startswith("k: "))
    assert k_line.endswith("(default: auto)") and "highest silhouette" in k_line


def test_config_command_names_a_bad_key(capsys):
    assert main(["config", "--set", "cluster.kk=7"]) == 2
    assert capsys.readouterr().err.startswith("n2d-spark: error: unknown config key cluster.kk")

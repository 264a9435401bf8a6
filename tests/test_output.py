import numpy as np
import pytest
import scipy.sparse as sp

from n2d_spark.encoder import DenseScaler, EmbeddingModel, Encoder, InputScaler
from n2d_spark.errors import OutputExistsError
from n2d_spark.fs import FileSystem
from n2d_spark.output import load_embedding_model, save_embedding_model, staged_output


def _publish(spark, output, mode, content, fail=False):
    fs = FileSystem(spark, str(output))
    with staged_output(fs, str(output), mode, run_id="r1") as staging:
        fs.write_bytes(f"{staging}/part", content)
        if fail:
            raise RuntimeError("killed mid-write")


def test_publishes_whole_folder(spark, tmp_path):
    output = tmp_path / "out"
    _publish(spark, output, "error", b"first")
    assert (output / "part").read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_error_mode_refuses_existing_output_before_work(spark, tmp_path):
    output = tmp_path / "out"
    _publish(spark, output, "error", b"first")
    with pytest.raises(OutputExistsError, match="output.mode=overwrite"):
        _publish(spark, output, "error", b"second")
    assert (output / "part").read_bytes() == b"first"


def test_overwrite_replaces_only_on_success(spark, tmp_path):
    output = tmp_path / "out"
    _publish(spark, output, "error", b"first")
    with pytest.raises(RuntimeError):
        _publish(spark, output, "overwrite", b"second", fail=True)
    assert (output / "part").read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    _publish(spark, output, "overwrite", b"third")
    assert (output / "part").read_bytes() == b"third"


@pytest.mark.parametrize(
    "scaler",
    [
        InputScaler("tfidf", True, np.array([0.5, 1.0, 2.0], np.float32)),
        InputScaler("log1p", False),
        DenseScaler("minmax", np.array([0.0, 1.0, 2.0], np.float32), np.array([1.0, 0.5, 0.0], np.float32)),
    ],
    ids=["tfidf", "log1p", "dense"],
)
def test_embedding_model_round_trip(spark, tmp_path, scaler):
    rng = np.random.default_rng(0)
    encoder = Encoder(layers=((rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32)),
                              (rng.normal(size=(4, 2)).astype(np.float32), rng.normal(size=2).astype(np.float32))))
    model = EmbeddingModel(scaler, encoder)
    fs = FileSystem(spark, str(tmp_path))
    save_embedding_model(fs, str(tmp_path), model)
    loaded = load_embedding_model(fs, str(tmp_path))
    rows = rng.poisson(1.0, size=(5, 3)).astype(np.float32)
    x = rows if isinstance(scaler, DenseScaler) else sp.csr_matrix(rows)
    np.testing.assert_array_equal(loaded.embed(x), model.embed(x))
    assert type(loaded.scaler) is type(scaler)

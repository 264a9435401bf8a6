import contextlib
import os
import re

import numpy as np
import pytest
import scipy.sparse as sp

from n2d_spark.core.config import load_config
from n2d_spark.core.errors import OutputExistsError
from n2d_spark.core.fs import FileSystem
from n2d_spark.model.encoder import DenseScaler, EmbeddingModel, Encoder, InputScaler
from n2d_spark.model.encoder_arrays import load_embedding_model, save_embedding_model
from n2d_spark.outputs.publish import MANIFEST_FILE, refuse_unsafe_output, staged_output
from n2d_spark.pipeline import run_job


# Run ids as the job makes them (run_context.Run).
RUN_0, RUN_1, RUN_2 = "20261201T120000Z-0000000a", "20261201T120100Z-0000000b", "20261201T120200Z-0000000c"


def _publish(spark, output, mode, content, fail=False, fs=None, run_id=RUN_1):
    fs = fs or FileSystem(spark, str(output))
    with staged_output(fs, str(output), mode, run_id=run_id) as staging:
        # What every job output holds: its parts and a run.json.
        fs.write_bytes(f"{staging}/part", content)
        fs.write_bytes(f"{staging}/{MANIFEST_FILE}", b"{}")
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


class _Killed(BaseException):
    """The process dies: nothing after it runs, not even the clean-up of a failed publish."""


class _DyingFileSystem(FileSystem):
    """A FileSystem whose process is killed once ``survive`` renames and deletes have run."""

    def __init__(self, spark, path, survive):
        super().__init__(spark, path)
        self.survive = survive

    def _step(self):
        if self.survive == 0:
            raise _Killed()
        self.survive -= 1

    def rename(self, source, target):
        self._step()
        super().rename(source, target)

    def rename_new(self, source, target):
        self._step()
        super().rename_new(source, target)

    def delete(self, path):
        self._step()
        super().delete(path)


# Publishing over an output is three calls: move the old one aside, move the new one in, delete the old one.
@pytest.mark.parametrize("survive", [0, 1, 2, 3])
def test_a_publish_killed_after_any_call_leaves_one_whole_output(spark, tmp_path, survive):
    output = tmp_path / "out"
    _publish(spark, output, "error", b"old", run_id=RUN_0)
    with pytest.raises(_Killed) if survive < 3 else contextlib.nullcontext():
        _publish(spark, output, "overwrite", b"new", fs=_DyingFileSystem(spark, str(output), survive))
    if output.exists():
        assert (output / "part").read_bytes() in (b"old", b"new") and (output / MANIFEST_FILE).is_file()
    # The next run's start restores the old output, or drops it beside the new one, then publishes.
    _publish(spark, output, "overwrite", b"next", run_id=RUN_2)
    assert (output / "part").read_bytes() == b"next"
    # No previous output is left aside; a killed run's staging folder stays, as documented
    # (another run may still be writing into its own).
    assert not list(tmp_path.glob("out.replaced-*"))


def test_a_killed_publish_is_restored_at_the_next_start(spark, tmp_path):
    output = tmp_path / "out"
    _publish(spark, output, "error", b"old", run_id=RUN_0)
    with pytest.raises(_Killed):
        _publish(spark, output, "overwrite", b"new", fs=_DyingFileSystem(spark, str(output), 1))
    # Killed between moving the old output aside and moving the new one in: no output, for now.
    assert not output.exists() and (tmp_path / f"out.replaced-{RUN_1}" / "part").read_bytes() == b"old"
    # A run that fails before publishing still finds the old output put back.
    with pytest.raises(RuntimeError):
        _publish(spark, output, "overwrite", b"newer", fail=True, run_id=RUN_2)
    assert (output / "part").read_bytes() == b"old"
    assert not list(tmp_path.glob("out.replaced-*"))


class _RacedFileSystem(FileSystem):
    """A FileSystem on which another run publishes ``output`` just after this run, its output staged, looked for it."""

    def __init__(self, spark, output):
        super().__init__(spark, str(output))
        self.output = output

    def exists(self, path):
        found = super().exists(path)
        staged = self.output.parent / f"{self.output.name}.staging-{RUN_1}" / MANIFEST_FILE
        if path == str(self.output) and not found and staged.exists():
            self.output.mkdir()
            (self.output / "part").write_bytes(b"other run's")
        return found


def test_an_output_published_meanwhile_by_another_run_is_not_nested_into(spark, tmp_path):
    """FileSystem.rename would move the staging folder into the other run's output."""
    output = tmp_path / "out"
    with pytest.raises(OutputExistsError, match=r"^another run published \S+/out while this one was writing it: "
                       rf"this run's complete output is in \S+/out\.staging-{RUN_1}$"):
        _publish(spark, output, "error", b"mine", fs=_RacedFileSystem(spark, output))
    assert sorted(p.name for p in output.iterdir()) == ["part"] and (output / "part").read_bytes() == b"other run's"
    assert (tmp_path / f"out.staging-{RUN_1}" / "part").read_bytes() == b"mine"


def test_overwrite_replaces_only_a_folder_this_job_wrote(spark, tmp_path):
    output = tmp_path / "mine"
    output.mkdir()
    (output / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputExistsError, match="not an n2d-spark output"):
        _publish(spark, output, "overwrite", b"new")
    assert (output / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


@pytest.mark.parametrize("output, protected", [
    (".", "."), ("~", "~"), ("data", "data/in.csv"), ("file:///srv/x", "/srv/x/in.parquet"), ("hdfs://nn/a", "hdfs://nn/a/b.csv"),
])
def test_an_output_containing_the_input_cwd_or_home_is_refused(output, protected):
    with pytest.raises(OutputExistsError, match="choose an output folder of its own"):
        refuse_unsafe_output(output, [protected])


def test_a_sibling_output_is_allowed():
    refuse_unsafe_output("out/run", ["out/run-input.csv", ".", "~", "hdfs://nn/out/runs.csv"])


def test_an_output_is_compared_with_what_it_names_not_its_spelling(spark, tmp_path):
    """A model reached through a symlink, a relative path, or a ``file:`` URI against a bare path: each is
    the same folder, refused before Spark starts and again by the run's session (hdfs://nn/out beside
    /out/model on a cluster whose default file system is hdfs://nn is the same comparison)."""
    (tmp_path / "real" / "v1" / "model").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    model = str(tmp_path / "real" / "v1" / "model")
    outputs = [
        f"file://{tmp_path}/link/v1",
        os.path.relpath(tmp_path / "link" / "v1"),
        f"file:{tmp_path}/real/v1/",
    ]
    for output in outputs:
        for fs in (None, FileSystem(spark, output)):
            with pytest.raises(OutputExistsError, match=f"^output {re.escape(output)} contains {re.escape(model)}: choose"):
                refuse_unsafe_output(output, [model], fs)
    refuse_unsafe_output(f"file://{tmp_path}/link/v2", [model], FileSystem(spark, str(tmp_path)))


def test_a_run_whose_output_holds_its_input_through_a_symlink_is_refused_before_work(spark, tmp_path):
    """A previous output, replaceable in overwrite mode, that holds the new run's input under another spelling."""
    (tmp_path / "real" / "v1").mkdir(parents=True)
    (tmp_path / "real" / "v1" / MANIFEST_FILE).write_text("{}")
    rows = tmp_path / "real" / "v1" / "in.csv"
    rows.write_text("review\nfine\n")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    config = load_config(None, ["output.mode=overwrite"])
    with pytest.raises(OutputExistsError, match=f"^output {tmp_path}/link/v1 contains {rows}: choose"):
        run_job(spark, config, str(rows), str(tmp_path / "link" / "v1"))
    assert sorted(p.name for p in (tmp_path / "real" / "v1").iterdir()) == ["in.csv", MANIFEST_FILE]


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


def test_a_backup_named_like_an_aside_output_is_left_alone(spark, tmp_path):
    """Only a folder named OUTPUT.replaced-RUNID, as the job names them, is ever restored or deleted."""
    output = tmp_path / "out"
    _publish(spark, output, "error", b"old", run_id=RUN_0)
    for name in ("out.replaced-backup", "out.replaced-20261201T120000Z"):
        (tmp_path / name).mkdir()
        (tmp_path / name / MANIFEST_FILE).write_bytes(b"{}")
        (tmp_path / name / "part").write_bytes(b"mine")
    _publish(spark, output, "overwrite", b"new", run_id=RUN_2)
    assert (output / "part").read_bytes() == b"new"
    for name in ("out.replaced-backup", "out.replaced-20261201T120000Z"):
        assert (tmp_path / name / "part").read_bytes() == b"mine"

import pytest

from n2d_spark.errors import OutputExistsError
from n2d_spark.fs import FileSystem
from n2d_spark.output import staged_output


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

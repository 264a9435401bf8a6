"""The Hadoop FileSystem helper: bytes go through py4j in chunks and come back whole."""

import os

import pytest

import n2d_spark.core.fs
from n2d_spark.core.fs import FileSystem


@pytest.mark.parametrize("size", [0, 1, 4, 5, 6, 23])
def test_bytes_round_trip_across_chunk_boundaries(spark, tmp_path, monkeypatch, size):
    monkeypatch.setattr(n2d_spark.core.fs, "_CHUNK_BYTES", 5)
    fs = FileSystem(spark, str(tmp_path))
    data = os.urandom(size)
    fs.write_bytes(str(tmp_path / "part"), data)
    assert (tmp_path / "part").read_bytes() == data
    assert fs.read_bytes(str(tmp_path / "part")) == data

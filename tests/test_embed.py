import numpy as np
import scipy.sparse as sp
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql.types import LongType, StructField, StructType

from n2d_spark.embed import EMBEDDING_COL, collect_sample, embed, rows_to_csr
from n2d_spark.encoder import EmbeddingModel, Encoder, InputScaler


def _vectors(spark, n_rows, size=6, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_rows):
        idx = np.sort(rng.choice(size, size=int(rng.integers(0, size)), replace=False))
        rows.append((i, Vectors.sparse(size, idx.tolist(), rng.integers(1, 4, len(idx)).astype(float).tolist())))
    return spark.createDataFrame(rows, StructType([StructField("id", LongType()), StructField("counts", VectorUDT())]))


def _model(size=6, seed=0):
    rng = np.random.default_rng(seed)
    encoder = Encoder(
        layers=(
            (rng.normal(size=(size, 5)).astype(np.float32), rng.normal(size=5).astype(np.float32)),
            (rng.normal(size=(5, 2)).astype(np.float32), rng.normal(size=2).astype(np.float32)),
        )
    )
    return EmbeddingModel(InputScaler("log1p", True), encoder)


def test_udf_embedding_equals_local_embedding(spark):
    vectors = _vectors(spark, 200).repartition(3)
    model = _model()
    rows = embed(vectors, "counts", model, batch_rows=16).orderBy("id").collect()
    empty = np.array([row["counts"].numNonzeros() == 0 for row in rows])
    assert 0 < empty.sum() < len(rows)
    # A row without terms has nothing to embed: null, and the job rejects it.
    assert all(row[EMBEDDING_COL] is None for row, e in zip(rows, empty) if e)
    expected = model.embed(rows_to_csr(rows, "counts"))[~empty]
    actual = np.array([row[EMBEDDING_COL] for row, e in zip(rows, empty) if not e], dtype=np.float32)
    np.testing.assert_allclose(actual, expected, rtol=1e-6)
    assert actual.shape == (200 - empty.sum(), 2)


def test_batch_size_does_not_change_embeddings(spark):
    vectors = _vectors(spark, 100)
    model = _model()
    small = [r[EMBEDDING_COL] for r in embed(vectors, "counts", model, batch_rows=7).orderBy("id").collect()]
    large = [r[EMBEDDING_COL] for r in embed(vectors, "counts", model, batch_rows=1000).orderBy("id").collect()]
    assert [s is None for s in small] == [g is None for g in large]
    np.testing.assert_allclose([s for s in small if s is not None], [g for g in large if g is not None], rtol=1e-6)


def test_sample_is_sized_sorted_and_independent_of_partitioning(spark):
    vectors = _vectors(spark, 300)
    ids, counts = collect_sample(vectors, "counts", 50, seed=7)
    ids_again, _ = collect_sample(vectors.repartition(5), "counts", 50, seed=7)
    other_ids, _ = collect_sample(vectors, "counts", 50, seed=8)
    assert len(ids) == 50 and counts.shape == (50, 6)
    assert list(ids) == sorted(ids)
    np.testing.assert_array_equal(ids, ids_again)
    assert set(ids) != set(other_ids)
    by_id = {r["id"]: r["counts"].toArray() for r in vectors.collect()}
    np.testing.assert_array_equal(counts.toarray(), np.vstack([by_id[i] for i in ids]))


def test_sample_larger_than_input_takes_everything(spark):
    ids, counts = collect_sample(_vectors(spark, 20), "counts", 1000, seed=0)
    assert list(ids) == list(range(20))
    assert isinstance(counts, sp.csr_matrix)

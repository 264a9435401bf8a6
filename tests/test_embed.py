import numpy as np
import scipy.sparse as sp
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StructField, StructType

from n2d_spark.core.columns import EMBEDDING_COL
from n2d_spark.model.encoder import DenseScaler, EmbeddingModel, Encoder, InputScaler
from n2d_spark.rows.embed import embed
from n2d_spark.rows.sampling import collect_sample, hash_sample, rows_to_csr


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
    arrow_batch = spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
    rows = embed(vectors, "counts", model, batch_rows=16).orderBy("id").collect()
    # The encoder's batches are cut inside the UDF: a caller's session keeps its settings.
    assert spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch") == arrow_batch
    empty = np.array([row["counts"].numNonzeros() == 0 for row in rows])
    assert 0 < empty.sum() < len(rows)
    # A row without terms has nothing to embed: null, and the job rejects it.
    assert all(row[EMBEDDING_COL] is None for row, e in zip(rows, empty) if e)
    expected = model.embed(rows_to_csr(rows, "counts"))[~empty]
    actual = np.array([row[EMBEDDING_COL] for row, e in zip(rows, empty) if not e], dtype=np.float32)
    np.testing.assert_allclose(actual, expected, rtol=1e-6)
    assert actual.shape == (200 - empty.sum(), 2)


def _wide_model(size, widths, seed=0):
    """Random weights of the given widths: wide enough for the layers' vector loops and their remainders."""
    rng = np.random.default_rng(seed)
    dims = [size, *widths]
    layers = tuple(
        (rng.normal(scale=0.1, size=(a, b)).astype(np.float32), rng.normal(scale=0.1, size=b).astype(np.float32))
        for a, b in zip(dims[:-1], dims[1:])
    )
    return Encoder(layers=layers)


def test_batch_size_does_not_change_embeddings_by_a_bit(spark):
    # Spark's Arrow batches of 1, 7, 64 and 4,096 rows, over 3 partitions: every row's
    # embedding must be bitwise the same, so that the fit and the labels cannot depend on them.
    vectors = _vectors(spark, 150, size=300).repartition(3)
    model = EmbeddingModel(InputScaler("tfidf", True, idf=np.linspace(0.5, 3, 300, dtype=np.float32)), _wide_model(300, [70, 33, 10]))
    arrow_batch = spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
    by_batch = {}
    for batch in (1, 7, 64, 4096):
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch))
        try:
            by_batch[batch] = [r[EMBEDDING_COL] for r in embed(vectors, "counts", model, batch_rows=batch).orderBy("id").collect()]
        finally:
            spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", arrow_batch)
    reference = by_batch[4096]
    assert sum(e is None for e in reference) < len(reference)
    for batch, embeddings in by_batch.items():
        assert [e is None for e in embeddings] == [e is None for e in reference], batch
        np.testing.assert_array_equal(
            np.array([e for e in embeddings if e is not None], dtype=np.float32),
            np.array([e for e in reference if e is not None], dtype=np.float32),
            err_msg=f"batch_rows={batch}",
        )


def test_the_default_architecture_embeds_a_row_alike_in_any_batch():
    # The job's shapes (5,000 terms, 1024-512-256-10), sparse and dense input, in NumPy: a row's
    # embedding is bitwise the same alone, in a batch of 7 or 64, at any position.
    rng = np.random.default_rng(3)
    counts = sp.random(300, 5000, density=0.02, random_state=4, format="csr", dtype=np.float32)
    counts.data = np.ceil(counts.data * 4)
    encoder = _wide_model(5000, [1024, 512, 256, 10])
    sparse_model = EmbeddingModel(InputScaler.fit(counts, "tfidf", True), encoder)
    dense_rows = rng.normal(size=(300, 5000)).astype(np.float32)
    for model, rows in ((sparse_model, counts), (EmbeddingModel(DenseScaler.fit(dense_rows, "standardize"), encoder), dense_rows)):
        whole = model.embed(rows)
        for batch in (1, 7, 64):
            pieces = np.vstack([model.embed(rows[start : start + batch]) for start in range(0, 300, batch)])
            np.testing.assert_array_equal(pieces, whole, err_msg=f"batch of {batch}")
        # and the same numbers as float32 BLAS, to rounding
        scaled = model.scaler.transform(rows)
        h = scaled.toarray() if sp.issparse(scaled) else scaled
        for i, (weights, bias) in enumerate(encoder.layers):
            h = h @ weights + bias
            if i < len(encoder.layers) - 1:
                h = np.maximum(h, 0)
        np.testing.assert_allclose(whole, h, rtol=1e-4, atol=1e-4)


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


def test_hash_sample_takes_the_smallest_hashes_and_sends_few_rows(spark):
    # 2,000 rows in 8 partitions, a 100-row sample: the filter keeps about 200 rows of 2,000, and
    # the result is the plain ordered limit's, which would gather up to 8 x 100 rows in one place.
    rows = spark.range(2000).repartition(8)
    for seed in (0, 1, 2):
        order = F.xxhash64(F.col("id"), F.lit(seed))
        expected = [r["id"] for r in rows.orderBy(order).limit(100).collect()]
        assert [r["id"] for r in hash_sample(rows, 100, seed).collect()] == expected
        plan = hash_sample(rows, 100, seed)._jdf.queryExecution().optimizedPlan().toString()
        assert "Filter" in plan


def test_hash_sample_falls_back_when_the_filter_keeps_too_few(spark):
    # Equal ids hash equally: each seed's filter keeps all 300 rows or none, and none must
    # still give 50 rows (the ordered limit over all of them).
    rows = spark.createDataFrame([(7, i) for i in range(300)], "id long, value long")
    threshold_kept = []
    for seed in range(8):
        picked = hash_sample(rows, 50, seed).collect()
        assert len(picked) == 50
        threshold_kept.append("Filter" in hash_sample(rows, 50, seed)._jdf.queryExecution().optimizedPlan().toString())
        # collect_sample checks what it collected instead of counting first: the same fallback.
        ids, matrix = collect_sample(rows.selectExpr("id", "array(cast(value as float)) as v"), "v", 50, seed)
        assert len(ids) == 50 and matrix.shape == (50, 1)
    assert not all(threshold_kept)


def test_sample_larger_than_input_takes_everything(spark):
    ids, counts = collect_sample(_vectors(spark, 20), "counts", 1000, seed=0)
    assert list(ids) == list(range(20))
    assert isinstance(counts, sp.csr_matrix)

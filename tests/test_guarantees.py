"""The job's promises (docs/guarantees.md), one test each, named after the promise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from n2d_spark.core.columns import EMBEDDING_COL, REASON_COL, WORD_COUNT_COL
from n2d_spark.core.config import InputConfig, TextConfig, load_config
from n2d_spark.core.errors import N2DError
from n2d_spark.model.encoder import EmbeddingModel, Encoder, InputScaler
from n2d_spark.pipeline import run_job
from n2d_spark.rows.embed import embed
from n2d_spark.rows.rejects import with_input_reason, with_text_reason
from n2d_spark.rows.text import COUNTS_COL, fit_text_model, vectorize, vocabulary
from n2d_spark.synthetic import generate_reviews, write_corpus


BIN = Path(sys.executable).parent
# A small model, so that each case below costs seconds: what is tested is the accounting.
TINY = [
    "autoencoder.hidden=[32]", "autoencoder.bottleneck=4", "autoencoder.epochs=3", "autoencoder.min_steps=0", "autoencoder.batch_size=32",
    "manifold.n_components=2", "manifold.n_neighbors=10", "cluster.algorithm=kmeans", "cluster.k=3",
    "text.min_df=1",
    # neighbours/ is tested on its own (tests/test_neighbours.py) and in tests/test_job.py.
    "similar.k=0",
]
GOOD_ROWS = 60


def _good_csv() -> bytes:
    frame = generate_reviews(GOOD_ROWS, seed=5)
    frame.insert(0, "doc_id", [f"d{i}" for i in range(GOOD_ROWS)])
    return frame.to_csv(index=False).encode()


def _parquet_with_int_text(path: Path) -> None:
    pd.DataFrame({"review": range(5)}).to_parquet(path)


@dataclass
class Case:
    name: str
    extra_lines: list[bytes] = field(default_factory=list)
    # Replaces the CSV altogether (bytes), or writes another file (a callable taking the path).
    content: bytes | None = None
    writer: object = None
    suffix: str = ".csv"
    overrides: list[str] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    error: str | None = None


BAD_INPUTS = [
    Case(
        "quotes and embedded newlines",
        extra_lines=[
            b'x1,"He said ""ghost"", then\nleft the haunted house.",positive,horror\n',
            b'x2,"A ""quoted"" love story,\nwith commas, and\r\nCRLF lines",negative,romance\n',
        ],
    ),
    Case("non-UTF-8 bytes", extra_lines=[b'x1,"caf\xe9 ghost movie",positive,horror\n'], rejected={"invalid_encoding": 1}),
    Case("a 2 MB review", extra_lines=[b'x1,"' + b"ghost " * 350_000 + b'",positive,horror\n'], rejected={"text_too_long": 1}),
    Case("an all-empty file", content=b"", error="the input has no columns"),
    Case("a header-only file", content=b"doc_id,review,sentiment,topic\n", error="the input has no rows"),
    Case("null reviews", extra_lines=[b"x1,,positive,horror\n", b"x2,,negative,war\n"], rejected={"null_text": 2}),
    Case(
        "duplicated ids",
        extra_lines=[b'd7,"another ghost story",positive,horror\n'],
        overrides=["input.id_col=doc_id"],
        rejected={"duplicate_id": 2},
    ),
    Case(
        "null ids",
        extra_lines=[b',"a ghost story without an id",positive,horror\n'],
        overrides=["input.id_col=doc_id"],
        rejected={"null_id": 1},
    ),
    Case(
        "a line break inside a field, read one record per line",
        extra_lines=[b'x1,"a ghost story in\ntwo lines",positive,horror\n'],
        overrides=["input.multiline=false"],
        error="2 CSV record(s) do not parse as one record per line (the first has id 60): a field that spans lines needs input.multiline: true",
    ),
    Case("a record with too many fields", extra_lines=[b"x1,ghost movie,positive,horror,extra\n"], rejected={"malformed_record": 1}),
    Case(
        "texts empty after cleaning",
        extra_lines=[b'x1,"<br /><br />",positive,horror\n', b'x2,"The and of it, was.",negative,war\n'],
        rejected={"empty_after_cleaning": 2},
    ),
    Case(
        "texts without vocabulary terms",
        extra_lines=[b'x1,"zyzzyva quokka",positive,horror\n'],
        overrides=["text.min_df=2"],
        rejected={"no_vocabulary_terms": 1},
    ),
    Case(
        "too many rejects",
        extra_lines=[f"x{i},,positive,horror\n".encode() for i in range(10)],
        error="14.3% of the rows are rejected (10 of 70: null_text 10), above input.max_reject_share=0.05",
    ),
    Case("a Parquet text column of the wrong type", writer=_parquet_with_int_text, suffix=".parquet",
         error="text column 'review' has type bigint, expected string"),
    Case("an unreadable format", content=b"review\nnot parquet at all\n", suffix=".parquet",
         error="cannot read"),
    Case("a missing text column", overrides=["input.text_col=body"],
         error="text column 'body' not in the input; columns found: doc_id, review, sentiment, topic"),
    Case("a missing label column", overrides=["evaluate.label_col=stars"],
         error="evaluate.label_col 'stars' not in the input; columns found: doc_id, review, sentiment, topic, id"),
    Case("fewer rows than the clusterer needs", overrides=["cluster.k=100"],
         error="60 usable rows are too few for kmeans (cluster.k=100)"),
    Case("a vocabulary smaller than the bottleneck",
         content=b"review\n" + b"ghost movie\n" * 60,
         error="the vocabulary has 2 terms, not more than autoencoder.bottleneck=4"),
]


def _write_case(case: Case, folder: Path) -> Path:
    path = folder / f"input{case.suffix}"
    if case.writer is not None:
        case.writer(path)
    else:
        path.write_bytes(case.content if case.content is not None else _good_csv() + b"".join(case.extra_lines))
    return path


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: c.name)
def test_rejects_with_reasons_and_clear_errors(spark, tmp_path, case):
    path = _write_case(case, tmp_path)
    config = load_config(None, TINY + case.overrides)
    if case.error:
        with pytest.raises(N2DError) as error:
            run_job(spark, config, str(path), str(tmp_path / "out"))
        assert case.error in str(error.value)
        assert not (tmp_path / "out").exists()
        assert [p.name for p in tmp_path.iterdir()] == [path.name]
        return
    manifest = run_job(spark, config, str(path), str(tmp_path / "out")).manifest
    rows_in = GOOD_ROWS + len(case.extra_lines)
    rejected = sum(case.rejected.values())
    assert manifest["rejected_by_reason"] == case.rejected
    assert manifest["rows"]["in"] == rows_in
    assert manifest["rows"]["labelled"] == rows_in - rejected
    rejects = spark.read.parquet(str(tmp_path / "out" / "rejected")).toPandas()
    assert rejects["reason"].value_counts().to_dict() == case.rejected
    assert rejects["record"].notna().all()
    if case.name == "a record with too many fields":
        assert rejects["record"].tolist() == ["x1,ghost movie,positive,horror,extra"]


def test_every_input_row_is_accounted_for(spark, tmp_path):
    path = tmp_path / "input.csv"
    path.write_bytes(_good_csv() + b"x1,,positive,horror\n" + b'x2,"<br />",negative,war\n')
    manifest = run_job(spark, load_config(None, TINY), str(path), str(tmp_path / "out")).manifest
    assert manifest["rows"]["in"] == GOOD_ROWS + 2
    assert manifest["rows"]["labelled"] + manifest["rows"]["rejected"] == manifest["rows"]["in"]
    labelled = spark.read.parquet(str(tmp_path / "out" / "labels")).select("id")
    rejected = spark.read.parquet(str(tmp_path / "out" / "rejected")).select("id")
    ids = [r["id"] for r in labelled.union(rejected).collect()]
    assert sorted(ids) == list(range(GOOD_ROWS + 2))


def test_deterministic_reruns_whatever_the_partitioning(spark, tmp_path):
    corpus = write_corpus(generate_reviews(400, seed=9), tmp_path / "corpus.csv")
    config = load_config(None, TINY + ["cluster.algorithm=dbscan", "cluster.eps=0.5", "cluster.min_samples=10"])
    labels = []
    default_partitions = spark.conf.get("spark.sql.shuffle.partitions")
    settings_before = dict(spark.conf.getAll)
    cached_before = spark.sparkContext._jsc.getPersistentRDDs().size()
    # The job spreads its input over this many partitions: a rerun on another layout.
    for run, partitions in (("first", 3), ("second", 8)):
        spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
        try:
            run_job(spark, config, str(corpus), str(tmp_path / run))
        finally:
            spark.conf.set("spark.sql.shuffle.partitions", default_partitions)
        # run_id names the run, and model_id hashes the pickled UMAP, whose bytes differ between runs.
        labels.append(spark.read.parquet(str(tmp_path / run / "labels")).drop("run_id", "model_id").orderBy("id").toPandas())
    pd.testing.assert_frame_equal(labels[0], labels[1])
    assert labels[0]["cluster"].nunique() > 1
    # Each run leaves the caller's session as it found it: no cache, no changed setting.
    assert spark.sparkContext._jsc.getPersistentRDDs().size() == cached_before
    assert dict(spark.conf.getAll) == settings_before


def _run_cli(corpus: Path, output: Path, kill_after: str | None = None) -> subprocess.CompletedProcess | None:
    """Runs the console script; with ``kill_after``, SIGKILLs its whole process group once that log line shows."""
    command = [str(BIN / "n2d-spark"), "run", "--input", str(corpus), "--output", str(output),
               "--set", "output.mode=overwrite", *[a for o in TINY for a in ("--set", o)]]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    if kill_after is None:
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
                               start_new_session=True)
    try:
        for line in process.stderr:
            if kill_after in line:
                os.killpg(process.pid, signal.SIGKILL)
                break
        else:
            pytest.fail(f"the job ended before logging {kill_after!r}")
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    return None


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_no_half_written_output(tmp_path):
    corpus = write_corpus(generate_reviews(300, seed=4), tmp_path / "corpus.csv")
    output = tmp_path / "out"
    # A previous output of the job (its run.json says so), which overwrite may replace.
    (output / "labels").mkdir(parents=True)
    (output / "labels" / "part-00000.parquet").write_bytes(b"the previous run's labels")
    (output / "run.json").write_text(json.dumps({"run_id": "previous"}))
    published = _snapshot(output)
    # Killed once the write stage has begun: the new run's files are half written, in staging.
    _run_cli(corpus, output, kill_after="stage write: started")
    assert _snapshot(output) == published
    rerun = _run_cli(corpus, output)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert json.loads((output / "run.json").read_text())["run_id"] != "previous"
    assert sorted(pd.read_parquet(output / "labels")["id"]) == list(range(300))
    # A quiet log: the job's own lines, none of the JVM's or TensorFlow's start-up notices.
    for notice in ("log4j profile", "NativeCodeLoader", "loopback address", "absl::InitializeLog", "cuda", "[Stage "):
        assert notice not in rerun.stderr, rerun.stderr


def test_survives_spark_task_retries(tmp_path):
    # A session of its own: local[2,4] lets each task fail up to 4 times. The first attempt
    # of every task fails after the embedding UDF ran; the retried rows must be the same.
    script = textwrap.dedent(
        """
        import numpy as np
        from pyspark import TaskContext
        from pyspark.ml.linalg import Vectors, VectorUDT
        from pyspark.sql import SparkSession
        from pyspark.sql.types import LongType, StructField, StructType
        from n2d_spark.model.encoder import EmbeddingModel, Encoder, InputScaler
        from n2d_spark.rows.embed import embed

        spark = SparkSession.builder.master("local[2,4]").config("spark.ui.enabled", "false").getOrCreate()
        rng = np.random.default_rng(0)
        rows = [(i, Vectors.sparse(8, sorted([i % 8, (i + 3) % 8]), [1.0, 2.0])) for i in range(400)]
        schema = StructType([StructField("id", LongType()), StructField("counts", VectorUDT())])
        vectors = spark.createDataFrame(rows, schema).repartition(4, "id")
        model = EmbeddingModel(InputScaler("tfidf", True, np.ones(8, np.float32)), Encoder(layers=(
            (rng.normal(size=(8, 3)).astype(np.float32), np.zeros(3, np.float32)),)))
        embedded = embed(vectors, "counts", model, batch_rows=32).select("id", "embedding")

        def fail_first_attempt(batches):
            if TaskContext.get().attemptNumber() == 0:
                raise RuntimeError("injected task failure")
            yield from batches

        clean = sorted(map(tuple, embedded.collect()))
        retried = sorted(map(tuple, embedded.mapInPandas(fail_first_attempt, embedded.schema).collect()))
        assert clean == retried, "retried tasks gave other rows"
        print("retried rows equal:", len(retried))
        """
    )
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "retried rows equal: 400" in result.stdout
    assert "injected task failure" in result.stderr


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.one_of(st.none(), st.text(max_size=200)), min_size=1, max_size=8))
def test_cleaning_and_vectorizing_never_raise_and_account_for_every_row(spark, texts):
    # Fixed words keep the vocabulary non-empty, as a real corpus's is.
    rows = list(enumerate(texts)) + [(len(texts), "ghost haunted house")]
    reviews = with_input_reason(spark.createDataFrame(rows, "id long, review string"), InputConfig())
    text_model = fit_text_model(reviews.filter(F.col(REASON_COL).isNull()), "review", TextConfig(min_df=1.0))
    size = len(vocabulary(text_model))
    encoder = Encoder(layers=((np.ones((size, 2), np.float32), np.zeros(2, np.float32)),))
    model = EmbeddingModel(InputScaler("log1p", l2_normalize=True), encoder)
    result = embed(with_text_reason(vectorize(text_model, reviews)), COUNTS_COL, model, batch_rows=4).collect()
    assert sorted(r["id"] for r in result) == [i for i, _ in rows]
    for row in result:
        has_terms = row[COUNTS_COL].numNonzeros() > 0
        # Embedded exactly when there is something to embed; otherwise the job rejects it.
        assert (row[EMBEDDING_COL] is not None) == has_terms
        if row["review"] is None:
            assert row[REASON_COL] == "null_text"
        elif row[REASON_COL] is None and not has_terms:
            assert row[WORD_COUNT_COL] > 0  # no_vocabulary_terms, found after the embedding

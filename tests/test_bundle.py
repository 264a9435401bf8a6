"""The model bundle: saved whole, loaded to the same predictions, and refused with one line when damaged."""

from __future__ import annotations

import io
import json
import pickle
import re
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from pyspark.ml import PipelineModel
from pyspark.ml.util import DefaultParamsReader
from sklearn.datasets import make_blobs

from n2d_spark.core.config import ClusterConfig, config_from_dict
from n2d_spark.core.errors import BundleError
from n2d_spark.core.fs import FileSystem
from n2d_spark.model import bundle as bundle_module
from n2d_spark.model.bundle import FORMAT_VERSION, load_bundle, save_bundle
from n2d_spark.model.assigner import AddedTopics, ClusterAssigner
from n2d_spark.model.cluster import fit_clusters
from n2d_spark.model.cluster_arrays import clusters_from_arrays, clusters_to_arrays
from n2d_spark.model.encoder import DenseScaler, EmbeddingModel, Encoder, InputScaler, smoothed_idf
from n2d_spark.model.manifold import fit_manifold, transform, umap_from_arrays, umap_to_arrays
from n2d_spark.model.placement import fit_placement
from n2d_spark.model.novelty import NoveltySignals, calibrate, term_points
from n2d_spark.model.topics import ModelTopics, Topic
from n2d_spark.rows.text import COUNTS_COL, fit_text_model, learned, text_model_reading, vectorize, vocabulary

from conftest import as_format_1, as_format_2, rewrite_parts

BOTTLENECK = 10
SMALL = {
    "text": {"min_df": 1.0},
    "autoencoder": {"bottleneck": BOTTLENECK},
    "manifold": {"n_components": 2, "n_neighbors": 10},
    "cluster": {"algorithm": "kmeans", "k": 3},
}
TOPICS = ModelTopics((Topic(0, "0_ghost_house", ("ghost", "house"), 0.6), Topic(1, None, (), 0.4, "0123456789abcdef")), 0.125)
TEXTS = ["ghost house scary night", "space ship alien planet", "cooking pasta sauce garlic", "ghost alien pasta"]


def _encoder(input_dim: int, seed: int = 0) -> Encoder:
    rng = np.random.default_rng(seed)
    return Encoder(
        layers=(
            (rng.normal(size=(input_dim, 8)).astype(np.float32), rng.normal(size=8).astype(np.float32)),
            (rng.normal(size=(8, BOTTLENECK)).astype(np.float32), rng.normal(size=BOTTLENECK).astype(np.float32)),
        )
    )


def _assigner(config) -> ClusterAssigner:
    points = np.random.default_rng(1).normal(size=(300, BOTTLENECK)).astype(np.float32)
    reducer, coordinates = fit_manifold(points, config.manifold)
    clusters, _ = fit_clusters(coordinates, config.cluster)
    return ClusterAssigner(reducer=reducer, clusters=clusters, placement=fit_placement(points, coordinates, seed=0))


def _listing(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def saved(spark, tmp_path_factory):
    """One text-mode bundle, saved once; each test copies it before damaging it."""
    config = config_from_dict(SMALL)
    reviews = spark.createDataFrame([(t,) for t in TEXTS], "review string")
    text_model = fit_text_model(reviews, "review", config.text)
    idf = np.linspace(0.5, 2.0, len(vocabulary(text_model))).astype(np.float32)
    embedding_model = EmbeddingModel(InputScaler("tfidf", True, idf), _encoder(len(vocabulary(text_model))))
    assigner = _assigner(config)
    folder = tmp_path_factory.mktemp("bundle") / "model"
    model_id = save_bundle(
        FileSystem(spark, str(folder)), str(folder), config, embedding_model, assigner, learned(text_model), TOPICS, None
    )
    return folder, model_id, config, embedding_model, assigner, text_model


def _copy(saved, tmp_path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(saved[0], target)
    return target


def _load(spark, folder: Path):
    return load_bundle(spark, FileSystem(spark, str(folder)), str(folder))


def test_layout_and_manifest(saved):
    folder, model_id, config, *_ = saved
    files = _listing(folder)
    assert {"bundle.json", "encoder.npz", "umap.npz", "placement.npz", "clusters.npz"} <= set(files)
    assert not any(name.endswith(".pkl") for name in files)
    assert "text.json" in files and not any(name.startswith("text_pipeline/") for name in files)
    manifest = json.loads((folder / "bundle.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION == 6
    assert manifest["parent_model_id"] is None and "topics.json" in files
    assert manifest["model_id"] == model_id and len(model_id) == 16
    assert manifest["config"] == config.to_dict()
    assert {"python", "numpy", "scipy", "scikit-learn", "umap-learn", "pynndescent", "hdbscan", "pyspark"} <= set(
        manifest["versions"]
    )
    for name, part in manifest["parts"].items():
        assert files[name] == part["bytes"] and len(part["sha256"]) == 64
    # The local file system's .crc sidecars are not parts: a copy to HDFS or S3 drops them.
    assert not any(name.rsplit("/", 1)[-1].endswith(".crc") for name in manifest["parts"])


def test_loaded_bundle_predicts_as_the_saved_models(spark, saved, tmp_path):
    folder, model_id, config, embedding_model, assigner, text_model = saved
    before = _listing(folder)
    loaded = _load(spark, folder)
    assert _listing(folder) == before  # loading writes nothing
    assert loaded.model_id == model_id and loaded.config == config
    assert loaded.versions == json.loads((folder / "bundle.json").read_text())["versions"]

    reviews = spark.createDataFrame([("a scary ghost and an alien",), ("garlic sauce",)], "review string")
    assert loaded.learned_text == learned(text_model)
    assert list(loaded.learned_text.terms) == vocabulary(text_model) and "and" in loaded.learned_text.stop_words
    counts = [row[COUNTS_COL].toArray() for row in vectorize(text_model_reading(loaded.learned_text, "review"), reviews).collect()]
    expected_counts = [row[COUNTS_COL].toArray() for row in vectorize(text_model, reviews).collect()]
    np.testing.assert_array_equal(counts, expected_counts)

    rows = sp.csr_matrix(np.array(counts, dtype=np.float32))
    np.testing.assert_array_equal(loaded.embedding_model.embed(rows), embedding_model.embed(rows))

    points = np.random.default_rng(2).normal(size=(40, BOTTLENECK)).astype(np.float32)
    placed, expected = loaded.assigner.assign(points), assigner.assign(points)
    for field in ("coordinates", "labels", "confidence", "second"):
        np.testing.assert_array_equal(getattr(placed, field), getattr(expected, field))



def test_vector_mode_bundle_has_no_text_part(spark, saved, tmp_path):
    _, _, config, _, assigner, _ = saved
    config = config_from_dict({**SMALL, "input": {"features_col": "pixels"}})
    model = EmbeddingModel(DenseScaler("minmax", np.zeros(6, np.float32), np.ones(6, np.float32)), _encoder(6))
    folder = tmp_path / "model"
    save_bundle(FileSystem(spark, str(folder)), str(folder), config, model, assigner, None, TOPICS, None)
    assert not (folder / "text.json").exists()
    loaded = _load(spark, folder)
    assert loaded.learned_text is None and loaded.config.input.features_col == "pixels"
    x = np.random.default_rng(3).normal(size=(5, 6)).astype(np.float32)
    np.testing.assert_array_equal(loaded.embedding_model.embed(x), model.embed(x))


def _truncate(folder: Path, name: str) -> None:
    path = folder / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_byte(folder: Path, name: str) -> None:
    path = folder / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    # A local copy carries Hadoop's .crc sidecar; without it the damage reaches the checksum of bundle.json.
    (folder / f".{name}.crc").unlink()


def _write_manifest(folder: Path, text: str) -> None:
    (folder / "bundle.json").write_text(text)
    (folder / ".bundle.json.crc").unlink(missing_ok=True)


def _edit_manifest(folder: Path, edit) -> None:
    manifest = json.loads((folder / "bundle.json").read_text())
    edit(manifest)
    _write_manifest(folder, json.dumps(manifest))


CORRUPTIONS = {
    "truncated_umap": (lambda f: _truncate(f, "umap.npz"), r"part umap\.npz is \d+ bytes, expected \d+ \(truncated or replaced\)"),
    "missing_clusters": (lambda f: (f / "clusters.npz").unlink(), r"part clusters\.npz is missing"),
    "altered_encoder": (lambda f: _flip_byte(f, "encoder.npz"), r"part encoder\.npz does not match its checksum"),
    "missing_text_part": (lambda f: (f / "text.json").unlink(), r"part text\.json is missing"),
    "unlisted_file": (lambda f: (f / "stage.py").write_text("import os"), r"holds files bundle\.json does not list \(stage\.py\)$"),
    "format_version": (
        lambda f: _edit_manifest(f, lambda m: m.update(format_version=FORMAT_VERSION + 1)),
        r"format version 7, but this n2d-spark reads format versions 1, 2, 3, 4, 5, 6",
    ),
    "scikit_learn_version": (
        lambda f: _edit_manifest(f, lambda m: m["versions"].update({"scikit-learn": "0.24.2"})),
        r"saved with scikit-learn 0\.24\.2, this environment has scikit-learn \S+; .* needs scikit-learn 0\.24\.\*",
    ),
    "umap_learn_version": (
        lambda f: _edit_manifest(f, lambda m: m["versions"].update({"umap-learn": "0.4.6"})),
        (
            r"saved with umap-learn 0\.4\.6, this environment has umap-learn \S+; its UMAP is pickled or rebuilt from "
            r"its fitted attributes, so loading needs umap-learn 0\.4\.\*"
        ),
    ),
    "no_manifest": (lambda f: (f / "bundle.json").unlink(), r"^not a model bundle: \S+/model/bundle\.json is missing$"),
    "manifest_not_json": (
        lambda f: _write_manifest(f, '{"format_version": 1, "parts": '),
        r"bundle\.json is not valid JSON \(Expecting value: line 1 column 32 \(char 31\)\)$",
    ),
    "manifest_fails_its_crc": (
        lambda f: (f / "bundle.json").write_text("{}"),
        r"bundle\.json cannot be read \(org\.apache\.hadoop\.fs\.ChecksumException: Checksum error: ",
    ),
    "manifest_lacks_parts": (lambda f: _edit_manifest(f, lambda m: m.pop("parts")), r"bundle\.json has no 'parts'"),
    "edited_part_list": (
        lambda f: _edit_manifest(f, lambda m: m["parts"].pop("umap.npz")),
        r"model_id '\w+' does not match its parts' checksums",
    ),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS), ids=list(CORRUPTIONS))
def test_damaged_bundle_is_one_clear_line_and_nothing_is_unpickled(spark, saved, tmp_path, monkeypatch, case):
    damage, message = CORRUPTIONS[case]
    folder = _copy(saved, tmp_path)
    damage(folder)
    before = _listing(tmp_path)
    unpickled = []
    monkeypatch.setattr(bundle_module, "_unpickle", lambda data: unpickled.append(data))
    with pytest.raises(BundleError) as raised:
        _load(spark, folder)
    text = str(raised.value)
    assert "\n" not in text and len(text) < 400, text
    assert text.startswith(("model bundle ", "not a model bundle: ")), text
    assert re.search(message, text), text
    assert unpickled == []
    assert _listing(tmp_path) == before


def test_a_part_that_fails_to_load_is_named(spark, saved, tmp_path):
    """A part whose checksum is right but whose content is not what it should be (rewritten bundle.json)."""
    folder = _copy(saved, tmp_path)
    rewrite_parts(folder, ["clusters.npz"], {"clusters.npz": b"not an npz"})
    # np.load takes what is not an array file for a pickle, and refuses it.
    with pytest.raises(BundleError, match=r"part clusters\.npz could not be loaded \(ValueError: .*pickle.*\)$"):
        _load(spark, folder)


def test_a_format_5_bundle_places_rows_with_umaps_transform(spark, saved, tmp_path):
    """Before placements were learned: no placement.npz, and rows are placed by UMAP's transform as when it was trained."""
    folder = _copy(saved, tmp_path)
    rewrite_parts(folder, ["placement.npz"], {}, format_version=5)
    loaded = _load(spark, folder)
    assert loaded.assigner.placement is None and loaded.assigner.places_by_batch
    points = np.random.default_rng(2).normal(size=(40, BOTTLENECK)).astype(np.float32)
    np.testing.assert_array_equal(loaded.assigner.assign(points).coordinates, transform(saved[4].reducer, points))


@pytest.mark.parametrize(
    "layers, message",
    [
        ({"w0": np.ones((BOTTLENECK, 4), np.float32), "b0": np.ones(4, np.float32)}, r"it maps 10 to 4 dimensions, the model 10 to 2"),
        ({"w0": np.ones((BOTTLENECK, 4), np.float32), "b0": np.ones(3, np.float32)}, r"layer 0: weights \(10, 4\) float32 and bias \(3,\)"),
        ({"w0": np.ones((BOTTLENECK, 4), np.float32), "b0": np.ones(4, np.float32), "w1": np.ones((5, 2), np.float32),
          "b1": np.ones(2, np.float32)}, r"layer 1: .* do not chain"),
    ],
    ids=["wrong_width", "bias_width", "unchained"],
)
def test_a_crafted_placement_is_refused_in_one_line(spark, saved, tmp_path, layers, message):
    """A placement.npz whose layers do not fit the model (its checksum and the model id recomputed, as anyone can)."""
    folder = _copy(saved, tmp_path)
    rewrite_parts(folder, ["placement.npz"], {"placement.npz": bundle_module._npz_bytes(layers, {})})
    with pytest.raises(BundleError, match=r"part placement\.npz could not be loaded \(ValueError: " + message) as raised:
        _load(spark, folder)
    assert "\n" not in str(raised.value)


CLUSTER_SECTIONS = [
    {"algorithm": "kmeans", "k": 3},
    {"algorithm": "gmm", "k": 3},
    {"algorithm": "dbscan", "eps": 0.5, "min_samples": 5},
    {"algorithm": "hdbscan", "min_samples": 10},
]


def _refuse_to_unpickle(*_args, **_kwargs):
    raise AssertionError("a pickle was loaded")


def _vector_mode_bundle(spark, folder: Path, reducer, cluster: dict, points: np.ndarray | None = None) -> ClusterAssigner:
    """A vector-mode bundle with ``reducer`` and a clusterer for ``cluster`` fitted on the coordinates of ``points``
    (300 random ones by default); returns what it saved."""
    config = config_from_dict({**SMALL, "input": {"features_col": "pixels"}, "cluster": cluster})
    if points is None:
        points = np.random.default_rng(4).normal(size=(300, BOTTLENECK)).astype(np.float32)
    clusters, _ = fit_clusters(reducer.transform(points), config.cluster)
    model = EmbeddingModel(DenseScaler("none", np.zeros(6, np.float32), np.ones(6, np.float32)), _encoder(6))
    assigner = ClusterAssigner(reducer, clusters)
    save_bundle(FileSystem(spark, str(folder)), str(folder), config, model, assigner, None, TOPICS, None)
    return assigner


@pytest.mark.parametrize("cluster", CLUSTER_SECTIONS, ids=lambda c: c["algorithm"])
def test_every_clusterer_loads_without_a_pickle_and_labels_as_before(spark, saved, tmp_path, monkeypatch, cluster):
    folder = tmp_path / "model"
    assigner = _vector_mode_bundle(spark, folder, saved[4].reducer, cluster)
    assert {"umap.npz", "clusters.npz"} <= set(_listing(folder)) and not list(folder.glob("*.pkl"))
    with monkeypatch.context() as patch:
        patch.setattr(bundle_module, "_unpickle", _refuse_to_unpickle)
        patch.setattr(pickle, "loads", _refuse_to_unpickle)
        patch.setattr(pickle, "load", _refuse_to_unpickle)
        loaded = _load(spark, folder)
    held_out = np.random.default_rng(6).normal(size=(60, BOTTLENECK)).astype(np.float32)
    placed, expected = loaded.assigner.assign(held_out), assigner.assign(held_out)
    np.testing.assert_allclose(placed.coordinates, expected.coordinates, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(placed.labels, expected.labels)
    np.testing.assert_array_equal(loaded.assigner.clusters.predict(expected.coordinates), expected.labels)


def _assert_one_line(raised: pytest.ExceptionInfo, pattern: str) -> None:
    text = str(raised.value)
    assert "\n" not in text and len(text) < 400, text
    assert re.fullmatch(pattern, text), text


def test_a_umap_with_pynndescent_index_stays_a_pickle_loaded_only_when_allowed(spark, tmp_path, monkeypatch):
    """pynndescent's index (UMAP's own neighbour search) has no array form: umap.pkl, behind allow_pickle.

    The index is compared as data, and rows are placed only where UMAP needs no search (its fit
    rows): a first search JIT-compiles pynndescent's query for a minute in a new environment, and
    what it would find follows from the index's arrays.
    """
    import umap
    from pynndescent import NNDescent

    points = np.random.default_rng(1).normal(size=(300, BOTTLENECK)).astype(np.float32)
    # Below 4,096 rows UMAP computes every distance unless asked to search an index, as on a large fit.
    reducer = umap.UMAP(
        n_components=2, n_neighbors=10, force_approximation_algorithm=True, random_state=0, n_jobs=1
    ).fit(points)
    folder = tmp_path / "model"
    assigner = _vector_mode_bundle(spark, folder, reducer, {"algorithm": "kmeans", "k": 3}, points=points)
    assert {"umap.pkl", "clusters.npz"} <= set(_listing(folder)) and not (folder / "umap.npz").exists()

    _refused_without_pickle(
        spark, folder, monkeypatch,
        r"umap\.pkl is a pickle \(its UMAP searches pynndescent's index, which has "
        r"no array form\), and loading a pickle runs code: pass --allow-pickle \(load_bundle's allow_pickle=True\) if the "
        r"bundle is trusted, or train a new model with a manifold\.metric that is searched exactly \(euclidean, cosine, \.\.\.\)",
    )

    loaded = load_bundle(spark, FileSystem(spark, str(folder)), str(folder), allow_pickle=True)
    index, loaded_index = reducer._knn_search_index, loaded.assigner.reducer._knn_search_index
    assert isinstance(loaded_index, NNDescent)
    for graph, loaded_graph in zip(index.neighbor_graph, loaded_index.neighbor_graph):
        np.testing.assert_array_equal(loaded_graph, graph)
    np.testing.assert_array_equal(loaded.assigner.reducer._raw_data, points)
    placed, expected = loaded.assigner.assign(points), assigner.assign(points)
    for field in ("coordinates", "labels", "confidence", "second"):
        np.testing.assert_array_equal(getattr(placed, field), getattr(expected, field))


def _refused_without_pickle(spark, folder: Path, monkeypatch, reason: str) -> None:
    """Loading ``folder`` by default fails with one line ending in ``reason`` (a pattern), and unpickles nothing."""
    unpickled = []
    with monkeypatch.context() as patch:
        patch.setattr(bundle_module, "_unpickle", lambda data: unpickled.append(data))
        with pytest.raises(BundleError) as raised:
            _load(spark, folder)
    _assert_one_line(raised, rf"model bundle {re.escape(str(folder))}: " + reason)
    assert unpickled == []


def _assert_assigns_alike(loaded: ClusterAssigner, fitted: ClusterAssigner, seed: int, atol: float) -> None:
    """``loaded`` places and labels 40 random points as ``fitted`` does (coordinates within ``atol``)."""
    points = np.random.default_rng(seed).normal(size=(40, BOTTLENECK)).astype(np.float32)
    placed, expected = loaded.assign(points), fitted.assign(points)
    np.testing.assert_allclose(placed.coordinates, expected.coordinates, rtol=0, atol=atol)
    np.testing.assert_array_equal(placed.labels, expected.labels)
    np.testing.assert_array_equal(placed.second, expected.second)


def test_a_format_1_bundle_loads_only_with_allow_pickle(spark, saved, tmp_path, monkeypatch):
    folder = _copy(saved, tmp_path)
    as_format_1(spark, folder)
    _refused_without_pickle(
        spark, folder, monkeypatch,
        r"format version 1 stores the UMAP and the clusterer as pickles "
        r"\(umap\.pkl, clusters\.pkl\), and loading a pickle runs code: pass --allow-pickle \(load_bundle's "
        r"allow_pickle=True\) if the bundle is trusted, or train a new model",
    )

    loaded = load_bundle(spark, FileSystem(spark, str(folder)), str(folder), allow_pickle=True)
    _assert_assigns_alike(loaded.assigner, saved[4], seed=2, atol=0.0)

    # Saved again, it is a bundle without pickles, that labels as before.
    again = tmp_path / "again"
    save_bundle(FileSystem(spark, str(again)), str(again), loaded.config, loaded.embedding_model, loaded.assigner,
                loaded.learned_text, TOPICS, None)
    assert not list(again.glob("*.pkl"))
    _assert_assigns_alike(_load(spark, again).assigner, saved[4], seed=2, atol=0.0)

    # Its pickles hold NumPy arrays: NumPy's major version is checked, as it was for format 1.
    _edit_manifest(folder, lambda m: m["versions"].update(numpy="1.26.4"))
    with pytest.raises(BundleError, match=r"umap\.pkl and clusters\.pkl hold NumPy arrays, so loading needs numpy 1\.\*"):
        load_bundle(spark, FileSystem(spark, str(folder)), str(folder), allow_pickle=True)


def test_a_format_2_text_pipeline_is_read_as_data_and_vectorizes_as_before(spark, saved, tmp_path, monkeypatch):
    """Format 2's text_pipeline/ (Spark ML's layout) gives the same vocabulary, never through Spark ML's loader."""
    folder = _copy(saved, tmp_path)
    as_format_2(spark, folder)
    assert (folder / "text_pipeline" / "stages").is_dir() and not (folder / "text.json").exists()
    with monkeypatch.context() as patch:
        patch.setattr(PipelineModel, "load", _refuse_to_run)
        patch.setattr(DefaultParamsReader, "loadParamsInstance", _refuse_to_run)
        loaded = _load(spark, folder)
    assert loaded.learned_text == learned(saved[5])
    assert loaded.model_id != saved[1]  # other parts, another id


def _refuse_to_run(*_args, **_kwargs):
    raise AssertionError("Spark ML's loader ran")


def _edit_stage_metadata(folder: Path, stage: str, edit) -> None:
    """The metadata of the text pipeline's stage named ``stage`` edited, bundle.json rewritten to match."""
    [path] = folder.glob(f"text_pipeline/stages/*_{stage}_*/metadata/part-*")
    metadata = json.loads(path.read_text())
    edit(metadata)
    name = str(path.relative_to(folder))
    rewrite_parts(folder, [name], {name: json.dumps(metadata).encode()})


def test_a_format_2_bundle_with_an_edited_statement_is_refused_and_runs_nothing(spark, saved, tmp_path):
    folder = _copy(saved, tmp_path)
    as_format_2(spark, folder)
    target = tmp_path / "written_by_the_bundle"
    statement = f"INSERT OVERWRITE DIRECTORY '{target}' USING csv SELECT * FROM __THIS__"
    _edit_stage_metadata(folder, "SQLTransformer", lambda m: m["paramMap"].update(statement=statement))
    with pytest.raises(BundleError) as raised:
        _load(spark, folder)
    _assert_one_line(
        raised,
        rf"model bundle {re.escape(str(folder))}: text_pipeline/ is not the text pipeline this n2d-spark writes "
        r"\(the SQLTransformer's statement is not the one this n2d-spark writes\); nothing of it was run: train a new model",
    )
    assert not target.exists()


def test_a_format_2_bundle_naming_a_python_stage_is_refused_and_imports_nothing(spark, saved, tmp_path, monkeypatch):
    """Spark ML's loader imports the module.class that metadata with "language": "Python" names."""
    folder = _copy(saved, tmp_path)
    as_format_2(spark, folder)
    marker = tmp_path / "imported"
    (tmp_path / "planted_stage.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Stage: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _edit_stage_metadata(folder, "RegexTokenizer", lambda m: m.update({"class": "planted_stage.Stage", "language": "Python"}))
    with pytest.raises(BundleError) as raised:
        _load(spark, folder)
    _assert_one_line(
        raised,
        rf"model bundle {re.escape(str(folder))}: text_pipeline/ is not the text pipeline this n2d-spark writes "
        r"\(stage 1 is 'planted_stage\.Stage' \(Python\), expected org\.apache\.spark\.ml\.feature\.RegexTokenizer\); "
        r"nothing of it was run: train a new model",
    )
    assert not marker.exists() and "planted_stage" not in sys.modules


def test_versions_that_do_not_matter_are_not_checked(spark, saved, tmp_path):
    """hdbscan's version matters only to an hdbscan clusterer; Python's and SciPy's are recorded, not checked;
    NumPy's and pynndescent's only where a pickle holds their objects (not here: the parts are arrays)."""
    folder = _copy(saved, tmp_path)
    _edit_manifest(
        folder,
        lambda m: m["versions"].update(hdbscan="0.1.0", python="3.99.0", scipy="0.1.0", numpy="1.26.4", pynndescent="0.1.0"),
    )
    assert _load(spark, folder).versions["hdbscan"] == "0.1.0"


def _through_npz(arrays: dict, scalars: dict) -> tuple[dict, dict]:
    """The arrays as a .npz gives them back without pickle, and the scalars as JSON does."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}, json.loads(json.dumps(scalars))


@pytest.mark.parametrize("metric", ["euclidean", "minkowski"])
def test_umap_transforms_the_same_after_an_array_round_trip(metric):
    """euclidean: the exact neighbour index, rebuilt; minkowski (below 4,096 rows): every distance computed."""
    config = config_from_dict({**SMALL, "manifold": {**SMALL["manifold"], "metric": metric}})
    points = np.random.default_rng(1).normal(size=(300, BOTTLENECK)).astype(np.float32)
    reducer, coordinates = fit_manifold(points, config.manifold)
    rebuilt = umap_from_arrays(*_through_npz(*umap_to_arrays(reducer)))
    new = np.random.default_rng(2).normal(size=(40, BOTTLENECK)).astype(np.float32)
    np.testing.assert_allclose(rebuilt.transform(new), reducer.transform(new), rtol=0, atol=1e-6)
    # The fit rows themselves: their fitted coordinates, recognised by UMAP's hash of the input.
    np.testing.assert_array_equal(rebuilt.transform(points), coordinates)


# Each algorithm with what it may carry besides its estimator: centroids for reduce_outliers,
# a topic per cluster (n_topics), the silhouette of each k (k: auto).
EVERY_CLUSTERER = [
    ClusterConfig(algorithm="kmeans", k="auto", k_min=3, k_max=6, n_topics=2),
    ClusterConfig(algorithm="gmm", k=4),
    ClusterConfig(algorithm="dbscan", eps=0.5, min_samples=5, reduce_outliers=False),
    ClusterConfig(algorithm="hdbscan", min_samples=10, reduce_outliers=False),
]


def _blobs_and_held_out() -> tuple[np.ndarray, np.ndarray]:
    """Fit points in four blobs, and held-out points spread over and around them (noise for dbscan and hdbscan)."""
    points, _ = make_blobs(n_samples=600, n_features=2, centers=4, cluster_std=1.0, random_state=0)
    held_out = np.random.default_rng(5).uniform(points.min(0) - 1, points.max(0) + 1, size=(400, 2))
    return points.astype(np.float32), held_out.astype(np.float32)


@pytest.mark.parametrize("config", EVERY_CLUSTERER, ids=lambda c: c.algorithm)
def test_clusters_label_the_same_after_an_array_round_trip(config):
    points, held_out = _blobs_and_held_out()
    clusters, _ = fit_clusters(points, config)
    rebuilt = clusters_from_arrays(*_through_npz(*clusters_to_arrays(clusters)))
    expected = clusters.predict(held_out)
    np.testing.assert_array_equal(rebuilt.predict(held_out), expected)
    np.testing.assert_array_equal(rebuilt.predict_raw(held_out), clusters.predict_raw(held_out))
    assert len(np.unique(expected)) >= 2
    assert type(rebuilt.estimator) is type(clusters.estimator)
    for field in ("algorithm", "eps", "fit_noise_share", "k_scores"):
        assert getattr(rebuilt, field) == getattr(clusters, field), field
    for field in ("core_labels", "centroids", "centroid_labels", "topic_of"):
        np.testing.assert_array_equal(getattr(rebuilt, field), getattr(clusters, field), err_msg=field)
    if config.algorithm == "kmeans":
        assert clusters.topic_of is not None and clusters.k_scores and clusters.centroids is not None
    if config.algorithm in ("dbscan", "hdbscan"):
        assert (expected == -1).any() and (expected != -1).any()
    if config.algorithm == "hdbscan":
        # approximate_predict's prediction data, computed again by hdbscan from the fit rows and the condensed tree.
        saved, again = clusters.estimator.prediction_data_, rebuilt.estimator.prediction_data_
        np.testing.assert_array_equal(again.core_distances, saved.core_distances)
        np.testing.assert_array_equal(again.cluster_tree, saved.cluster_tree)
        assert again.cluster_map == saved.cluster_map and again.max_lambdas == saved.max_lambdas


def test_a_bundle_without_topic_centroids_gets_them_from_its_fit_rows(spark, saved, tmp_path):
    """Bundles written before labels had a confidence hold no topic centroids: loading computes them
    from the fit rows' coordinates and labels, so confidence and second cluster are as a new bundle gives."""
    folder = _copy(saved, tmp_path)
    arrays, scalars = bundle_module._npz_contents((folder / "clusters.npz").read_bytes())
    assert {"topic_ids", "topic_centroids"} <= set(arrays)
    older = {name: value for name, value in arrays.items() if name not in ("topic_ids", "topic_centroids")}
    rewrite_parts(folder, ["clusters.npz"], {"clusters.npz": bundle_module._npz_bytes(older, scalars)})
    loaded, fitted = _load(spark, folder).assigner.clusters, saved[4].clusters
    np.testing.assert_array_equal(loaded.topic_ids, fitted.topic_ids)
    np.testing.assert_allclose(loaded.topic_centroids, fitted.topic_centroids, rtol=0, atol=1e-6)


def test_topics_novelty_added_topics_and_parent_round_trip(spark, saved, tmp_path):
    """Format 4's parts: the topics with their names and first models, the novelty calibration, the topics an
    update added and the parent's id come back as saved; a format 3 bundle loads without them."""
    _, parent_id, config, embedding_model, assigner, text_model = saved
    fit_rows = assigner.fit_rows
    calibration = calibrate(fit_rows, "euclidean", seed=0)
    signals = NoveltySignals(calibration)
    added = AddedTopics(fit_rows[:20] + 50, np.full(20, 7, np.int32), np.ones(20, np.int32), neighbours=15, metric="euclidean")
    child = replace(assigner, added=added)
    folder = tmp_path / "child"
    save_bundle(FileSystem(spark, str(folder)), str(folder), config, embedding_model, child, learned(text_model),
                TOPICS, signals, parent_model_id=parent_id)
    loaded = _load(spark, folder)
    assert loaded.parent_model_id == parent_id and loaded.topics == TOPICS and loaded.format_version == 6
    assert loaded.novelty.embedding.threshold(0.98) == calibration.threshold(0.98) > 1 and loaded.novelty.terms is None
    np.testing.assert_array_equal(loaded.assigner.added.rows, added.rows)
    np.testing.assert_array_equal(loaded.assigner.added.topics, added.topics)
    # A row among the added rows joins their topic; a fit row keeps the original model's label.
    placed = loaded.assigner.assign(np.vstack([fit_rows[:3] + 50, fit_rows[100:103]]))
    assert placed.labels[:3].tolist() == [7, 7, 7] and 7 not in placed.labels[3:].tolist()

    rewrite_parts(folder, ["topics.json", "novelty.npz", "added.npz"], {}, format_version=3)
    older = _load(spark, folder)
    assert older.topics is None and older.novelty is None and older.assigner.added is None and older.format_version == 3


def test_a_terms_calibration_round_trips_and_format_4_reads_as_the_embeddings_alone(spark, saved, tmp_path):
    """A text model's novelty is measured in its embedding and its terms: the terms' calibration keeps its IDF
    and known rows (novelty_terms.npz); a format 4 bundle, without that part and whose novelty.npz named no
    space, tells new rows by the embedding alone."""
    _, _, config, embedding_model, assigner, text_model = saved
    rng = np.random.default_rng(0)
    width = len(vocabulary(text_model))
    counts = sp.random(200, width, density=0.3, format="csr", random_state=1, data_rvs=lambda n: rng.integers(1, 4, n)).astype(np.float32)
    idf = smoothed_idf(counts)
    terms = calibrate(term_points(counts, np.asarray(counts.sum(axis=1)).ravel() + 2, idf), "cosine", seed=0, idf=idf)
    embedding = calibrate(assigner.fit_rows, "euclidean", seed=0)
    folder = tmp_path / "terms"
    save_bundle(FileSystem(spark, str(folder)), str(folder), config, embedding_model, assigner, learned(text_model),
                TOPICS, NoveltySignals(embedding, terms))
    assert {"novelty.npz", "novelty_terms.npz"} <= {p.name for p in folder.iterdir()}
    loaded = _load(spark, folder).novelty
    assert loaded.embedding.space == "embedding" and loaded.embedding.threshold(0.98) == embedding.threshold(0.98)
    assert loaded.terms.space == "terms" and loaded.terms.threshold(0.98) == terms.threshold(0.98)
    np.testing.assert_array_equal(loaded.terms.idf, idf)
    assert loaded.terms.known.shape == (100, width + 1) and (loaded.terms.known != terms.known).nnz == 0
    # Each known row's last column: its 2 words outside the vocabulary.
    np.testing.assert_array_equal(loaded.terms.known[:, -1].toarray().ravel(), np.full(100, 2.0))

    arrays, scalars = embedding.to_arrays()
    del scalars["space"]
    rewrite_parts(folder, ["novelty.npz", "novelty_terms.npz"], {"novelty.npz": bundle_module._npz_bytes(arrays, scalars)}, format_version=4)
    older = _load(spark, folder)
    assert older.format_version == 4 and older.novelty.embedding.space == "embedding" and older.novelty.terms is None


def test_novelty_parts_in_the_wrong_place_are_refused(spark, saved, tmp_path):
    """A terms calibration where the embedding's belongs (or the reverse) is refused in one line naming the part."""
    _, _, config, embedding_model, assigner, text_model = saved
    embedding = calibrate(assigner.fit_rows, "euclidean", seed=0)
    folder = tmp_path / "swapped"
    save_bundle(FileSystem(spark, str(folder)), str(folder), config, embedding_model, assigner, learned(text_model),
                TOPICS, NoveltySignals(embedding))
    rewrite_parts(folder, [], {"novelty_terms.npz": (folder / "novelty.npz").read_bytes()})
    with pytest.raises(BundleError, match=r"part novelty_terms\.npz could not be loaded .*expected the embedding space's calibration"):
        _load(spark, folder)


def _rewrite_npz(folder: Path, name: str, edit) -> None:
    """Part ``name``'s arrays and scalars edited by ``edit`` (in place), its checksum and the model id recomputed."""
    arrays, scalars = bundle_module._npz_contents((folder / name).read_bytes())
    edit(arrays, scalars)
    rewrite_parts(folder, [name], {name: bundle_module._npz_bytes(arrays, scalars)})


def _rewrite_encoder(folder: Path, edit) -> None:
    """encoder.npz (arrays only, as encoder_arrays writes it) edited by ``edit``, its checksum and the model id recomputed."""
    with np.load(folder / "encoder.npz", allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    edit(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    rewrite_parts(folder, ["encoder.npz"], {"encoder.npz": buffer.getvalue()})


def _longer_vocabulary(folder: Path, _saved) -> None:
    text = json.loads((folder / "text.json").read_text())
    text["terms"] += [f"crafted{i}" for i in range(64)]
    rewrite_parts(folder, ["text.json"], {"text.json": json.dumps(text).encode()})


def _wider_embedding(folder: Path, _saved) -> None:
    """The encoder's last layer 12 wide: its layers chain, but UMAP's fit rows are 10 wide."""
    _rewrite_encoder(folder, lambda arrays: arrays.update(w1=np.ones((8, 12), np.float32), b1=np.ones(12, np.float32)))


def _novelty_terms(folder: Path, saved, edit) -> None:
    """A terms space calibration over the bundle's vocabulary (and the embedding's beside it), edited by ``edit``."""
    _, _, _, _, assigner, text_model = saved
    rng = np.random.default_rng(0)
    width = len(vocabulary(text_model))
    counts = sp.random(200, width, density=0.3, format="csr", random_state=1, data_rvs=lambda n: rng.integers(1, 4, n)).astype(np.float32)
    idf = smoothed_idf(counts)
    terms_arrays, terms_scalars = calibrate(term_points(counts, np.asarray(counts.sum(axis=1)).ravel() + 2, idf), "cosine", 0, idf).to_arrays()
    terms_arrays = {name: value.copy() for name, value in terms_arrays.items()}
    edit(terms_arrays, width)
    rewrite_parts(folder, [], {
        "novelty.npz": bundle_module._npz_bytes(*calibrate(assigner.fit_rows, "euclidean", seed=0).to_arrays()),
        "novelty_terms.npz": bundle_module._npz_bytes(terms_arrays, terms_scalars),
    })


def _index_past_the_columns(arrays: dict, width: int) -> None:
    arrays["known_indices"][0] = width + 40


def _descending_pointers(arrays: dict, _width: int) -> None:
    arrays["known_indptr"][1], arrays["known_indptr"][2] = arrays["known_indptr"][2], arrays["known_indptr"][1]


CRAFTED_PARTS = {
    "vocabulary_longer_than_the_encoder_input": (
        _longer_vocabulary, r"part text\.json could not be loaded \(ValueError: its vocabulary has \d+ terms, the encoder's input is \d+ wide\)",
    ),
    "idf_wider_than_the_encoder_input": (
        lambda f, _: _rewrite_encoder(f, lambda a: a.update(scaler_idf=np.ones(len(a["scaler_idf"]) + 1, np.float32))),
        r"part encoder\.npz could not be loaded \(ValueError: the scaling's IDF: shape \((\d+),\) float32, expected \(\d+,\)\)",
    ),
    "encoder_layer_wider_than_the_umap_fit_rows": (
        _wider_embedding, r"part umap\.npz could not be loaded \(ValueError: its fit rows: shape \(300, 10\) \w+, expected \(n, 12\)\)",
    ),
    "cluster_centres_wider_than_the_manifold": (
        lambda f, _: _rewrite_npz(f, "clusters.npz", lambda a, s: a.update({"estimator.cluster_centers_": np.ones((3, 3))})),
        r"part clusters\.npz could not be loaded \(ValueError: cluster_centers_: shape \(3, 3\) float64, expected \(n, 2\)\)",
    ),
    "unknown_clusterer_attribute": (
        lambda f, _: _rewrite_npz(f, "clusters.npz", lambda a, s: s["estimator_fitted"].update(transform=0)),
        r"part clusters\.npz could not be loaded \(ValueError: kmeans has no fitted attribute 'transform' that its prediction reads\)",
    ),
    "placement_from_a_wider_embedding": (
        lambda f, _: _rewrite_npz(f, "placement.npz", lambda a, s: a.update(w0=np.ones((BOTTLENECK + 1, 128), np.float32))),
        r"part placement\.npz could not be loaded \(ValueError: it maps 11 to 2 dimensions, the model 10 to 2\)",
    ),
    "added_rows_wider_than_the_embedding": (
        lambda f, _: rewrite_parts(f, [], {"added.npz": bundle_module._npz_bytes(
            {"rows": np.ones((5, BOTTLENECK + 1), np.float32), "topics": np.full(5, 7, np.int32), "generation": np.ones(5, np.int32)},
            {"neighbours": 15, "metric": "euclidean"},
        )}),
        r"part added\.npz could not be loaded \(ValueError: its rows: shape \(5, 11\) float32, expected \(n, 10\)\)",
    ),
    "csr_index_past_the_terms": (
        lambda f, saved: _novelty_terms(f, saved, _index_past_the_columns),
        r"part novelty_terms\.npz could not be loaded \(ValueError: its known rows' indices: from 0 to \d+, expected 0 to \d+\)",
    ),
    "csr_pointers_that_descend": (
        lambda f, saved: _novelty_terms(f, saved, _descending_pointers),
        r"part novelty_terms\.npz could not be loaded \(ValueError: its known rows' pointers do not ascend from 0 to its \d+ entries\)",
    ),
}


@pytest.mark.parametrize("case", list(CRAFTED_PARTS), ids=list(CRAFTED_PARTS))
def test_a_crafted_part_that_does_not_fit_the_model_is_refused_in_one_line_naming_it(spark, saved, tmp_path, case):
    """A part rewritten with its checksum and the model id recomputed (as anyone can) so that a width or an index
    the executors' native code relies on does not fit: refused on load, before anything reads out of bounds."""
    craft, message = CRAFTED_PARTS[case]
    folder = _copy(saved, tmp_path)
    craft(folder, saved)
    before = _listing(tmp_path)
    with pytest.raises(BundleError) as raised:
        _load(spark, folder)
    _assert_one_line(raised, rf"model bundle {re.escape(str(folder))}: {message}")
    assert _listing(tmp_path) == before


def test_assign_with_a_vocabulary_longer_than_the_encoder_exits_2_and_writes_nothing(spark, saved, tmp_path, monkeypatch, capsys):
    import n2d_spark.cli as cli

    folder = _copy(saved, tmp_path)
    _longer_vocabulary(folder, saved)
    (tmp_path / "new.csv").write_text("review\n" + "\n".join(TEXTS) + "\n")
    # The console script in this process, on the suite's session (which it must not stop).
    monkeypatch.setattr(spark, "stop", lambda: None)
    monkeypatch.setattr(cli, "build_local_session", lambda _config, verbose: spark)
    assert cli.main(["assign", "--model", str(folder), "--input", str(tmp_path / "new.csv"), "--output", str(tmp_path / "o")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.fullmatch(r"n2d-spark: error: model bundle \S+: part text\.json could not be loaded \(ValueError: its vocabulary .*\)", last), last
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob("o.staging-*"))

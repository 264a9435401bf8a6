"""The fitted model as a self-contained bundle: saved by every training run, loaded to label new rows.

Layout of a bundle folder (``OUTPUT/model/``)::

    bundle.json      format version, model id, creation time, the resolved config, library
                     versions, and every part's SHA-256 and size
    encoder.npz      the input scaling and the encoder's weights (plain arrays, no pickle)
    umap.pkl         the fitted umap.UMAP (a pickle)
    clusters.pkl     the fitted clusterer and what assigning new points needs (a pickle)
    text_pipeline/   the Spark ML text pipeline, vocabulary included (text mode only)

Loading checks, in this order and before anything is unpickled: that bundle.json exists and
parses, its format version, the versions of the libraries whose objects are pickled (a
scikit-learn or UMAP pickle is only safe to load with the minor version that wrote it),
and every part's presence, size and checksum. Any failure is one ``BundleError`` line that
names the problem; loading writes nothing.

A pickle runs code when it is loaded: a bundle must come from a trusted source. The
checksums detect damage (a truncated copy, a missing file), not tampering: whoever can
replace a part can rewrite bundle.json too.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from datetime import datetime, timezone

from pyspark.ml import PipelineModel

from n2d_spark.assign import ClusterAssigner
from n2d_spark.bundle_manifest import (
    FORMAT_VERSION,
    MAJOR,
    MANIFEST,
    MINOR,
    check_versions,
    installed_versions,
    model_id_of,
    one_line,
    read_manifest,
    verified_part,
)
from n2d_spark.cluster import FittedClusters
from n2d_spark.config import JobConfig, config_from_dict
from n2d_spark.encoder import EmbeddingModel
from n2d_spark.errors import BundleError, N2DError
from n2d_spark.fs import FileSystem
from n2d_spark.manifold import import_umap_without_tensorflow
from n2d_spark.output import load_embedding_model, save_embedding_model

ENCODER_PART = "encoder.npz"
UMAP_PART = "umap.pkl"
CLUSTERS_PART = "clusters.pkl"
TEXT_PIPELINE_DIR = "text_pipeline"
_PICKLE_PROTOCOL = 5


@dataclass(frozen=True)
class ModelBundle:
    """A loaded bundle: everything needed to embed, place and label new rows as the training run did."""

    model_id: str
    config: JobConfig
    embedding_model: EmbeddingModel
    assigner: ClusterAssigner
    # None in vector mode (config.input.features_col set).
    text_model: PipelineModel | None
    versions: dict[str, str]


def save_bundle(
    fs: FileSystem,
    folder: str,
    config: JobConfig,
    embedding_model: EmbeddingModel,
    assigner: ClusterAssigner,
    text_model: PipelineModel | None,
) -> str:
    """Write the bundle into ``folder`` (bundle.json last, so a bundle without it is incomplete); returns the model id."""
    folder = folder.rstrip("/")
    if (text_model is None) != (config.input.features_col is not None):
        raise ValueError("a text pipeline is saved in text mode, and only then (config.input.features_col is None)")
    # Parts serialized here are hashed as written: reading tens of MB back through py4j costs
    # seconds (about 11 MB/s). Only the text pipeline, which Spark ML writes, is read back.
    written = {ENCODER_PART: save_embedding_model(fs, folder, embedding_model)}
    for name, part in ((UMAP_PART, assigner.reducer), (CLUSTERS_PART, assigner.clusters)):
        written[name] = pickle.dumps(part, protocol=_PICKLE_PROTOCOL)
        fs.write_bytes(f"{folder}/{name}", written[name])
    if text_model is not None:
        text_model.write().save(f"{folder}/{TEXT_PIPELINE_DIR}")
        for name, _ in _content_files(fs, f"{folder}/{TEXT_PIPELINE_DIR}"):
            written[f"{TEXT_PIPELINE_DIR}/{name}"] = fs.read_bytes(f"{folder}/{TEXT_PIPELINE_DIR}/{name}")
    parts = {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)} for name, data in written.items()}
    model_id = model_id_of(parts)
    manifest = {
        "format_version": FORMAT_VERSION,
        "model_id": model_id,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "versions": installed_versions(),
        "parts": parts,
    }
    fs.write_bytes(f"{folder}/{MANIFEST}", json.dumps(manifest, indent=2, sort_keys=True).encode())
    return model_id


def load_bundle(spark, fs: FileSystem, folder: str) -> ModelBundle:
    """The bundle in ``folder``, checked whole before any part is loaded; ``BundleError`` names what is wrong."""
    folder = folder.rstrip("/")
    manifest = read_manifest(fs, folder)
    where = f"model bundle {folder}"
    if manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"{where}: format version {manifest['format_version']!r}, but this n2d-spark reads format version "
            f"{FORMAT_VERSION} (train a new model, or use the n2d-spark release that wrote it)"
        )
    try:
        config = config_from_dict(manifest["config"])
    except N2DError as error:
        raise BundleError(f"{where}: its config is not valid here: {one_line(error)}") from None
    text_mode = config.input.features_col is None
    _check_versions(where, manifest["versions"], config, text_mode)
    parts = manifest["parts"]
    if manifest["model_id"] != model_id_of(parts):
        raise BundleError(f"{where}: model_id {manifest['model_id']!r} does not match its parts' checksums")
    required = [ENCODER_PART, UMAP_PART, CLUSTERS_PART]
    for name in required:
        if name not in parts:
            raise BundleError(f"{where}: bundle.json lists no part {name}")
    text_parts = sorted(name for name in parts if name.startswith(f"{TEXT_PIPELINE_DIR}/"))
    if text_mode and not text_parts:
        raise BundleError(f"{where}: bundle.json lists no {TEXT_PIPELINE_DIR}/ files, and the config is text mode")
    sizes = dict(fs.list_files(folder))
    verified = {name: verified_part(fs, folder, where, name, parts[name], sizes) for name in sorted(parts)}

    # Every check has passed: only now is anything deserialized.
    embedding_model = _loading(where, ENCODER_PART, lambda: load_embedding_model(_Parts(verified), ""))
    import_umap_without_tensorflow()
    reducer = _loading(where, UMAP_PART, lambda: pickle.loads(verified[UMAP_PART]))
    clusters = _loading(where, CLUSTERS_PART, lambda: pickle.loads(verified[CLUSTERS_PART]))
    import umap

    _check_type(where, UMAP_PART, reducer, umap.UMAP)
    _check_type(where, CLUSTERS_PART, clusters, FittedClusters)
    text_model = None
    if text_mode:
        text_model = _loading(where, f"{TEXT_PIPELINE_DIR}/", lambda: PipelineModel.load(f"{folder}/{TEXT_PIPELINE_DIR}"))
    return ModelBundle(
        model_id=manifest["model_id"],
        config=config,
        embedding_model=embedding_model,
        assigner=ClusterAssigner(reducer=reducer, clusters=clusters),
        text_model=text_model,
        versions=dict(manifest["versions"]),
    )


def _check_versions(where: str, saved: dict[str, str], config: JobConfig, text_mode: bool) -> None:
    """The libraries whose objects the bundle pickles (or, for Spark ML, saves) must match closely enough."""
    rules = [
        ("numpy", MAJOR, "the pickles hold NumPy arrays"),
        ("scikit-learn", MINOR, "the pickles hold scikit-learn objects"),
        ("umap-learn", MINOR, "umap.pkl is a pickle of umap-learn's UMAP"),
        ("pynndescent", MINOR, "umap.pkl holds pynndescent's index for metrics scikit-learn lacks"),
    ]
    if config.cluster.algorithm == "hdbscan":
        rules.append(("hdbscan", MINOR, "clusters.pkl is a pickle of hdbscan's HDBSCAN"))
    if text_mode:
        rules.append(("pyspark", MAJOR, "text_pipeline/ is a Spark ML model"))
    check_versions(where, saved, rules)


class _Parts:
    """The verified parts' bytes, read as ``output.load_embedding_model`` reads files: so it loads what was checked."""

    def __init__(self, parts: dict[str, bytes]):
        self._parts = parts

    def read_bytes(self, path: str) -> bytes:
        return self._parts[path.lstrip("/")]


def _loading(where: str, name: str, load):
    try:
        return load()
    except Exception as error:  # noqa: BLE001 - whatever a library's loader raises becomes one line naming the part
        raise BundleError(f"{where}: part {name} could not be loaded ({type(error).__name__}: {one_line(error)})") from None


def _check_type(where: str, name: str, value: object, expected: type) -> None:
    if not isinstance(value, expected):
        raise BundleError(f"{where}: part {name} holds a {type(value).__name__}, expected {expected.__name__}")


def _content_files(fs: FileSystem, folder: str) -> list[tuple[str, int]]:
    """A folder's files, less the local file system's checksum sidecars (.name.crc): those do not survive a copy to HDFS or S3."""
    return [(name, size) for name, size in fs.list_files(folder) if not _is_crc_sidecar(name)]


def _is_crc_sidecar(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.startswith(".") and base.endswith(".crc")

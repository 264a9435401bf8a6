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
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from pyspark.ml import PipelineModel

from n2d_spark.assign import ClusterAssigner
from n2d_spark.cluster import FittedClusters
from n2d_spark.config import JobConfig, config_from_dict
from n2d_spark.encoder import EmbeddingModel
from n2d_spark.errors import BundleError, N2DError
from n2d_spark.fs import FileSystem
from n2d_spark.manifold import import_umap_without_tensorflow
from n2d_spark.output import load_embedding_model, save_embedding_model

FORMAT_VERSION = 1
MANIFEST = "bundle.json"
ENCODER_PART = "encoder.npz"
UMAP_PART = "umap.pkl"
CLUSTERS_PART = "clusters.pkl"
TEXT_PIPELINE_DIR = "text_pipeline"
_PICKLE_PROTOCOL = 5

# Recorded in bundle.json; _check_versions says which of them must match on loading.
_RECORDED_PACKAGES = ("numpy", "scipy", "scikit-learn", "umap-learn", "pynndescent", "hdbscan", "pyspark", "n2d-spark")
# How many leading version numbers must match: the major, or the major and the minor.
_MAJOR = 1
_MINOR = 2


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
    model_id = _model_id(parts)
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
    manifest = _read_manifest(fs, folder)
    where = f"model bundle {folder}"
    if manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"{where}: format version {manifest['format_version']!r}, but this n2d-spark reads format version "
            f"{FORMAT_VERSION} (train a new model, or use the n2d-spark release that wrote it)"
        )
    try:
        config = config_from_dict(manifest["config"])
    except N2DError as error:
        raise BundleError(f"{where}: its config is not valid here: {_one_line(error)}") from None
    text_mode = config.input.features_col is None
    _check_versions(where, manifest["versions"], config, text_mode)
    parts = manifest["parts"]
    if manifest["model_id"] != _model_id(parts):
        raise BundleError(f"{where}: model_id {manifest['model_id']!r} does not match its parts' checksums")
    required = [ENCODER_PART, UMAP_PART, CLUSTERS_PART]
    for name in required:
        if name not in parts:
            raise BundleError(f"{where}: bundle.json lists no part {name}")
    text_parts = sorted(name for name in parts if name.startswith(f"{TEXT_PIPELINE_DIR}/"))
    if text_mode and not text_parts:
        raise BundleError(f"{where}: bundle.json lists no {TEXT_PIPELINE_DIR}/ files, and the config is text mode")
    sizes = dict(fs.list_files(folder))
    verified = {name: _verified_part(fs, folder, where, name, parts[name], sizes) for name in sorted(parts)}

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


def installed_versions() -> dict[str, str]:
    return package_versions(_RECORDED_PACKAGES)


def package_versions(packages) -> dict[str, str]:
    """The Python version and each installed package's ("not installed" where it is absent)."""
    versions = {"python": platform.python_version()}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _read_manifest(fs: FileSystem, folder: str) -> dict[str, Any]:
    path = f"{folder}/{MANIFEST}"
    if not fs.exists(path):
        raise BundleError(f"not a model bundle: {path} is missing")
    try:
        data = fs.read_bytes(path)
    except Exception as error:  # noqa: BLE001 - a Java error from the file system, e.g. a checksum failure
        raise BundleError(f"model bundle {folder}: {MANIFEST} cannot be read ({_one_line(error)})") from None
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise BundleError(f"model bundle {folder}: {MANIFEST} is not valid JSON ({_one_line(error)})") from None
    expected = {"format_version": int, "model_id": str, "config": dict, "versions": dict, "parts": dict}
    if not isinstance(manifest, dict):
        raise BundleError(f"model bundle {folder}: {MANIFEST} is not a JSON object")
    # The format version first: a later format may lay out the other keys differently.
    for key in ("format_version", *(k for k in expected if k != "format_version")):
        if key not in manifest:
            raise BundleError(f"model bundle {folder}: {MANIFEST} has no {key!r}")
        if key == "format_version" and manifest[key] != FORMAT_VERSION:
            return manifest
        if not isinstance(manifest[key], expected[key]) or isinstance(manifest[key], bool):
            raise BundleError(f"model bundle {folder}: {MANIFEST}'s {key!r} is not a {expected[key].__name__}")
    for name, part in manifest["parts"].items():
        if not (isinstance(part, dict) and isinstance(part.get("sha256"), str) and isinstance(part.get("bytes"), int)):
            raise BundleError(f"model bundle {folder}: {MANIFEST}'s entry for part {name} lacks sha256 or bytes")
        if name.startswith("/") or ".." in name.split("/"):
            raise BundleError(f"model bundle {folder}: {MANIFEST} names a part outside the bundle: {name}")
    return manifest


def _check_versions(where: str, saved: dict[str, str], config: JobConfig, text_mode: bool) -> None:
    """The libraries whose objects the bundle pickles (or, for Spark ML, saves) must match closely enough."""
    rules = [
        ("numpy", _MAJOR, "the pickles hold NumPy arrays"),
        ("scikit-learn", _MINOR, "the pickles hold scikit-learn objects"),
        ("umap-learn", _MINOR, "umap.pkl is a pickle of umap-learn's UMAP"),
        ("pynndescent", _MINOR, "umap.pkl holds pynndescent's index for metrics scikit-learn lacks"),
    ]
    if config.cluster.algorithm == "hdbscan":
        rules.append(("hdbscan", _MINOR, "clusters.pkl is a pickle of hdbscan's HDBSCAN"))
    if text_mode:
        rules.append(("pyspark", _MAJOR, "text_pipeline/ is a Spark ML model"))
    installed = installed_versions()
    for package, parts, why in rules:
        if package not in saved:
            raise BundleError(f"{where}: bundle.json does not record the version of {package}")
        then, now = str(saved[package]), installed[package]
        if now == "not installed" or then.split(".")[:parts] != now.split(".")[:parts]:
            needed = ".".join(then.split(".")[:parts]) + ".*"
            raise BundleError(
                f"{where}: saved with {package} {then}, this environment has {package} {now}; "
                f"{why}, so loading needs {package} {needed} (install that, or train a new model)"
            )


def _verified_part(fs: FileSystem, folder: str, where: str, name: str, expected: dict, sizes: dict[str, int]) -> bytes:
    """The part's bytes, once its size (from the listing, before reading) and its checksum match bundle.json."""
    if name not in sizes:
        raise BundleError(f"{where}: part {name} is missing")
    if sizes[name] != expected["bytes"]:
        raise BundleError(
            f"{where}: part {name} is {sizes[name]} bytes, expected {expected['bytes']} (truncated or replaced)"
        )
    try:
        data = fs.read_bytes(f"{folder}/{name}")
    except Exception as error:  # noqa: BLE001 - a Java error from the file system, e.g. a checksum failure
        raise BundleError(f"{where}: part {name} cannot be read ({_one_line(error)})") from None
    if hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise BundleError(f"{where}: part {name} does not match its checksum (corrupted or replaced)")
    return data


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
        raise BundleError(f"{where}: part {name} could not be loaded ({type(error).__name__}: {_one_line(error)})") from None


def _check_type(where: str, name: str, value: object, expected: type) -> None:
    if not isinstance(value, expected):
        raise BundleError(f"{where}: part {name} holds a {type(value).__name__}, expected {expected.__name__}")


def _content_files(fs: FileSystem, folder: str) -> list[tuple[str, int]]:
    """A folder's files, less the local file system's checksum sidecars (.name.crc): those do not survive a copy to HDFS or S3."""
    return [(name, size) for name, size in fs.list_files(folder) if not _is_crc_sidecar(name)]


def _is_crc_sidecar(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.startswith(".") and base.endswith(".crc")


def _model_id(parts: dict[str, dict]) -> str:
    """The first 16 hex digits of a SHA-256 over the parts' names and checksums: the same parts, the same id."""
    digest = hashlib.sha256()
    for name in sorted(parts):
        digest.update(f"{name}\0{parts[name]['sha256']}\n".encode())
    return digest.hexdigest()[:16]


def _one_line(error: BaseException) -> str:
    """An error's message on one line; for a Java error, the Java exception alone, without the stack trace."""
    java = getattr(error, "java_exception", None)
    text = " ".join(str(java.toString() if java is not None else error).split())
    return text if len(text) <= 300 else text[:297] + "..."

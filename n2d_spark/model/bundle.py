"""The fitted model as a self-contained bundle: saved by every training run, loaded to label new rows.

Over 300 lines: one file format, so each part's writer and reader, and the checks between them, sit
side by side.

Layout of a bundle folder (``OUTPUT/model/``), format version 6::

    bundle.json      format version, model id, the parent model's id (an update's; else null),
                     creation time, the resolved config, library versions, and every part's
                     SHA-256 and size
    encoder.npz      the input scaling and the encoder's weights
    umap.npz         the fitted UMAP: its fit rows, their coordinates, and as JSON its
                     parameters and fitted scalars (manifold.umap_to_arrays)
    placement.npz    the learned placement's dense layers (model/placement.py); absent for a model
                     that places rows with UMAP's transform (manifold.placement: transform)
    clusters.npz     the fitted clusterer and what assigning new points needs: arrays, and
                     as JSON the scalars (cluster_arrays.clusters_to_arrays)
    text.json        what the text model learned: its vocabulary and stop words (text mode only)
    topics.json      each topic's name, top terms, share and first model (model/topics.py)
    novelty.npz      what tells a new row in the embedding space (model/novelty.py); absent when the
                     fit rows were too few
    novelty_terms.npz  a text model's: what tells a new row in its terms, with the known rows in them
    added.npz        the topics updates added: their rows, topics and generation (absent until an update adds one)

Format 3 had no topics.json, novelty.npz or added.npz: ``assign`` reads it, ``update`` refuses it.
Format 4 had no novelty_terms.npz: ``update`` tells its new rows by the embedding alone.
Format 5 had no placement.npz: its rows are placed by UMAP's transform, as they were when it was trained.

The .npz parts are read with ``allow_pickle=False``, and text.json as data: the text pipeline
is rebuilt from this project's code (model/text_vocabulary.py), so loading runs no code, SQL or
class name from the bundle. Formats 1 and 2 stored the text pipeline as Spark ML saves it
(``text_pipeline/``), whose own loader runs the SQL statement it holds and imports the Python
classes its metadata names; it is read as data instead, and refused unless it is the pipeline
this project wrote. The UMAP and the clusterer are rebuilt from them as objects of their own libraries
that predict exactly as the fitted ones did: the UMAP's exact neighbour index from its fit
rows, HDBSCAN's prediction data by hdbscan from the fit rows and the condensed tree
(manifold.umap_from_arrays, cluster_arrays.clusters_from_arrays).

One part may still be a pickle: ``umap.pkl`` instead of ``umap.npz`` when the UMAP's neighbour
search is pynndescent's index (a metric outside manifold.EXACT_METRICS, on 4,096 fit rows or
more). That index is a neighbour graph, a forest of search trees and numba-compiled search
code that no array form rebuilds as it was. Format version 1 stored the UMAP and the
clusterer as pickles (``umap.pkl``, ``clusters.pkl``). A pickle runs code when it is loaded:
``load_bundle`` loads one only with ``allow_pickle=True`` (``assign --allow-pickle``), for a
bundle from a trusted source, and otherwise stops with one line saying so.

Loading checks, in this order and before anything is deserialized: that bundle.json exists
and parses (model/bundle_json.py), its format version, whether it holds pickles (and may load them), the versions
of the libraries whose objects are pickled or rebuilt (the rebuild sets their fitted
attributes, private ones included, which a minor release may rename), that the folder holds
no file bundle.json does not list, and every part's presence, size and checksum. Any failure is one ``BundleError`` line that names the
problem; loading writes nothing.

The checksums detect damage (a truncated copy, a missing file), not tampering: whoever can
replace a part can rewrite bundle.json too. So, as each part is deserialized, its shapes, index
ranges and attribute names are checked against the parts before it (model/bundle_shapes.py,
cluster_arrays.clusters_from_arrays) before the executors' native code can read them: a part that
does not fit is the same one line naming it.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import numpy as np
from n2d_spark.core.config import JobConfig, config_from_dict
from n2d_spark.core.errors import BundleError, N2DError
from n2d_spark.core.fs import FileSystem
from n2d_spark.model.bundle_json import (
    FORMAT_VERSION,
    LINEAGE_FORMAT_VERSION,
    MAJOR,
    MANIFEST,
    MINOR,
    PICKLE_FORMAT_VERSION,
    READABLE_FORMAT_VERSIONS,
    SPARK_ML_TEXT_FORMAT_VERSIONS,
    check_versions,
    installed_versions,
    model_id_of,
    one_line,
    read_manifest,
    verified_part,
)
from n2d_spark.model import bundle_shapes
from n2d_spark.model.assigner import AddedTopics, ClusterAssigner
from n2d_spark.model.cluster import FittedClusters, topic_centroids
from n2d_spark.model.cluster_arrays import clusters_from_arrays, clusters_to_arrays
from n2d_spark.model.encoder import EmbeddingModel, Encoder
from n2d_spark.model.encoder_arrays import encoder_of_arrays, layer_arrays, load_embedding_model, save_embedding_model
from n2d_spark.model.manifold import (
    import_umap_without_tensorflow,
    umap_from_arrays,
    umap_to_arrays,
)
from n2d_spark.model.novelty import NoveltyCalibration, NoveltySignals
from n2d_spark.model.text_vocabulary import TEXT_PART, TextVocabulary, from_spark_ml_files
from n2d_spark.model.topics import ModelTopics

ENCODER_PART = "encoder.npz"
UMAP_PART = "umap.npz"
PLACEMENT_PART = "placement.npz"
CLUSTERS_PART = "clusters.npz"
TOPICS_PART = "topics.json"
NOVELTY_PART = "novelty.npz"
NOVELTY_TERMS_PART = "novelty_terms.npz"
ADDED_PART = "added.npz"
# A UMAP with pynndescent's index (in any format), and format 1's parts.
UMAP_PICKLE_PART = "umap.pkl"
CLUSTERS_PICKLE_PART = "clusters.pkl"
# Formats 1 and 2: the text pipeline as Spark ML saved it.
SPARK_ML_TEXT_DIR = "text_pipeline"
_PICKLE_PROTOCOL = 5
# The member of a part's .npz that holds its JSON scalars.
_SCALARS_MEMBER = "scalars_json"


@dataclass(frozen=True)
class ModelBundle:
    """A loaded bundle: everything needed to embed, place and label new rows as the training run did."""

    model_id: str
    config: JobConfig
    embedding_model: EmbeddingModel
    assigner: ClusterAssigner
    # What the text model learned; None in vector mode (config.input.features_col set).
    learned_text: TextVocabulary | None
    versions: dict[str, str]
    # Format 4 on; None in older bundles, which update refuses.
    topics: ModelTopics | None = None
    # None in older bundles, and where the fit rows were too few to calibrate (model/novelty.py).
    novelty: NoveltySignals | None = None
    # The model an update started from; None for a trained model.
    parent_model_id: str | None = None
    format_version: int = FORMAT_VERSION


def save_bundle(
    fs: FileSystem,
    folder: str,
    config: JobConfig,
    embedding_model: EmbeddingModel,
    assigner: ClusterAssigner,
    learned_text: TextVocabulary | None,
    topics: ModelTopics,
    novelty: NoveltySignals | None,
    parent_model_id: str | None = None,
) -> str:
    """Write the bundle into ``folder`` (bundle.json last, so a bundle without it is incomplete); returns the model id."""
    folder = folder.rstrip("/")
    if (learned_text is None) != (config.input.features_col is not None):
        raise ValueError("a text model is saved in text mode, and only then (config.input.features_col is None)")
    # Parts are hashed as serialized here: reading tens of MB back through py4j costs seconds (about 11 MB/s).
    written = {ENCODER_PART: save_embedding_model(fs, folder, embedding_model)}
    umap_arrays = umap_to_arrays(assigner.reducer)
    if umap_arrays is None:
        # pynndescent's index has no array form (module docstring): this part stays a pickle.
        written[UMAP_PICKLE_PART] = pickle.dumps(assigner.reducer, protocol=_PICKLE_PROTOCOL)
    else:
        written[UMAP_PART] = _npz_bytes(*umap_arrays)
    if assigner.placement is not None:
        written[PLACEMENT_PART] = _npz_bytes(layer_arrays(assigner.placement), {})
    written[CLUSTERS_PART] = _npz_bytes(*clusters_to_arrays(assigner.clusters))
    if learned_text is not None:
        written[TEXT_PART] = learned_text.to_json()
    written[TOPICS_PART] = topics.to_json()
    if novelty is not None:
        written[NOVELTY_PART] = _npz_bytes(*novelty.embedding.to_arrays())
        if novelty.terms is not None:
            written[NOVELTY_TERMS_PART] = _npz_bytes(*novelty.terms.to_arrays())
    if assigner.added is not None:
        added = assigner.added
        written[ADDED_PART] = _npz_bytes(
            {"rows": added.rows, "topics": added.topics, "generation": added.generation},
            {"neighbours": added.neighbours, "metric": added.metric},
        )
    for name in (UMAP_PART, UMAP_PICKLE_PART, PLACEMENT_PART, CLUSTERS_PART, TEXT_PART, TOPICS_PART, NOVELTY_PART, NOVELTY_TERMS_PART, ADDED_PART):
        if name in written:
            fs.write_bytes(f"{folder}/{name}", written[name])
    parts = {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)} for name, data in written.items()}
    model_id = model_id_of(parts)
    manifest = {
        "format_version": FORMAT_VERSION,
        "model_id": model_id,
        "parent_model_id": parent_model_id,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "versions": installed_versions(),
        "parts": parts,
    }
    fs.write_bytes(f"{folder}/{MANIFEST}", json.dumps(manifest, indent=2, sort_keys=True).encode())
    return model_id


def load_bundle(spark, fs: FileSystem, folder: str, allow_pickle: bool = False) -> ModelBundle:
    """The bundle in ``folder``, checked whole before any part is loaded; ``BundleError`` names what is wrong.

    ``allow_pickle``: load the parts that are pickles (format 1's UMAP and clusterer, a UMAP
    with pynndescent's index). A pickle runs code when loaded: only for a trusted bundle.
    """
    folder = folder.rstrip("/")
    manifest = read_manifest(fs, folder)
    where = f"model bundle {folder}"
    version = manifest["format_version"]
    if version not in READABLE_FORMAT_VERSIONS:
        raise BundleError(
            f"{where}: format version {version!r}, but this n2d-spark reads format versions "
            f"{', '.join(map(str, READABLE_FORMAT_VERSIONS))} (train a new model, or use the n2d-spark release that wrote it)"
        )
    parts = manifest["parts"]
    if version == PICKLE_FORMAT_VERSION:
        umap_part, clusters_part = UMAP_PICKLE_PART, CLUSTERS_PICKLE_PART
    else:
        umap_part, clusters_part = (UMAP_PICKLE_PART if UMAP_PICKLE_PART in parts else UMAP_PART), CLUSTERS_PART
    pickled = [name for name in (umap_part, clusters_part) if name.endswith(".pkl")]
    if pickled and not allow_pickle:
        raise BundleError(f"{where}: {_pickle_refusal(version)}")
    try:
        config = config_from_dict(manifest["config"])
    except N2DError as error:
        raise BundleError(f"{where}: its config is not valid here: {one_line(error)}") from None
    text_mode = config.input.features_col is None
    _check_versions(where, manifest["versions"], config, pickled)
    if manifest["model_id"] != model_id_of(parts):
        raise BundleError(f"{where}: model_id {manifest['model_id']!r} does not match its parts' checksums")
    required = [ENCODER_PART, umap_part, clusters_part] + ([TOPICS_PART] if version >= LINEAGE_FORMAT_VERSION else [])
    for name in required:
        if name not in parts:
            raise BundleError(f"{where}: bundle.json lists no part {name}")
    spark_ml_text = version in SPARK_ML_TEXT_FORMAT_VERSIONS
    text_parts = sorted(name for name in parts if name.startswith(f"{SPARK_ML_TEXT_DIR}/") or name == TEXT_PART)
    if text_mode and not text_parts:
        raise BundleError(f"{where}: bundle.json lists no {f'{SPARK_ML_TEXT_DIR}/ files' if spark_ml_text else TEXT_PART}, and the config is text mode")
    sizes = dict(_content_files(fs, folder))
    unlisted = sorted(set(sizes) - set(parts) - {MANIFEST})
    if unlisted:
        raise BundleError(f"{where}: holds files bundle.json does not list ({', '.join(unlisted[:3])}{', ...' if len(unlisted) > 3 else ''})")
    verified = {name: verified_part(fs, folder, where, name, parts[name], sizes) for name in sorted(parts)}

    # Every check has passed: only now is anything deserialized, each part checked against those
    # before it (model/bundle_shapes.py) before it is built into what the executors' native code reads.
    embedding_model = _loading(where, ENCODER_PART, lambda: load_embedding_model(_Parts(verified), ""))
    _loading(where, ENCODER_PART, lambda: bundle_shapes.check_encoder(embedding_model))
    learned_text = None
    if text_mode and spark_ml_text:
        files = {name.removeprefix(f"{SPARK_ML_TEXT_DIR}/"): verified[name] for name in text_parts}
        try:
            learned_text = from_spark_ml_files(files, config.input.text_col)
        except (ValueError, KeyError) as error:
            raise BundleError(
                f"{where}: {SPARK_ML_TEXT_DIR}/ is not the text pipeline this n2d-spark writes ({one_line(error)}); "
                f"nothing of it was run: train a new model"
            ) from None
    elif text_mode:
        learned_text = _loading(where, TEXT_PART, lambda: TextVocabulary.from_json(verified[TEXT_PART]))
    vocabulary_size = None if learned_text is None else len(learned_text.terms)
    if vocabulary_size is not None:
        text_part = f"{SPARK_ML_TEXT_DIR}/" if spark_ml_text else TEXT_PART
        _loading(where, text_part, lambda: bundle_shapes.check_vocabulary(vocabulary_size, embedding_model.encoder))
    embedding_width = embedding_model.encoder.output_dim
    import_umap_without_tensorflow()
    import umap

    if umap_part == UMAP_PICKLE_PART:
        reducer = _loading(where, umap_part, lambda: _unpickle(verified[umap_part]))
        _check_type(where, umap_part, reducer, umap.UMAP)
    else:
        reducer = _from_npz(
            where, umap_part, verified, lambda arrays, scalars: bundle_shapes.check_umap(arrays, scalars, embedding_width), umap_from_arrays,
        )
    manifold_width = reducer.embedding_.shape[1]
    if clusters_part == CLUSTERS_PICKLE_PART:
        clusters = _loading(where, clusters_part, lambda: _unpickle(verified[clusters_part]))
        _check_type(where, clusters_part, clusters, FittedClusters)
    else:
        clusters = _from_npz(
            where, clusters_part, verified, lambda arrays, scalars: bundle_shapes.check_clusters(arrays, scalars, manifold_width),
            clusters_from_arrays,
        )
    if clusters.topic_ids is None:
        # A bundle from before labels had a confidence: its topics' centroids, from the fit rows' coordinates.
        clusters.topic_ids, clusters.topic_centroids = topic_centroids(reducer.embedding_, clusters.predict(reducer.embedding_))
    placement = None
    if PLACEMENT_PART in verified:
        placement = _loading(where, PLACEMENT_PART, lambda: _placement(_npz_contents(verified[PLACEMENT_PART])[0], embedding_width, manifold_width))
    topics = novelty = added = None
    if version >= LINEAGE_FORMAT_VERSION:
        topics = _loading(where, TOPICS_PART, lambda: ModelTopics.from_json(verified[TOPICS_PART]))
        if NOVELTY_PART in verified:
            calibrations = [
                _from_npz(
                    where, part, verified, lambda arrays, scalars: bundle_shapes.check_novelty(arrays, scalars, vocabulary_size),
                    NoveltyCalibration.from_arrays,
                )
                for part in (NOVELTY_PART, NOVELTY_TERMS_PART) if part in verified
            ]
            novelty = _loading(where, NOVELTY_TERMS_PART if len(calibrations) > 1 else NOVELTY_PART, lambda: NoveltySignals(*calibrations))
        if ADDED_PART in verified:
            added = _from_npz(
                where, ADDED_PART, verified, lambda arrays, _: bundle_shapes.check_added(arrays, embedding_width), _added_topics,
            )
        if novelty is not None and novelty.terms is not None and novelty.terms.training_known_rows is None and added is None:
            # Saved before the terms' known rows were counted, and by a training run: every one of them is its own.
            novelty = replace(novelty, terms=replace(novelty.terms, training_known_rows=novelty.terms.known.shape[0]))
    return ModelBundle(
        model_id=manifest["model_id"],
        config=config,
        embedding_model=embedding_model,
        assigner=ClusterAssigner(reducer=reducer, clusters=clusters, added=added, placement=placement),
        learned_text=learned_text,
        versions=dict(manifest["versions"]),
        topics=topics,
        novelty=novelty,
        parent_model_id=manifest.get("parent_model_id"),
        format_version=version,
    )


def _placement(arrays: dict[str, np.ndarray], embedding_width: int, manifold_width: int) -> Encoder:
    """The learned placement's layers, from the embedding's width to the manifold's."""
    placement = encoder_of_arrays(arrays)
    bundle_shapes.check_placement(placement, embedding_width, manifold_width)
    return placement


def _added_topics(arrays: dict[str, np.ndarray], scalars: dict) -> AddedTopics:
    rows, topics, generation = arrays["rows"], arrays["topics"], arrays["generation"]
    return AddedTopics(rows, topics.astype(np.int32), generation.astype(np.int32), int(scalars["neighbours"]), str(scalars["metric"]))


def _check_versions(where: str, saved: dict[str, str], config: JobConfig, pickled: list[str]) -> None:
    """The libraries whose objects the bundle pickles or rebuilds must match closely enough.

    A rebuild from arrays sets the objects' fitted attributes, some of them private (UMAP's,
    KMeans' thread count, HDBSCAN's condensed tree), which a minor release may rename.
    """
    rules = [
        ("scikit-learn", MINOR, "its estimators are pickled or rebuilt from their fitted attributes"),
        ("umap-learn", MINOR, "its UMAP is pickled or rebuilt from its fitted attributes"),
    ]
    if pickled:
        # A pickle holds NumPy arrays as that NumPy pickled them; any NumPy reads a .npz.
        rules.append(("numpy", MAJOR, f"{' and '.join(pickled)} hold NumPy arrays"))
    if UMAP_PICKLE_PART in pickled:
        rules.append(("pynndescent", MINOR, "umap.pkl holds pynndescent's index"))
    if config.cluster.algorithm == "hdbscan":
        rules.append(("hdbscan", MINOR, "its HDBSCAN is pickled or rebuilt from its fitted attributes"))
    check_versions(where, saved, rules)


def _pickle_refusal(version: int) -> str:
    """Which parts are pickles and why, and how to go on: the line that refuses to load them."""
    allow = "and loading a pickle runs code: pass --allow-pickle (load_bundle's allow_pickle=True) if the bundle is trusted"
    if version == PICKLE_FORMAT_VERSION:
        return (f"format version {version} stores the UMAP and the clusterer as pickles ({UMAP_PICKLE_PART}, "
                f"{CLUSTERS_PICKLE_PART}), {allow}, or train a new model")
    return (f"{UMAP_PICKLE_PART} is a pickle (its UMAP searches pynndescent's index, which has no array form), {allow}, "
            f"or train a new model with a manifold.metric that is searched exactly (euclidean, cosine, ...)")


def _npz_bytes(arrays: dict[str, np.ndarray], scalars: dict) -> bytes:
    """``arrays`` and the JSON of ``scalars`` as one .npz."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, **{_SCALARS_MEMBER: np.array(json.dumps(scalars, sort_keys=True))})
    return buffer.getvalue()


def _npz_contents(data: bytes) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and the scalars that ``_npz_bytes`` wrote; no pickle is loaded."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files if name != _SCALARS_MEMBER}
        return arrays, json.loads(str(npz[_SCALARS_MEMBER]))


# Where the classes a pickled part names live now: format 1 bundles written before the package was
# grouped into sub-packages (21a7bcf) name them at its top level (n2d_spark.cluster.FittedClusters,
# n2d_spark.manifold.ExactNeighbors).
_MOVED_MODULES = {
    "n2d_spark.cluster": "n2d_spark.model.cluster",
    "n2d_spark.manifold": "n2d_spark.model.manifold",
    "n2d_spark.encoder": "n2d_spark.model.encoder",
}


class _MovedModulesUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        return super().find_class(_MOVED_MODULES.get(module, module), name)


def _unpickle(data: bytes):
    """A pickled part, its classes found where they live now (``_MOVED_MODULES``)."""
    return _MovedModulesUnpickler(io.BytesIO(data)).load()


class _Parts:
    """The verified parts' bytes, read as ``encoder_arrays.load_embedding_model`` reads files: so it loads what was checked."""

    def __init__(self, parts: dict[str, bytes]):
        self._parts = parts

    def read_bytes(self, path: str) -> bytes:
        return self._parts[path.lstrip("/")]


def _from_npz(where: str, name: str, verified: dict[str, bytes], check, build):
    """Part ``name``'s arrays and scalars, checked by ``check`` (model/bundle_shapes.py), then built by ``build``;
    either failing is one line that names the part."""

    def load():
        arrays, scalars = _npz_contents(verified[name])
        check(arrays, scalars)
        return build(arrays, scalars)

    return _loading(where, name, load)


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

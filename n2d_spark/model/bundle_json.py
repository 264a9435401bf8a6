"""A model bundle's bundle.json: what it records, and the checks made on it before any part is read.

bundle.json records the format version, the model id, the resolved config, the library
versions and every part's SHA-256 and size (n2d_spark/model/bundle.py describes the parts).
Each check that fails is one ``BundleError`` line naming the problem.
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from typing import Any

from n2d_spark.core.errors import BundleError
from n2d_spark.core.fs import FileSystem

FORMAT_VERSION = 6
# Format 4 added topics.json, novelty.npz, added.npz and bundle.json's parent_model_id: what update needs.
# Format 5 added novelty_terms.npz, a text model's novelty in its terms with its known rows (model/novelty.py):
# a reader of format 4 would tell new rows by the embedding alone.
# Format 6 added placement.npz, the learned placement (model/placement.py): a reader of format 5 would
# place the rows with UMAP's transform, and label them otherwise than the training run did.
LINEAGE_FORMAT_VERSION = 4
# Format 1 stored the UMAP and the clusterer as pickles: loaded only with allow_pickle. Formats 1
# and 2 stored the text pipeline as Spark ML saves it: read as data (model/text_vocabulary.py).
PICKLE_FORMAT_VERSION = 1
SPARK_ML_TEXT_FORMAT_VERSIONS = (1, 2)
READABLE_FORMAT_VERSIONS = (1, 2, 3, 4, 5, FORMAT_VERSION)
MANIFEST = "bundle.json"

# What a model's parts are read with: recorded in bundle.json and in a run's run.json.
_MODEL_PACKAGES = ("numpy", "scipy", "scikit-learn", "umap-learn", "pyspark")
# Recorded in bundle.json; model/bundle.py says which of them must match on loading.
_RECORDED_PACKAGES = (*_MODEL_PACKAGES, "pynndescent", "hdbscan", "n2d-spark")
# Recorded in run.json: what the run's results and speed depend on, training included.
_RUN_PACKAGES = (*_MODEL_PACKAGES, "pandas", "pyarrow", "tensorflow", "keras")
# How many leading version numbers must match: the major, or the major and the minor.
MAJOR = 1
MINOR = 2


def installed_versions() -> dict[str, str]:
    return package_versions(_RECORDED_PACKAGES)


def run_versions() -> dict[str, str]:
    """The versions run.json records."""
    return package_versions(_RUN_PACKAGES)


def package_versions(packages) -> dict[str, str]:
    """The Python version and each installed package's ("not installed" where it is absent)."""
    versions = {"python": platform.python_version()}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def read_manifest(fs: FileSystem, folder: str) -> dict[str, Any]:
    path = f"{folder}/{MANIFEST}"
    if not fs.exists(path):
        raise BundleError(f"not a model bundle: {path} is missing")
    try:
        data = fs.read_bytes(path)
    except Exception as error:  # noqa: BLE001 - a Java error from the file system, e.g. a checksum failure
        raise BundleError(f"model bundle {folder}: {MANIFEST} cannot be read ({one_line(error)})") from None
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise BundleError(f"model bundle {folder}: {MANIFEST} is not valid JSON ({one_line(error)})") from None
    expected = {"format_version": int, "model_id": str, "config": dict, "versions": dict, "parts": dict}
    if not isinstance(manifest, dict):
        raise BundleError(f"model bundle {folder}: {MANIFEST} is not a JSON object")
    # The format version first: a later format may lay out the other keys differently.
    for key in ("format_version", *(k for k in expected if k != "format_version")):
        if key not in manifest:
            raise BundleError(f"model bundle {folder}: {MANIFEST} has no {key!r}")
        if key == "format_version" and manifest[key] not in READABLE_FORMAT_VERSIONS:
            return manifest
        if not isinstance(manifest[key], expected[key]) or isinstance(manifest[key], bool):
            raise BundleError(f"model bundle {folder}: {MANIFEST}'s {key!r} is not a {expected[key].__name__}")
    parent = manifest.get("parent_model_id")
    if parent is not None and not isinstance(parent, str):
        raise BundleError(f"model bundle {folder}: {MANIFEST}'s 'parent_model_id' is not a string")
    for name, part in manifest["parts"].items():
        if not (isinstance(part, dict) and isinstance(part.get("sha256"), str) and isinstance(part.get("bytes"), int)):
            raise BundleError(f"model bundle {folder}: {MANIFEST}'s entry for part {name} lacks sha256 or bytes")
        if name.startswith("/") or ".." in name.split("/"):
            raise BundleError(f"model bundle {folder}: {MANIFEST} names a part outside the bundle: {name}")
    return manifest


def check_versions(where: str, saved: dict[str, str], rules: list[tuple[str, int, str]]) -> None:
    """Each (package, MAJOR or MINOR, why) of ``rules``: the version that saved the bundle and the installed one must match that far."""
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


def verified_part(fs: FileSystem, folder: str, where: str, name: str, expected: dict, sizes: dict[str, int]) -> bytes:
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
        raise BundleError(f"{where}: part {name} cannot be read ({one_line(error)})") from None
    if hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise BundleError(f"{where}: part {name} does not match its checksum (corrupted or replaced)")
    return data


def model_id_of(parts: dict[str, dict]) -> str:
    """The first 16 hex digits of a SHA-256 over the parts' names and checksums: the same parts, the same id."""
    digest = hashlib.sha256()
    for name in sorted(parts):
        digest.update(f"{name}\0{parts[name]['sha256']}\n".encode())
    return digest.hexdigest()[:16]


def one_line(error: BaseException) -> str:
    """An error's message on one line; for a Java error, the Java exception alone, without the stack trace."""
    java = getattr(error, "java_exception", None)
    text = " ".join(str(java.toString() if java is not None else error).split())
    return text if len(text) <= 300 else text[:297] + "..."

"""The output folder: its parts' names, the checks made before any work, and a staging folder beside
the output that is published whole at the end."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from n2d_spark.core.errors import OutputExistsError
from n2d_spark.core.fs import FileSystem
from n2d_spark.core.run_context import RUN_ID_PATTERN

log = logging.getLogger(__name__)

LABELS_DIR = "labels"
CLUSTERS_DIR = "clusters"
MODEL_DIR = "model"
REJECTED_DIR = "rejected"
REPORT_DIR = "report"
TOPIC_TREE_DIR = "topic_tree"
TOPICS_OVER_TIME_DIR = "topics_over_time"
NEIGHBOURS_DIR = "neighbours"
EMBEDDINGS_DIR = "embeddings"
USERS_DIR = "users"
SIMILAR_USERS_DIR = "similar_users"
MANIFEST_FILE = "run.json"


# A previous output is moved here while the new one takes its place, then deleted.
_ASIDE = ".replaced-"
# Object stores whose Hadoop connectors rename a folder by copying and deleting every file.
_NO_ATOMIC_RENAME = frozenset({"s3", "s3a", "s3n", "gs", "abfs", "abfss", "wasb", "wasbs", "oss", "cos"})


@contextmanager
def staged_output(fs: FileSystem, output: str, mode: str, run_id: str):
    """Yield a staging folder beside ``output``; publish it whole when the block succeeds.

    The mode is checked before any work, and so is what an existing output is: only a folder
    this job wrote (it holds a run.json) is ever replaced. On failure the staging folder is
    removed and an existing output stays as it was; only a successful block replaces it (mode
    overwrite), by moving it aside, moving the new one in and deleting the old one, so that a
    run killed at any point leaves one whole output, which the next run's start tidies.
    """
    output = output.rstrip("/")
    if output.split("://", 1)[0].lower() in _NO_ATOMIC_RENAME:
        log.warning(
            "%s is on an object store, where renaming a folder copies and deletes each file: the output is "
            "not replaced atomically there; --table (a catalog table) publishes safely", output
        )
    recover_publish(fs, output)
    check_output(output, mode, fs.exists)
    staging = f"{output}.staging-{run_id}"
    try:
        yield staging
    except BaseException:
        if fs.exists(staging):
            fs.delete(staging)
        raise
    publish(fs, staging, output, mode, run_id)


def check_output(output: str, mode: str, exists: Callable[[str], bool]) -> None:
    """Fail when ``output`` exists and may not be replaced: the mode says so, or the job did not write it."""
    if exists(output):
        if mode != "overwrite":
            raise OutputExistsError(f"output exists: {output} (set output.mode=overwrite to replace it)")
        if not exists(f"{output}/{MANIFEST_FILE}"):
            raise OutputExistsError(
                f"output exists and is not an n2d-spark output (it has no {MANIFEST_FILE}): {output}; "
                "overwrite replaces only a folder this job wrote, so choose another --output"
            )


def local_path(path: str) -> str | None:
    """The absolute local path a plain path or ``file:`` URI names; None for any other URI."""
    if "://" in path and not path.startswith("file:"):
        return None
    return _normalized(path)


def publish(fs: FileSystem, staging: str, output: str, mode: str, run_id: str) -> None:
    """Move ``staging`` to ``output``; an existing output goes aside first and is deleted last.

    An output that appears meanwhile (another run publishing to it) stops this one, its complete
    output left in ``staging``: never moved into the other's folder.
    """
    if fs.exists(output):
        if mode != "overwrite":
            raise OutputExistsError(f"output exists: {output} (set output.mode=overwrite to replace it)")
        aside = f"{output}{_ASIDE}{run_id}"
        fs.rename(output, aside)
    else:
        aside = None
    try:
        fs.rename_new(staging, output)
    except FileExistsError:
        # A previous output moved aside stays there: the next run's start deletes it (recover_publish).
        raise OutputExistsError(
            f"another run published {output} while this one was writing it: this run's complete output is in {staging}"
        ) from None
    except BaseException:
        if aside is not None:
            fs.rename(aside, output)
        raise
    if aside is not None:
        fs.delete(aside)


def recover_publish(fs: FileSystem, output: str) -> None:
    """Tidy what a run killed while publishing left: the previous output moved aside.

    Without an output, the aside one is put back; beside a complete new output, it is deleted.
    Only a folder named exactly as this job names them (``OUTPUT.replaced-`` and a run id) and
    holding a run.json is touched: a backup a user named ``OUTPUT.replaced-old`` stays.
    """
    # By name: glob answers with qualified paths (file:/..., hdfs://...), not as the output was written.
    ours = re.compile(re.escape(output.rsplit("/", 1)[-1] + _ASIDE) + RUN_ID_PATTERN)
    for aside in fs.glob(f"{output}{_ASIDE}*"):
        if not ours.fullmatch(aside.rstrip("/").rsplit("/", 1)[-1]) or not fs.exists(f"{aside}/{MANIFEST_FILE}"):
            continue
        if fs.exists(output):
            log.warning("deleting %s: a killed run had moved that previous output aside and published %s", aside, output)
            fs.delete(aside)
        else:
            log.warning("restoring %s from %s, where a run killed while publishing had moved it", output, aside)
            fs.rename(aside, output)


def refuse_unsafe_output(output: str, protected: list[str | None], fs: FileSystem | None = None) -> None:
    """Refuse, before any work, an output that is or contains a protected path (the input, the model),
    the working directory or the home folder: replacing it would delete what is not the job's.

    Paths are compared as what they name, not as spelled: with ``fs`` (a session's) as Spark reads
    them (``FileSystem.qualified``: a bare path is on the default file system, so ``hdfs://nn/out``
    holds ``/out/model`` there); without it (the console script's check before Spark starts) as local
    paths. Either way relative paths are made absolute, and local ones have their symlinks resolved.
    """
    qualified = fs.qualified if fs is not None else _resolved
    target = qualified(output).rstrip("/")
    for path in [*protected, Path.cwd().as_uri(), Path.home().as_uri()]:
        if path is None:
            continue
        candidate = qualified(path).rstrip("/")
        if candidate == target or candidate.startswith(target + "/"):
            raise OutputExistsError(f"output {output} contains {path}: choose an output folder of its own")


def _normalized(path: str) -> str:
    """A local path made absolute (``file:`` URIs too); any other URI as written, without a trailing slash."""
    if "://" not in path or path.startswith("file:"):
        local = path[len("file:"):] if path.startswith("file:") else path
        local = local[2:] if local.startswith("//") else local
        return os.path.abspath(os.path.expanduser(local))
    return path.rstrip("/")


def _resolved(path: str) -> str:
    """``_normalized``, a local path with its symlinks resolved too."""
    normalized = _normalized(path)
    return os.path.realpath(normalized) if local_path(path) is not None else normalized


def write_manifest(fs: FileSystem, folder: str, manifest: dict) -> None:
    fs.write_bytes(f"{folder}/{MANIFEST_FILE}", json.dumps(manifest, indent=2, sort_keys=True).encode())

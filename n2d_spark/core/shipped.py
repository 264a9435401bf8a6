"""A fitted model on its way to the executors: a file artifact of the session, loaded once per Python worker.

Not ``sc.broadcast``, which Spark Connect lacks, and not inside the pandas function's closure:
a Connect client sends a closure with every plan, and each task's Python worker receives and
unpickles it again, 0.139 s a task for the IMDB encoder against 0.021 s as an artifact (classic:
0.032 and 0.029 s; scripts/studies/encoder_load.py, BENCHMARKS.md). ``spark.addArtifacts(file=True)``
works on both kinds of session. The file's name is the hash of its pickle, so a model shipped
twice is one file, and a worker keeps what it loaded for its later tasks.

What is added where is remembered per session, by the session's own id (``_session_key``), not by
the Python object's address, which a new session can reuse after a stopped one is collected. A
file is written under a temporary name and renamed, and shipping holds a lock from the check to
the record, so a second thread never adds a half-written file nor adds one twice.

How long the files stay (docs/guarantees.md, "Models shipped to the executors"): Spark removes no
artifact from a live session, and a plan built on a model may run again at any time, so a
session keeps every model shipped to it until it stops. On the driver, a Connect session's file
is deleted once uploaded; a classic session's executors fetch it from the driver while the
application runs, so it is kept until the next ship to another application (a classic process
runs one at a time) or the process ends.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import pickle
import shutil
import tempfile
import threading
from dataclasses import dataclass

from pyspark.sql import SparkSession

# What this process added, per session key (``_session_key``): artifact names; and the files the
# folder keeps for a classic application, whose executors fetch them from it. A worker's loaded
# models, by artifact name, the latest last (an encoder and an assigner alternate in one worker).
_ADDED: dict[str, set[str]] = {}
_KEPT: dict[str, set[str]] = {}
_LOADED: dict[str, object] = {}
_KEEP = 4
_LOCK = threading.Lock()
# The folder the shipped files are written to, made on the first ship; removed when the process ends.
_FOLDER: list[str] = []


@dataclass(frozen=True)
class Shipped:
    """The name of a pickled value in the session's files; ``load`` it in a task."""

    name: str

    def load(self):
        """The value, unpickled on the first call in this Python worker (the caller imports what it needs first)."""
        if self.name not in _LOADED:
            from pyspark import SparkFiles

            while len(_LOADED) >= _KEEP:
                del _LOADED[next(iter(_LOADED))]
            with open(os.path.join(SparkFiles.getRootDirectory(), self.name), "rb") as f:
                _LOADED[self.name] = pickle.load(f)
        return _LOADED[self.name]


def ship(spark: SparkSession, value) -> Shipped:
    """``value`` pickled into a file artifact of ``spark``'s session (once per content and session)."""
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    name = f"n2d-{hashlib.sha256(payload).hexdigest()[:32]}.pkl"
    key, connect = _session_key(spark)
    with _LOCK:
        if name in _ADDED.setdefault(key, set()):
            return Shipped(name)
        if not connect:
            _release_stopped_applications(key)
        path = os.path.join(_folder(), name)
        if not os.path.exists(path):
            _write_whole(path, payload)
        spark.addArtifacts(path, file=True)
        _ADDED[key].add(name)
        if connect:
            # Uploaded: the server holds it for the session now (unless a classic application's executors fetch it too).
            if not any(name in kept for kept in _KEPT.values()):
                os.remove(path)
        else:
            _KEPT.setdefault(key, set()).add(name)
    return Shipped(name)


def _session_key(spark: SparkSession) -> tuple[str, bool]:
    """The session's own id, and whether it is a Connect session. A Connect session's artifacts are its own; a
    classic session's files are its application's (its SparkContext's, which ``newSession`` shares), and the
    application a new session starts after a stop has a new id."""
    session_id = getattr(spark, "session_id", None)
    if isinstance(session_id, str):
        return f"connect:{session_id}", True
    return f"classic:{spark.conf.get('spark.app.id')}", False


def _release_stopped_applications(key: str) -> None:
    """The files kept for classic applications other than ``key``'s deleted: a process runs one SparkContext at a
    time, so theirs has stopped and no executor fetches from it any more."""
    for stopped in [other for other in _KEPT if other != key]:
        for name in _KEPT.pop(stopped):
            if os.path.exists(path := os.path.join(_FOLDER[0], name)):
                os.remove(path)
        _ADDED.pop(stopped, None)


def _folder() -> str:
    if not _FOLDER:
        _FOLDER.append(tempfile.mkdtemp(prefix="n2d-shipped-"))
        atexit.register(shutil.rmtree, _FOLDER[0], ignore_errors=True)
    return _FOLDER[0]


def _write_whole(path: str, payload: bytes) -> None:
    """``payload`` at ``path``, which holds either nothing or all of it: written under a temporary name, then renamed."""
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".writing-")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(payload)
        os.replace(temporary, path)
    except BaseException:
        os.remove(temporary)
        raise

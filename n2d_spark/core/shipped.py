"""A fitted model on its way to the executors: a file artifact of the session, loaded once per Python worker.

Not ``sc.broadcast``, which Spark Connect lacks, and not inside the pandas function's closure:
a Connect client sends a closure with every plan, and each task's Python worker receives and
unpickles it again, 0.139 s a task for the IMDB encoder against 0.021 s as an artifact (classic:
0.032 and 0.029 s; scripts/studies/encoder_load.py, BENCHMARKS.md). ``spark.addArtifacts(file=True)``
works on both kinds of session. The file's name is the hash of its pickle, so a model shipped
twice is one file, and a worker keeps what it loaded for its later tasks.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass

from pyspark.sql import SparkSession

# Artifacts this process added, per session; a worker's loaded models, by artifact name, the
# latest last (an encoder and an assigner alternate in one worker).
_ADDED: set[tuple[int, str]] = set()
_LOADED: dict[str, object] = {}
_KEEP = 4
# The files shipped from this process: a classic session's executors fetch them from here when
# their tasks start, so they stay until the process ends.
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
    """``value`` pickled into a file artifact of ``spark``'s session (once per content)."""
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    name = f"n2d-{hashlib.sha256(payload).hexdigest()[:32]}.pkl"
    if (id(spark), name) not in _ADDED:
        if not _FOLDER:
            _FOLDER.append(tempfile.mkdtemp(prefix="n2d-shipped-"))
            atexit.register(shutil.rmtree, _FOLDER[0], ignore_errors=True)
        path = os.path.join(_FOLDER[0], name)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(payload)
        spark.addArtifacts(path, file=True)
        _ADDED.add((id(spark), name))
    return Shipped(name)

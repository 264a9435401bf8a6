"""Models on their way to the executors as session files (core/shipped.py): added once per session, whole,
again to a new session where a stopped one was, and not kept on the driver after their session is gone."""

from __future__ import annotations

import os
import pickle
import threading
import uuid
from pathlib import Path

import pandas as pd

from n2d_spark.core import shipped as shipped_module
from n2d_spark.core.shipped import ship

VALUE = {"weights": list(range(100_000))}


class _Conf:
    def __init__(self, app_id: str):
        self.app_id = app_id

    def get(self, key: str) -> str:
        assert key == "spark.app.id"
        return self.app_id


class _ClassicSession:
    """What ship reads of a classic session (its application's id), and the files it was given, as they were then."""

    def __init__(self):
        self.conf = _Conf(f"local-{uuid.uuid4().hex}")
        self.added: list[tuple[str, bytes]] = []

    def addArtifacts(self, path: str, file: bool) -> None:
        assert file
        self.added.append((os.path.basename(path), Path(path).read_bytes()))


class _ConnectSession(_ClassicSession):
    def __init__(self):
        super().__init__()
        self.session_id = str(uuid.uuid4())


def _file(name: str) -> Path:
    return Path(shipped_module._FOLDER[0]) / name


def test_a_new_session_where_a_stopped_one_was_gets_the_file_again():
    """The key is the session's id, not its address: here the new session is the very same object, as a new
    session can be when Python reuses a collected one's address."""
    session = _ClassicSession()
    first = ship(session, VALUE)
    assert ship(session, VALUE) == first and len(session.added) == 1
    session.conf = _Conf(f"local-{uuid.uuid4().hex}")  # the session stopped; a new one started at its address
    assert ship(session, VALUE) == first
    assert [name for name, _ in session.added] == [first.name, first.name]


def test_a_stopped_applications_files_are_deleted_when_a_new_one_ships():
    session = _ClassicSession()
    old = ship(session, VALUE)
    assert _file(old.name).is_file()  # its executors fetch it from the driver while it runs
    session.conf = _Conf(f"local-{uuid.uuid4().hex}")
    new = ship(session, {"other": 1})
    assert not _file(old.name).exists() and _file(new.name).is_file()


def test_a_connect_sessions_file_is_uploaded_whole_and_not_kept_on_the_driver():
    session = _ConnectSession()
    shipped = ship(session, VALUE)
    [(name, uploaded)] = session.added
    assert name == shipped.name and not _file(name).exists()
    assert pickle.loads(uploaded) == VALUE
    assert ship(_ConnectSession(), VALUE) == shipped  # another session: uploaded again


class _SlowClassicSession(_ClassicSession):
    """Its first add waits until a second thread adds too (or a while, if none can): the window in which a second
    thread, unlocked, would add the file again or add it half-written."""

    def __init__(self):
        super().__init__()
        self.second = threading.Event()
        self.calls = 0

    def addArtifacts(self, path: str, file: bool) -> None:
        self.calls += 1
        if self.calls == 1:
            self.second.wait(timeout=3)
        else:
            self.second.set()
        super().addArtifacts(path, file)


def test_two_threads_shipping_one_model_add_one_complete_file():
    session = _SlowClassicSession()
    value = {"weights": bytes(range(256)) * 20_000}
    results = []
    threads = [threading.Thread(target=lambda: results.append(ship(session, value))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and results[0] == results[1]
    [(name, content)] = session.added
    assert name == results[0].name and pickle.loads(content) == value
    assert not [path for path in Path(shipped_module._FOLDER[0]).iterdir() if path.name.startswith(".")]


def test_a_shipped_model_loads_in_a_task_of_the_session_and_of_a_new_session_on_its_application(spark):
    shipped = ship(spark, VALUE)

    def sizes(batches):
        for _ in batches:
            yield pd.DataFrame({"n": [len(shipped.load()["weights"])]})

    assert spark.range(1).mapInPandas(sizes, "n long").collect()[0].n == len(VALUE["weights"])
    other = spark.newSession()
    assert ship(other, VALUE) == shipped
    assert other.range(1).mapInPandas(sizes, "n long").collect()[0].n == len(VALUE["weights"])

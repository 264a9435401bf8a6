"""The few Hadoop FileSystem calls the job needs, so the same code works on a local
folder, HDFS or an object store, wherever the Spark session can reach.

A Spark Connect client has no JVM: ``file_system`` gives it ``ConnectFileSystem``, which reads
through Spark's ``binaryFile`` source and writes with ``copyFromLocalToFs``, enough to save and
load a model. Publishing a job's output (renames) needs the JVM, which a spark-submit driver has.
"""

from __future__ import annotations

import os
import tempfile
from urllib.parse import urlparse

from py4j.protocol import Py4JJavaError
from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from n2d_spark.core.errors import InputError

# py4j passes a byte array through the JVM's heap as one string: a whole 80 MB UMAP pickle in
# one call ran a 3 GiB driver heap out of memory at 1,000,000 rows, so bytes travel in chunks.
_CHUNK_BYTES = 4 * 2**20


class FileSystem:
    """The few Hadoop FileSystem calls the job needs, resolved from a path's scheme."""

    def __init__(self, spark: SparkSession, path: str):
        if is_connect(spark):
            raise InputError(
                f"{path}: the job's file operations (publishing an output, renaming, deleting) need Hadoop's "
                "FileSystem through the JVM, which a Spark Connect client lacks: run the job with spark-submit, "
                "or use the N2D estimator (docs/estimator.md, \"Spark Connect\")"
            )
        self._jvm = spark._jvm
        self._gateway = spark.sparkContext._gateway
        self._conf = spark._jsc.hadoopConfiguration()
        self._fs = self._path(path).getFileSystem(self._conf)

    def _path(self, path: str):
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def exists(self, path: str) -> bool:
        return bool(self._fs.exists(self._path(path)))

    def qualified(self, path: str) -> str:
        """What ``path`` names, in one spelling: with the scheme and authority Hadoop resolves it to (a bare
        path is on the default file system, a relative one under its working directory), and on a local
        disk with its symlinks resolved. A path whose file system this session cannot load stays as written."""
        hadoop_path = self._path(path)
        try:
            name = urlparse(hadoop_path.getFileSystem(self._conf).makeQualified(hadoop_path).toString())
        except Py4JJavaError:
            return path
        if name.scheme == "file":
            return "file:" + os.path.realpath(name.path)
        return f"{name.scheme}://{name.netloc.lower()}{name.path}"

    def matches(self, pattern: str) -> bool:
        """Whether a path or glob pattern names at least one file or folder."""
        return bool(self._fs.globStatus(self._path(pattern)))

    def glob(self, pattern: str) -> list[str]:
        """The paths a glob pattern names, sorted."""
        return sorted(status.getPath().toString() for status in (self._fs.globStatus(self._path(pattern)) or []))

    def delete(self, path: str) -> None:
        self._fs.delete(self._path(path), True)

    def rename(self, source: str, target: str) -> None:
        if not self._fs.rename(self._path(source), self._path(target)):
            raise OSError(f"could not move {source} to {target}")

    def rename_new(self, source: str, target: str) -> None:
        """Move ``source`` to ``target``, which must not exist: FileExistsError if it does (or appears meanwhile).

        FileSystem.rename moves a folder *into* a target folder that exists, so two runs
        publishing one output at once could nest one output inside the other. FileContext's
        rename with Rename.NONE refuses instead (atomically on HDFS; on the local file system
        Hadoop checks, then moves). A file system with no FileContext binding is checked, then moved.
        """
        hadoop = self._jvm.org.apache.hadoop.fs
        try:
            context = hadoop.FileContext.getFileContext(self._fs.getUri(), self._fs.getConf())
        except Py4JJavaError as error:
            if "UnsupportedFileSystemException" not in str(error.java_exception.getClass().getName()):
                raise
            if self.exists(target):
                raise FileExistsError(target) from None
            self.rename(source, target)
            return
        options = self._gateway.new_array(hadoop.Options.Rename, 1)
        options[0] = hadoop.Options.Rename.NONE
        try:
            context.rename(self._path(source), self._path(target), options)
        except Py4JJavaError as error:
            if error.java_exception.getClass().getName() == "org.apache.hadoop.fs.FileAlreadyExistsException":
                raise FileExistsError(target) from None
            raise

    def check_writable(self, path: str) -> None:
        """Nothing to check: Hadoop writes wherever this session reads (ConnectFileSystem's does not)."""

    def write_bytes(self, path: str, data: bytes) -> None:
        stream = self._fs.create(self._path(path), True)
        try:
            for start in range(0, len(data), _CHUNK_BYTES):
                stream.write(bytearray(data[start : start + _CHUNK_BYTES]))
        finally:
            stream.close()

    def read_bytes(self, path: str) -> bytes:
        stream = self._fs.open(self._path(path))
        chunks = []
        try:
            # py4j returns a Java byte[] as Python bytes; an empty one is the end of the file.
            while chunk := bytes(stream.readNBytes(_CHUNK_BYTES)):
                chunks.append(chunk)
        finally:
            stream.close()
        return b"".join(chunks)

    def list_files(self, path: str) -> list[tuple[str, int]]:
        """Every file under the folder ``path``, recursively: (path relative to it, '/'-separated; size in bytes), sorted."""
        base = self._fs.makeQualified(self._path(path)).toString().rstrip("/") + "/"
        files = []
        listing = self._fs.listFiles(self._path(path), True)
        while listing.hasNext():
            status = listing.next()
            name = status.getPath().toString()
            if not name.startswith(base):
                raise OSError(f"{name} is not under {path}")
            files.append((name[len(base):], int(status.getLen())))
        return sorted(files)


class ConnectFileSystem:
    """What saving and loading a model needs, without a JVM in this process (Spark Connect).

    Reads go through Spark's ``binaryFile`` source, which skips hidden files (names starting with
    ``.`` or ``_``, such as Hadoop's ``.crc`` sidecars); writes through ``copyFromLocalToFs``, to
    the server's default file system: a path without a scheme. A local one needs the server conf
    ``spark.sql.artifact.copyFromLocalToFs.allowDestLocal=true``.
    """

    def __init__(self, spark: SparkSession, path: str):
        self._spark = spark

    def _files(self, path: str, recursive: bool = False):
        return self._spark.read.format("binaryFile").option("recursiveFileLookup", str(recursive).lower()).load(path)

    def exists(self, path: str) -> bool:
        try:
            self._files(path).schema  # analysing the read checks that the path exists
        except AnalysisException as error:
            if error.getCondition() == "PATH_NOT_FOUND":
                return False
            raise
        return True

    def delete(self, path: str) -> None:
        # Spark's overwrite removes the folder before it writes: the one delete a client without a JVM has.
        # It leaves an empty folder at ``path`` (Spark's own _SUCCESS marker in it).
        self._spark.createDataFrame([], "value string").write.mode("overwrite").text(path)

    def check_writable(self, path: str) -> None:
        """Refuse, before anything is written or deleted, a path ``write_bytes`` cannot write: one with a scheme."""
        if urlparse(path).scheme:
            raise InputError(
                f"{path}: on Spark Connect a model is written to the server's default file system, "
                "by a path without a scheme (docs/estimator.md, \"Spark Connect\")"
            )

    def write_bytes(self, path: str, data: bytes) -> None:
        self.check_writable(path)
        with tempfile.TemporaryDirectory() as folder:
            local = os.path.join(folder, "part")
            with open(local, "wb") as f:
                f.write(data)
            self._spark.copyFromLocalToFs(local, path)

    def read_bytes(self, path: str) -> bytes:
        return bytes(self._files(path).select("content").first()[0])

    def list_files(self, path: str) -> list[tuple[str, int]]:
        """Every file under the folder ``path``, recursively, as ``FileSystem.list_files`` gives them (hidden files aside)."""
        base = urlparse(path).path.rstrip("/") + "/"
        files = []
        for row in self._files(path, recursive=True).select("path", F.col("length")).collect():
            name = urlparse(row[0]).path
            if not name.startswith(base):
                raise OSError(f"{row[0]} is not under {path}")
            files.append((name[len(base):], int(row[1])))
        return sorted(files)


def file_system(spark: SparkSession, path: str) -> FileSystem | ConnectFileSystem:
    """The file system of ``path`` as this session reaches it: Hadoop's through the JVM, or Spark Connect's."""
    return ConnectFileSystem(spark, path) if is_connect(spark) else FileSystem(spark, path)


def is_connect(spark: SparkSession) -> bool:
    """Whether ``spark`` is a Spark Connect client's session (no JVM, no SparkContext in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")

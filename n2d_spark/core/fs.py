"""The few Hadoop FileSystem calls the job needs, so the same code works on a local
folder, HDFS or an object store, wherever the Spark session can reach."""

from __future__ import annotations

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

# py4j passes a byte array through the JVM's heap as one string: a whole 80 MB UMAP pickle in
# one call ran a 3 GiB driver heap out of memory at 1,000,000 rows, so bytes travel in chunks.
_CHUNK_BYTES = 4 * 2**20


class FileSystem:
    """The few Hadoop FileSystem calls the job needs, resolved from a path's scheme."""

    def __init__(self, spark: SparkSession, path: str):
        self._jvm = spark._jvm
        self._gateway = spark.sparkContext._gateway
        self._fs = self._path(path).getFileSystem(spark._jsc.hadoopConfiguration())

    def _path(self, path: str):
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def exists(self, path: str) -> bool:
        return bool(self._fs.exists(self._path(path)))

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

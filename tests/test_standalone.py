"""The job on a real Spark standalone cluster, submitted as docs/cluster.md ("Try it on one machine") shows.

A master and two one-core workers on 127.0.0.1, started from the installed pyspark
(``spark-class ...deploy.master.Master`` / ``...deploy.worker.Worker``), run the job through
``scripts/submit.sh --master spark://127.0.0.1:PORT`` on 5,000 synthetic reviews, with one
worker's executor JVM killed (SIGKILL) while the embedding stage runs its Python tasks on it.
The run must complete, and its labels must equal those of the same job run undisturbed in local
mode (in the tests' own session).

Which Python the executors run: the same interpreter as the tests (``PYSPARK_PYTHON`` =
``sys.executable``, this venv, which has the project installed), not the archive of
``scripts/package_env.sh``: building that archive takes a minute or more and a download, too
slow for CI. Running the executors from the archive on this same standalone cluster was
measured by hand (docs/cluster.md, BENCHMARKS.md).

Every process started here (master, workers, their executors, spark-submit and the Python
driver) is in a process group of its own and is killed at the end, pass or fail.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from n2d_spark.core.config import load_config
from n2d_spark.pipeline import run_job
from n2d_spark.synthetic import generate_reviews, write_corpus

from conftest import REPO


PYSPARK_HOME = Path(__import__("pyspark").__file__).parent
SUBMIT = REPO / "scripts" / "submit.sh"
ROWS = 5000
# Both runs use the default synthetic config but for Arrow batches of 64 rows (about 40 per task),
# which keep the embedding stage's tasks running long enough to kill an executor in the middle of
# them, and no neighbours/ table, which tests/test_neighbours.py checks on any partitioning.
# (Fewer UMAP neighbours or epochs did not shorten a run: measured, BENCHMARKS.md.)
JOB_SETTINGS = ["--set", "embed.batch_rows=64", "--set", "similar.k=0"]
EXECUTOR_CLASS = "org.apache.spark.executor.CoarseGrainedExecutorBackend"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _descendants(root: int) -> list[int]:
    """Every live process under ``root``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


class StandaloneCluster:
    """A standalone master and one-core workers on 127.0.0.1, each in its own process group."""

    def __init__(self, work: Path, n_workers: int = 2):
        self.work = work
        self.port, self.ui_port = _free_port(), _free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        conf_dir = work / "spark-conf"  # empty: no spark-defaults.conf or spark-env.sh of the machine's
        conf_dir.mkdir(parents=True)
        self.env = {
            **os.environ,
            "SPARK_HOME": str(PYSPARK_HOME),
            "SPARK_CONF_DIR": str(conf_dir),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(work / "logs"),
        }
        self.processes: list[subprocess.Popen] = []
        self.master = self._start("master", "org.apache.spark.deploy.master.Master",
                                  "--host", "127.0.0.1", "--port", str(self.port), "--webui-port", str(self.ui_port))
        self.workers = []
        for i in range(n_workers):
            work_dir = work / f"worker-{i}"
            work_dir.mkdir()
            process = self._start(
                f"worker-{i}", "org.apache.spark.deploy.worker.Worker",
                "--host", "127.0.0.1", "--port", str(_free_port()), "--webui-port", str(_free_port()),
                "--cores", "1", "--memory", "2g", "--work-dir", str(work_dir), self.url,
                SPARK_WORKER_DIR=str(work_dir),
            )
            self.workers.append((process, work_dir))

    def _start(self, name: str, main_class: str, *args: str, **env: str) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "w")
        process = subprocess.Popen(
            [str(PYSPARK_HOME / "bin" / "spark-class"), main_class, *args],
            env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.processes.append(process)
        return process

    def state(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as response:
            return json.load(response)

    def wait_for_workers(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                assert process.poll() is None, f"a cluster process exited ({process.returncode}); logs in {self.work}"
            try:
                if sum(w["state"] == "ALIVE" for w in self.state()["workers"]) == len(self.workers):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{len(self.workers)} workers did not register in {timeout:.0f} s; logs in {self.work}")

    def executors(self) -> list[tuple[int, int]]:
        """(worker index, pid) of every live executor JVM the workers launched."""
        return [
            (i, pid)
            for i, (worker, _) in enumerate(self.workers)
            for pid in _descendants(worker.pid)
            if EXECUTOR_CLASS in _cmdline(pid)
        ]

    def executor_dirs(self, app_id: str) -> list[Path]:
        """One folder per executor the workers launched for ``app_id``, relaunched ones included."""
        return sorted(p for _, work_dir in self.workers for p in (work_dir / app_id).glob("*") if p.is_dir())

    def stop(self) -> None:
        for process in reversed(self.processes):
            _kill_group(process)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    work = tmp_path_factory.mktemp("standalone")
    started = StandaloneCluster(work)
    try:
        started.wait_for_workers()
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(generate_reviews(ROWS, seed=0), tmp_path_factory.mktemp("corpus") / "synthetic.csv.gz")


class Submission:
    """``scripts/submit.sh`` in its own process group; its output (driver log included) read line by line."""

    def __init__(self, cluster: StandaloneCluster, corpus: Path, output: Path, on_line=None):
        env = {
            **os.environ,
            "PYSPARK_PYTHON": sys.executable,  # the executors run this interpreter: see the module docstring
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "SPARK_HOME": str(PYSPARK_HOME),
            "SPARK_CONF_DIR": cluster.env["SPARK_CONF_DIR"],
            "SPARK_LOCAL_IP": "127.0.0.1",
        }
        command = [
            "bash", str(SUBMIT), "--master", cluster.url,
            # The line of docs/cluster.md for this cluster: executors of 1g fit the 2g workers, no driver UI;
            # two one-core executors, so that the job waits for both before it logs them (on a busy
            # machine the second registers seconds after the first).
            "--conf", "spark.cores.max=2", "--conf", "spark.executor.cores=1",
            "--conf", "spark.executor.memory=1g", "--conf", "spark.driver.memory=2g", "--conf", "spark.ui.enabled=false",
            "--",
            "--config", str(REPO / "conf" / "synthetic.yaml"), "--input", str(corpus), "--output", str(output),
            *JOB_SETTINGS,
        ]
        self.lines: list[str] = []
        self.log_path = output.parent / "submit.log"
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self.on_line = on_line
        self.errors: list[BaseException] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            if self.on_line is not None:
                try:
                    self.on_line(line)
                except BaseException as error:  # reported by wait(); the job is stopped now
                    self.errors.append(error)
                    self.on_line = None
                    _kill_group(self.process)

    def wait(self, timeout: float = 900.0) -> str:
        try:
            self.process.wait(timeout=timeout)
        finally:
            _kill_group(self.process)  # the Python driver is a child of spark-submit's JVM
            self.reader.join(timeout=30)
        output = "".join(self.lines)
        self.log_path.write_text(output)
        if self.errors:
            raise AssertionError(f"{self.errors[0]}\n--- job output ---\n{output[-6000:]}") from self.errors[0]
        assert self.process.returncode == 0, f"job failed ({self.process.returncode}), log {self.log_path}:\n{output[-6000:]}"
        return output


def _check_output(out: Path, output_log: str, cluster: StandaloneCluster) -> tuple[dict, pd.DataFrame]:
    """What the local-mode tests check: row accounting, labels for every row, the manifest."""
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["spark"]["master"] == cluster.url
    assert {k: manifest["rows"][k] for k in ("in", "labelled", "rejected")} == {"in": ROWS, "labelled": ROWS, "rejected": 0}
    assert manifest["rejected_by_reason"] == {}
    assert {"read", "vectorize", "autoencoder", "embed", "manifold", "cluster", "write"} <= set(manifest["stage_seconds"])
    assert manifest["clusters"]["n_clusters"] >= 2
    assert manifest["evaluation"]["ari"] >= 0.9
    labels = pd.read_parquet(out / "labels", columns=["id", "cluster", "umap"])
    assert len(labels) == ROWS and labels["id"].is_unique
    assert labels["cluster"].notna().all() and labels["umap"].notna().all()
    assert len(pd.read_parquet(out / "rejected")) == 0
    assert (out / "model" / "encoder.npz").is_file()
    assert not list(out.parent.glob(f"{out.name}.staging-*"))
    assert f"rows:     {ROWS} in, {ROWS} labelled, 0 rejected" in output_log
    return manifest, labels.sort_values("id").reset_index(drop=True)


def _python_workers(cluster: StandaloneCluster) -> dict[int, str]:
    """The executors' live Python processes (pyspark's daemon and workers), with the files each has mapped."""
    found = {}
    for _, executor in cluster.executors():
        for pid in _descendants(executor):
            if "pyspark" in _cmdline(pid):
                try:
                    found[pid] = Path(f"/proc/{pid}/maps").read_text()
                except OSError:
                    pass
    return found


@pytest.fixture(scope="module")
def local_labels(spark, corpus, tmp_path_factory):
    """The same job in local mode, in this process: the labels the cluster run must reproduce."""
    out = tmp_path_factory.mktemp("local") / "out"
    config = load_config(REPO / "conf" / "synthetic.yaml", JOB_SETTINGS[1::2])
    run_job(spark, config, str(corpus), str(out))
    return pd.read_parquet(out / "labels", columns=["id", "cluster"]).sort_values("id").reset_index(drop=True)


@pytest.fixture(scope="module")
def disturbed(cluster, corpus, tmp_path_factory):
    """One submission; one executor is SIGKILLed once the embedding stage runs Python on it."""
    out = tmp_path_factory.mktemp("disturbed") / "out"
    killed: dict = {}
    python_workers: dict[int, str] = {}

    def kill_an_executor_then_look_at_the_executors_python(line: str) -> None:
        if "stage embed: started" in line and not killed:
            # Wait until an executor runs the embedding UDF (its Python daemon exists), then SIGKILL it.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                for worker, pid in cluster.executors():
                    if any("pyspark" in _cmdline(p) for p in _descendants(pid)):
                        os.kill(pid, signal.SIGKILL)
                        killed.update(worker=worker, pid=pid, at=time.monotonic())
                        return
                time.sleep(0.05)
            raise AssertionError("no executor started a Python worker within 60 s of the embedding stage's start")
        if "stage manifold: started" in line and not python_workers:
            python_workers.update(_python_workers(cluster))

    submission = Submission(cluster, corpus, out, on_line=kill_an_executor_then_look_at_the_executors_python)
    output_log = submission.wait()
    manifest, labels = _check_output(out, output_log, cluster)
    return output_log, manifest, labels, python_workers, killed


@pytest.mark.cluster
@pytest.mark.slow
def test_job_runs_on_a_standalone_cluster(cluster, disturbed):
    output_log = disturbed[0]
    # The start-up log: master, two one-core executors, the confs that matter, the executors' Python.
    assert re.search(rf"master {re.escape(cluster.url)}, app \S+: 2 executor\(s\), 2 core\(s\)", output_log), output_log[-4000:]
    confs = next(line for line in output_log.splitlines() if "spark confs:" in line)
    for expected in ("spark.executor.memory=1g", "spark.sql.execution.arrow.maxRecordsPerBatch=4096",
                     "spark.task.maxFailures=4", f"spark.pyspark.python={sys.executable}"):
        assert expected in confs, confs


@pytest.mark.cluster
@pytest.mark.slow
def test_executors_embed_without_tensorflow(disturbed):
    """The executors' Python ran the embedding (SciPy's sparse kernels are loaded) and never loaded TensorFlow."""
    python_workers = disturbed[3]
    assert python_workers, "no Python process under the executors after the embedding stage"
    assert any("/scipy/sparse/_sparsetools" in maps for maps in python_workers.values())
    assert not [pid for pid, maps in python_workers.items() if "/tensorflow/" in maps]


def _app_id(output_log: str) -> str:
    return re.search(r", app (app-\S+):", output_log).group(1)


@pytest.mark.cluster
@pytest.mark.slow
def test_an_executor_killed_during_embedding_changes_nothing(cluster, disturbed, local_labels):
    output_log, _, labels, _, killed = disturbed
    assert killed, "the embedding stage never started"
    log_lines = output_log.splitlines()
    embed_done = next(i for i, line in enumerate(log_lines) if "stage embed: done" in line)
    lost = [i for i, line in enumerate(log_lines) if re.search(r"[Ll]ost executor|ExecutorLostFailure", line)]
    assert lost and lost[0] < embed_done, "the driver never saw the executor die during the embedding stage"
    # The worker relaunched an executor: three executor folders for this application.
    assert len(cluster.executor_dirs(_app_id(output_log))) == 3
    # The labels are those of the same job in local mode, undisturbed.
    pd.testing.assert_frame_equal(labels[["id", "cluster"]], local_labels)


def _dry_run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SUBMIT), *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYSPARK_DRIVER_PYTHON": sys.executable, **env},
    )


def test_submit_line_for_yarn_ships_the_archive_to_driver_and_executors():
    result = _dry_run("--master", "yarn", "--archive", "dist/n2d-env.tar.gz", "--dry-run", "--", "--input", "hdfs:///in.csv")
    assert result.returncode == 0, result.stderr
    line = result.stdout
    for expected in ("--master yarn", "--archives dist/n2d-env.tar.gz#environment",
                     "spark.pyspark.python=./environment/bin/python",
                     "spark.yarn.appMasterEnv.PYSPARK_PYTHON=./environment/bin/python",
                     "spark.submit.deployMode=cluster", "spark.sql.execution.arrow.maxRecordsPerBatch=4096",
                     "jobs/n2d_job.py --input hdfs:///in.csv"):
        assert expected in line, (expected, line)
    assert "spark.pyspark.driver.python" not in line  # in cluster mode the driver runs the archive's Python too


def test_submit_line_for_kubernetes_needs_an_image_and_an_upload_path():
    result = _dry_run("--master", "k8s://https://127.0.0.1:6443", "--archive", "env.tar.gz", "--dry-run", "--", "--input", "x")
    assert result.returncode == 2
    assert result.stderr.strip() == "submit.sh: Kubernetes needs --conf spark.kubernetes.container.image=..."
    result = _dry_run(
        "--master", "k8s://https://127.0.0.1:6443", "--archive", "env.tar.gz",
        "--conf", "spark.kubernetes.container.image=spark:4.3.0-python3",
        "--conf", "spark.kubernetes.file.upload.path=s3a://bucket/n2d", "--dry-run", "--", "--input", "x",
    )
    assert result.returncode == 0, result.stderr
    assert "spark.executor.instances=2" in result.stdout and "spark.pyspark.python=./environment/bin/python" in result.stdout


def test_submit_conf_overrides_the_cluster_defaults():
    result = _dry_run("--master", "spark://127.0.0.1:7077", "--conf", "spark.executor.memory=1g", "--dry-run", "--", "--input", "x")
    assert result.returncode == 0, result.stderr
    line = result.stdout
    # Later --conf wins in spark-submit: the override comes after conf/cluster.yaml's value.
    assert line.index("spark.executor.memory=4g") < line.index("spark.executor.memory=1g")
    assert f"spark.pyspark.python={sys.executable}" in line and "spark.submit.deployMode=client" in line


def test_submit_ships_the_config_and_submits_assign():
    result = _dry_run("--master", "yarn", "--dry-run", "--", "--config", "conf/imdb.yaml", "--input", "hdfs:///in.csv")
    assert result.returncode == 0, result.stderr
    assert "--files conf/imdb.yaml" in result.stdout and "jobs/n2d_job.py --config conf/imdb.yaml" in result.stdout
    result = _dry_run("--master", "yarn", "--job", "assign", "--dry-run", "--", "--model", "hdfs:///m", "--input", "x")
    assert result.returncode == 0, result.stderr
    assert "jobs/assign_job.py --model hdfs:///m --input x" in result.stdout and "--files" not in result.stdout


def test_a_driver_on_a_cluster_node_finds_the_shipped_config(spark, tmp_path):
    from n2d_spark.cli import shipped_config

    shipped = tmp_path / "shipped-for-the-driver.yaml"
    shipped.write_text("cluster:\n  k: 7\n")
    # What spark-submit's --files does for a driver in cluster deploy mode: the file is fetched
    # into SparkFiles, while the path on the submit line does not exist on the driver's node.
    spark.sparkContext.addFile(str(shipped))
    found = shipped_config(f"/on/the/submitting/machine/{shipped.name}")
    assert Path(found).name == shipped.name and Path(found).parent != tmp_path
    assert load_config(found).cluster.k == 7
    assert shipped_config(str(shipped)) == str(shipped)

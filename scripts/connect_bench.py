"""The estimator's fit and transform on a classic session and on Spark Connect, in one invocation (issue 32).

    .venv/bin/python scripts/connect_bench.py [--input ../shared/data/imdb_reviews.csv.gz] [--config conf/imdb.yaml] [--master 'local[2]']

Each mode runs in a Python process of its own (a process that has made a Spark Connect session
switches pyspark.ml into Connect mode): first a classic session on ``--master``, then a client of
a Spark Connect server started here with PySpark's ``sbin/start-connect-server.sh`` on the same
master and confs. Each reads the CSV with Spark, fits ``N2D`` with the config, and transforms the
same rows (the transform written to Spark's ``noop`` sink, so every row is computed). Printed per
mode: the seconds of the fit and of the transform, the clusters found, and at the end whether the
two modes gave every row the same label. Files are written only under a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFS = {
    "spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "8", "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


def one_mode(url: str | None, master: str, input_path: str, config_path: str, labels_path: str) -> dict:
    """Fit and transform in this process, on a Connect session (``url``) or a classic one (``master``)."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from n2d_spark import N2D, load_config

    builder = SparkSession.builder.appName("n2d-connect-bench")
    if url:
        spark = builder.remote(url).getOrCreate()
    else:
        for key, value in CONFS.items():
            builder = builder.config(key, value)
        spark = builder.master(master).getOrCreate()
    options = {"header": True, "multiLine": True, "quote": '"', "escape": '"'}
    reviews = spark.read.options(**options).csv(input_path).select("review").cache()
    rows = reviews.count()
    started = time.perf_counter()
    model = N2D(load_config(config_path), inputCol="review").fit(reviews)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    model.transform(reviews).write.format("noop").mode("overwrite").save()
    transform_s = time.perf_counter() - started
    labels = model.transform(reviews).select(F.md5("review").alias("key"), "cluster").toPandas()
    labels.attrs.clear()  # a Connect client's toPandas leaves its plan's metrics there, which Parquet cannot store
    labels.to_parquet(labels_path)
    result = {
        "mode": "connect" if url else "classic", "rows": rows, "fit_s": round(fit_s, 1), "transform_s": round(transform_s, 1),
        "clusters": int(labels["cluster"].nunique()),
    }
    print(json.dumps(result), flush=True)
    spark.stop()
    return result


def start_server(master: str, logs: Path, confs: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """A Spark Connect server as PySpark ships it (sbin/start-connect-server.sh), in the foreground
    and in a process group of its own (stop it with ``os.killpg(server.pid, 15)``); its URL once it listens."""
    import pyspark

    home = os.path.dirname(pyspark.__file__)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    confs = [arg for key, value in {**confs, "spark.connect.grpc.binding.port": str(port)}.items() for arg in ("--conf", f"{key}={value}")]
    env = {**os.environ, "SPARK_HOME": home, "PYSPARK_PYTHON": sys.executable, "SPARK_NO_DAEMONIZE": "1",
           "SPARK_LOG_DIR": str(logs), "SPARK_PID_DIR": str(logs)}
    server = subprocess.Popen(
        [f"{home}/sbin/start-connect-server.sh", "--master", master, *confs],
        env=env, stdout=(logs / "server.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    for _ in range(120):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"sc://127.0.0.1:{port}"
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(1)
    os.killpg(server.pid, 9)
    raise RuntimeError(f"the Spark Connect server did not start: {(logs / 'server.log').read_text()[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(REPO.parent / "shared" / "data" / "imdb_reviews.csv.gz"))
    parser.add_argument("--config", default=str(REPO / "conf" / "imdb.yaml"))
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--remote", help=argparse.SUPPRESS)  # a child process's mode
    parser.add_argument("--labels", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.labels:
        one_mode(args.remote, args.master, args.input, args.config, args.labels)
        os._exit(0)  # pyspark's finalizers of remote ML objects may wait on the closed channel

    work = Path(tempfile.mkdtemp(prefix="n2d-connect-bench-"))
    os.environ["PYSPARK_PYTHON"] = sys.executable
    common = [sys.executable, __file__, "--input", args.input, "--config", args.config, "--master", args.master]
    subprocess.run([*common, "--labels", str(work / "classic.parquet")], check=True)
    server, url = start_server(args.master, work, CONFS)
    try:
        subprocess.run([*common, "--remote", url, "--labels", str(work / "connect.parquet")], check=True)
    finally:
        os.killpg(server.pid, 15)  # the script's shell and the JVM it started
        server.wait(timeout=60)

    import pandas as pd

    # Equal reviews share a key and a label (rows/estimator_stages.py): one row per key on each side.
    classic, connect = (pd.read_parquet(work / f"{mode}.parquet").drop_duplicates("key") for mode in ("classic", "connect"))
    both = classic.merge(connect, on="key", suffixes=("_classic", "_connect"))
    same = (both["cluster_classic"].fillna(-2) == both["cluster_connect"].fillna(-2)).mean()
    print(f"distinct reviews compared {len(both)}; same label on both: {same:.4f}")


if __name__ == "__main__":
    main()

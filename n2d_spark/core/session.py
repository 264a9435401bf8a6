"""What the job runs on, logged at start: master, executors and their cores, and the confs that matter to it."""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger("n2d_spark")


def default_parallelism(spark) -> int:
    """How many tasks the session runs at once, read from the plan: a range without a partition
    count gets one partition per core (``spark.sql.leafNodeDefaultParallelism`` when set). No
    SparkContext, so Spark Connect can ask too; one small job."""
    from pyspark.sql import functions as F

    partition = spark.range(0, 1 << 16).select(F.spark_partition_id().alias("partition"))
    return int(partition.agg(F.max("partition")).first()[0]) + 1


# The confs that change what the job does or whether it fits: (key, Spark's default when unset).
CONFS = (
    ("spark.submit.deployMode", "client"),
    ("spark.driver.memory", "1g"),
    ("spark.driver.maxResultSize", "1g"),
    ("spark.executor.memory", "1g"),
    ("spark.executor.cores", None),
    ("spark.executor.instances", None),
    ("spark.cores.max", None),
    ("spark.dynamicAllocation.enabled", "false"),
    ("spark.task.maxFailures", "4"),
    ("spark.sql.shuffle.partitions", "200"),
    ("spark.sql.execution.arrow.pyspark.enabled", "false"),
    ("spark.sql.execution.arrow.maxRecordsPerBatch", "10000"),
    ("spark.python.worker.reuse", "true"),
    ("spark.pyspark.python", None),
    ("spark.pyspark.driver.python", None),
    ("spark.executorEnv.PYSPARK_PYTHON", None),
    ("spark.archives", None),
    ("spark.yarn.dist.archives", None),
)
ENV_VARS = ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")


def describe_session(spark, wait_seconds: float = 30.0) -> dict:
    """The master, the registered executors (id, host, cores) and the effective confs, as a dict.

    On a cluster, executors register after the session starts: this waits, at most
    ``wait_seconds``, for the expected number (``spark.executor.instances``, or on a standalone
    master ``spark.cores.max / spark.executor.cores``) or, when that is unknown, for the
    executor count to hold still for a second after the first one arrives.
    """
    sc = spark.sparkContext
    local = sc.master.startswith("local")
    executors = [] if local else _wait_for_executors(sc, _expected_executors(sc), wait_seconds)
    conf = sc.getConf()
    confs = {}
    for key, default in CONFS:
        value = conf.get(key, None)
        if value is None and key.startswith("spark.sql."):
            value = spark.conf.get(key, None)
        confs[key] = value if value is not None else (f"{default} (default)" if default is not None else None)
    return {
        "master": sc.master,
        "app_id": sc.applicationId,
        "spark_version": sc.version,
        "default_parallelism": sc.defaultParallelism,
        # In local mode the driver runs the tasks: one "executor" with the local cores.
        "executors": executors if not local else [{"id": "driver", "host": "localhost", "cores": sc.defaultParallelism}],
        "confs": {k: v for k, v in confs.items() if v is not None},
        "env": {name: os.environ[name] for name in ENV_VARS if name in os.environ},
    }


def log_session(spark, wait_seconds: float = 30.0) -> dict:
    """Log ``describe_session`` in three INFO lines (and return it)."""
    info = describe_session(spark, wait_seconds)
    executors = info["executors"]
    cores = sum(e["cores"] or 0 for e in executors)
    log.info(
        "spark %s, master %s, app %s: %d executor(s), %d core(s) [%s]",
        info["spark_version"], info["master"], info["app_id"], len(executors), cores,
        ", ".join(f"{e['id']}@{e['host']}: {e['cores']} core(s)" for e in executors) or "none registered yet",
    )
    log.info("spark confs: %s", ", ".join(f"{k}={v}" for k, v in info["confs"].items()))
    log.info("python: %s", ", ".join(f"{k}={v}" for k, v in info["env"].items()) or "PYSPARK_PYTHON unset")
    return info


def _expected_executors(sc) -> int | None:
    conf = sc.getConf()
    if conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true":
        return None
    instances = conf.get("spark.executor.instances", None)
    if instances:
        return int(instances)
    if sc.master.startswith("spark://"):
        cores_max, executor_cores = conf.get("spark.cores.max", None), conf.get("spark.executor.cores", None)
        if cores_max and executor_cores:
            return int(cores_max) // int(executor_cores)
    return None


def _wait_for_executors(sc, expected: int | None, wait_seconds: float) -> list[dict]:
    deadline = time.monotonic() + wait_seconds
    executors, steady_since = _executors(sc), time.monotonic()
    while time.monotonic() < deadline:
        if expected is not None and len(executors) >= expected:
            break
        if expected is None and executors and time.monotonic() - steady_since >= 1.0:
            break
        time.sleep(0.2)
        now = _executors(sc)
        if len(now) != len(executors):
            steady_since = time.monotonic()
        executors = now
    return executors


def _executors(sc) -> list[dict]:
    """The live executors, the driver left out, from Spark's status store (which knows their cores)."""
    jsc = sc._jsc.sc()
    try:
        summaries = jsc.statusStore().executorList(True)
        found = []
        for i in range(summaries.size()):
            summary = summaries.apply(i)
            if summary.id() != "driver":
                found.append({"id": summary.id(), "host": summary.hostPort(), "cores": summary.totalCores()})
        return sorted(found, key=lambda e: e["id"])
    except Exception:  # an internal API: fall back to the block managers, which know no cores
        statuses = jsc.getExecutorMemoryStatus()
        driver = f"{jsc.conf().get('spark.driver.host', '')}:{jsc.conf().get('spark.driver.port', '')}"
        keys = statuses.keys().toList()
        hosts = [keys.apply(i) for i in range(keys.size())]
        return [{"id": "?", "host": h, "cores": None} for h in hosts if h != driver]

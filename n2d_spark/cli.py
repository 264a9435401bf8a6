"""Command line: ``n2d-spark run`` (own local session), ``n2d-spark generate``, and the spark-submit entry."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Callable

from n2d_spark.config import JobConfig, SparkConfig, load_config
from n2d_spark.errors import EnvironmentProblem, N2DError

log = logging.getLogger("n2d_spark")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="n2d-spark", description="Cluster text with N2D on Spark.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the clustering job")
    _add_job_arguments(run)

    generate = commands.add_parser("generate", help="write the synthetic review corpus with planted topics")
    generate.add_argument("--rows", type=int, default=5000)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--output", required=True, help="a .csv or .csv.gz path")
    return parser


def _add_job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="a YAML file from conf/ (defaults apply to keys it leaves out)")
    parser.add_argument("--input", required=True, help="CSV or Parquet file or folder")
    parser.add_argument("--output", required=True, help="output folder (labels/, clusters/, model/, run.json)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override a config key, e.g. --set autoencoder.epochs=10 (repeatable)",
    )
    parser.add_argument("--debug", action="store_true", help="show full stack traces")


def main(argv: list[str] | None = None) -> int:
    """The ``n2d-spark`` console script: builds its own SparkSession from the ``spark`` config section."""
    args = _parser().parse_args(argv)
    if args.command == "generate":
        from n2d_spark.synthetic import generate_reviews, write_corpus

        path = write_corpus(generate_reviews(args.rows, seed=args.seed), args.output)
        print(f"wrote {args.rows} synthetic reviews to {path}")
        return 0
    return _run(args, lambda config: build_local_session(config.spark))


def submit_main(argv: list[str] | None = None) -> int:
    """The spark-submit entry (``jobs/n2d_job.py``): the submit line decides master and resources."""
    parser = argparse.ArgumentParser(prog="n2d_job.py", description="Cluster text with N2D on Spark.")
    _add_job_arguments(parser)
    args = parser.parse_args(argv)

    def submitted_session(_config: JobConfig):
        from pyspark.sql import SparkSession

        return SparkSession.builder.appName("n2d-spark").getOrCreate()

    return _run(args, submitted_session)


def _run(args: argparse.Namespace, make_session: Callable) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    try:
        config = load_config(args.config, args.overrides)
        _require_java()
        spark = make_session(config)
        from n2d_spark.session import log_session; log_session(spark)  # noqa: E702
        spark.sparkContext.setLogLevel("WARN")
        from n2d_spark.pipeline import run_job

        result = run_job(spark, config, args.input, args.output)
    except N2DError as error:
        if args.debug:
            raise
        print(f"n2d-spark: error: {error}", file=sys.stderr)
        return 2
    print(format_summary(result.manifest))
    return 0


def _require_java() -> None:
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and os.path.exists(os.path.join(java_home, "bin", "java"))) and not shutil.which("java"):
        raise EnvironmentProblem(
            "Java not found: Spark needs Java 17 or newer (e.g. `apt-get install openjdk-17-jre-headless`), "
            "on PATH or in JAVA_HOME"
        )


def build_local_session(config: SparkConfig):
    """A SparkSession for the console script; executors run this same Python interpreter."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.appName("n2d-spark")
        .master(config.master)
        .config("spark.driver.memory", config.driver_memory)
        .config("spark.sql.shuffle.partitions", str(config.shuffle_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


def format_summary(manifest: dict) -> str:
    clusters = manifest["clusters"]
    lines = [
        f"output:   {manifest['output']}",
        f"rows:     {manifest['rows']['in']} in, {manifest['rows']['labelled']} labelled, "
        f"{manifest['rows']['rejected']} rejected",
        f"clusters: {clusters['n_clusters']} (noise share {clusters['noise_share']:.1%})",
        "stages:   " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in manifest["stage_seconds"].items())
        + f"; total {manifest['total_seconds']:.1f}s",
    ]
    evaluation = manifest.get("evaluation")
    if evaluation:
        lines.append(
            f"recovery of {evaluation['label_col']!r}: accuracy {evaluation['accuracy']:.3f}, "
            f"ARI {evaluation['ari']:.3f}, NMI {evaluation['nmi']:.3f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

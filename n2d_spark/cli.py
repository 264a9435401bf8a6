"""Command line: ``n2d-spark run``, ``assign`` and ``update`` (own local session), ``similar``, ``generate``, ``config``,
and the spark-submit entry.

Over 300 lines: every command's arguments, and the summary a run prints, in one place.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from n2d_spark.core.config import JobConfig, load_config
from n2d_spark.core.errors import EnvironmentProblem, InputError, N2DError
from n2d_spark.core.terminal import printable
from n2d_spark.model.assign_policy import check_assign_overrides, session_overrides
from n2d_spark.outputs.publish import check_output, local_path, refuse_unsafe_output

log = logging.getLogger("n2d_spark")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="n2d-spark", description="Cluster text with N2D on Spark.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run_arguments(commands.add_parser("run", help="train the model and label every row"))
    _add_assign_arguments(commands.add_parser("assign", help="label new rows with a saved model, without training"))
    _add_assign_arguments(
        commands.add_parser("update", help="label new rows with a saved model, find the new ones and their topics, save an updated model"),
        "output folder (labels/ with novelty, rejected/, clusters/, model/: the updated model, report/update.html, run.json)",
    )

    similar = commands.add_parser("similar", help="print the rows of an output most similar to one of its rows or to a text")
    similar.add_argument("--output", required=True, help="a run's or an assign run's output folder")
    asked = similar.add_mutually_exclusive_group(required=True)
    asked.add_argument("--id", help="a row's id: its most similar other rows")
    asked.add_argument("--text", help="a new text, embedded by the output's model")
    similar.add_argument("--k", type=int, default=10, help="how many rows (default 10)")
    similar.add_argument("--allow-pickle", action="store_true", help="as for assign: load a model bundle that holds a pickle")
    similar.add_argument("--debug", action="store_true", help="show full stack traces")

    shown = commands.add_parser("config", help="print the resolved config as YAML, each key with its meaning")
    shown.add_argument("--config", help="a YAML file from conf/ (defaults apply to keys it leaves out)")
    shown.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    shown.add_argument("--markdown", action="store_true", help="print the table of keys (docs/configuration.md) instead")

    generate = commands.add_parser("generate", help="write the synthetic review corpus with planted topics")
    generate.add_argument("--rows", type=int, default=5000)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--output", required=True, help="a .csv or .csv.gz path")
    generate.add_argument("--dates", action="store_true", help="add a date column with planted trends (for input.time_col)")
    generate.add_argument("--users", type=int, default=0, help="add a user column: this many reviewers with planted tastes (for input.user_col)")
    return parser


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="a YAML file from conf/ (defaults apply to keys it leaves out)")
    _add_common_arguments(parser, "output folder (labels/, rejected/, clusters/, model/, report/, run.json)")


def _add_assign_arguments(parser: argparse.ArgumentParser, output_help: str = "output folder (labels/, rejected/, clusters/, run.json)") -> None:
    parser.add_argument("--model", required=True, help="a training run's model folder (OUTPUT/model)")
    parser.add_argument(
        "--allow-pickle", action="store_true",
        help="load the model's pickles (format 1 bundles, or a UMAP with pynndescent's index): "
        "a pickle runs code when loaded, so only for a model from a trusted source",
    )
    _add_common_arguments(parser, output_help)


def _add_common_arguments(parser: argparse.ArgumentParser, output_help: str) -> None:
    parser.add_argument("--input", required=True, help="CSV or Parquet file or folder")
    parser.add_argument("--output", required=True, help=output_help)
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override a config key, e.g. --set autoencoder.epochs=10 (repeatable)",
    )
    parser.add_argument("--table", help="also write the labels as this catalog table (db.name), and db.name_clusters")
    parser.add_argument("--table-mode", choices=("fail", "overwrite", "append"), help="when the table exists (default fail)")
    parser.add_argument("--debug", action="store_true", help="show full stack traces")
    parser.add_argument("--verbose", action="store_true", help="show Spark's own log at INFO, start-up notices included")


def main(argv: list[str] | None = None) -> int:
    """The ``n2d-spark`` console script: builds its own SparkSession from the ``spark`` config section."""
    args = _parser().parse_args(argv)
    if args.command == "config":
        return _show_config(args)
    if args.command == "generate":
        from n2d_spark.synthetic import generate_reviews, write_corpus

        path = write_corpus(generate_reviews(args.rows, seed=args.seed, dates=args.dates, users=args.users), args.output)
        print(f"wrote {args.rows} synthetic reviews to {path}")
        return 0
    if args.command == "similar":
        return _similar(args)
    return _run(args, partial(build_local_session, verbose=args.verbose))


def _similar(args: argparse.Namespace) -> int:
    """``n2d-spark similar``: checks that need no Spark first, then a local session for the lookup."""

    def lookup(sessions: list) -> str:
        from n2d_spark.lookup import check_request, check_searchable, format_similar, similar_rows

        check_request(args.k, args.id, args.text)
        output = local_path(args.output)
        if output is not None:
            check_searchable(output, os.path.exists)
        _require_java()
        spark = build_local_session(JobConfig())
        sessions.append(spark)
        spark.sparkContext.setLogLevel("ERROR")
        answer = similar_rows(spark, args.output, args.k, row_id=args.id, text=args.text, allow_pickle=args.allow_pickle)
        return format_similar(answer)

    return _reported(args, lookup)


def _reported(args: argparse.Namespace, work: Callable[[list], str]) -> int:
    """Print what ``work`` returns, exit 0; an ``N2DError`` is one line on stderr, exit 2 (the
    trace with ``--debug``). The sessions ``work`` starts (it adds them to its list) stop either way:
    the script owns them, and executors and the JVM go when the command does, failed or not."""
    sessions: list = []
    try:
        text = work(sessions)
    except N2DError as error:
        if args.debug:
            raise
        # An error may quote the data: a column name, an id.
        print(printable(f"n2d-spark: error: {error}"), file=sys.stderr)
        return 2
    finally:
        for spark in sessions:
            spark.stop()
    print(text)
    return 0


def _show_config(args: argparse.Namespace) -> int:
    from n2d_spark.core.config_keys import config_yaml, markdown_table

    try:
        print(markdown_table() if args.markdown else config_yaml(load_config(args.config, args.overrides)), end="")
    except N2DError as error:
        print(printable(f"n2d-spark: error: {error}"), file=sys.stderr)
        return 2
    return 0


def submit_main(command: str = "run", argv: list[str] | None = None) -> int:
    """The spark-submit entries (``jobs/n2d_job.py``: run, ``jobs/assign_job.py``: assign, ``jobs/update_job.py``: update);
    the submit line decides master and resources."""
    parser = argparse.ArgumentParser(prog=f"{'n2d' if command == 'run' else command}_job.py", description=_parser().description)
    (_add_run_arguments if command == "run" else _add_assign_arguments)(parser)
    args = parser.parse_args(argv)
    args.command = command
    if command == "run":
        args.config = shipped_config(args.config)

    def submitted_session(_config: JobConfig):
        from pyspark.sql import SparkSession

        return SparkSession.builder.appName("n2d-spark").getOrCreate()

    return _run(args, submitted_session)


def shipped_config(path: str | None) -> str | None:
    """``path`` where it exists; else the copy shipped with the submission (scripts/submit.sh's
    --files), found by its file name: in cluster deploy mode the driver runs on a cluster node,
    where YARN puts shipped files in the working directory and Spark fetches them to SparkFiles."""
    if path is None or os.path.exists(path):
        return path
    from pyspark import SparkFiles
    from pyspark.sql import SparkSession

    SparkSession.builder.getOrCreate()
    name = os.path.basename(path)
    for candidate in (name, SparkFiles.get(name)):
        if os.path.exists(candidate):
            return candidate
    return path


def _run(args: argparse.Namespace, make_session: Callable) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    overrides = list(args.overrides)
    if args.table is not None:
        overrides.append(f"output.table={args.table}")
    if args.table_mode is not None:
        overrides.append(f"output.table_mode={args.table_mode}")

    def job(sessions: list) -> str:
        if args.command == "run":
            config = load_config(args.config, overrides)
        else:
            check_assign_overrides(overrides, args.command)
            # Here only what the session needs, checked again against the model.
            config = load_config(None, session_overrides(overrides))
        _check_local_input(args.input)
        _check_local_output(args, config)
        _require_java()
        spark = make_session(config)
        sessions.append(spark)
        from n2d_spark.core.session import log_session

        log_session(spark)
        spark.sparkContext.setLogLevel("INFO" if args.verbose else "WARN")
        from n2d_spark.pipeline import run_assign, run_job, run_update

        if args.command == "run":
            result = run_job(spark, config, args.input, args.output)
        else:
            saved = run_update if args.command == "update" else run_assign
            result = saved(spark, args.model, args.input, args.output, overrides, allow_pickle=args.allow_pickle)
        return format_summary(result.manifest)

    return _reported(args, job)


def _check_local_input(path: str) -> None:
    """A missing local input fails here, in a second, rather than after the JVM and Spark start."""
    if "://" not in path and not any(c in path for c in "*?[{") and not os.path.exists(path):
        raise InputError(f"input not found: {path}")


def _check_local_output(args: argparse.Namespace, config: JobConfig) -> None:
    """A local output that may not be replaced, or that would hold the input, fails here, before Spark starts."""
    output = local_path(args.output)
    if output is None:
        return
    refuse_unsafe_output(args.output, [args.input, getattr(args, "model", None)])
    check_output(output, config.output.mode, os.path.exists)


def _require_java() -> None:
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and os.path.exists(os.path.join(java_home, "bin", "java"))) and not shutil.which("java"):
        raise EnvironmentProblem(
            "Java not found: Spark needs Java 17 or newer (e.g. `apt-get install openjdk-17-jre-headless`), "
            "on PATH or in JAVA_HOME"
        )


def build_local_session(config: JobConfig, verbose: bool = False):
    """A SparkSession for the console script; executors run this same Python interpreter.

    Unless ``verbose``, the driver logs with the package's log4j2.properties: warnings and
    errors, without the notices every local start prints.

    With ``output.table`` set, the catalog is Spark's embedded one (Hive with a Derby
    metastore), its warehouse and metastore under the working directory.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.appName("n2d-spark")
        .master(config.spark.master)
        .config("spark.driver.memory", config.spark.driver_memory)
        .config("spark.sql.shuffle.partitions", str(config.spark.shuffle_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Spark's stage progress bar redraws one line: on a terminal only, not in a log file.
        .config("spark.ui.showConsoleProgress", str(sys.stderr.isatty()).lower())
    )
    if not verbose:
        quiet_log = Path(__file__).with_name("log4j2.properties")
        builder = builder.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={quiet_log.as_uri()}")
    if config.output.table is not None:
        from n2d_spark.outputs.catalog import catalog_session_confs

        for key, value in catalog_session_confs(os.getcwd()).items():
            builder = builder.config(key, value)
    return builder.getOrCreate()


def format_summary(manifest: dict) -> str:
    clusters = manifest["clusters"]
    lines = [
        f"output:   {manifest['output']}",
        f"rows:     {manifest['rows']['in']} in, {manifest['rows']['labelled']} labelled, "
        f"{manifest['rows']['rejected']} rejected",
        f"clusters: {clusters['n_clusters']} (noise share {clusters['noise_share']:.1%})",
    ]
    for i, topic in enumerate(clusters.get("largest", [])):
        lines.append(f"{'largest:' if i == 0 else '':<10}{topic['share']:6.1%}  {topic['name']}")
    topics = manifest.get("topics")
    if topics and topics["npmi"] is not None:
        lines.append(f"topics:   coherence (NPMI) {topics['npmi']:.3f}, diversity {topics['diversity']:.2f}")
    lines.append(
        "stages:   " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in manifest["stage_seconds"].items())
        + f"; total {manifest['total_seconds']:.1f}s"
    )
    update = manifest.get("update")
    if update:
        lines += update_summary(update)
    evaluation = manifest.get("evaluation")
    if evaluation:
        lines.append(
            f"recovery of {evaluation['label_col']!r}: accuracy {evaluation['accuracy']:.3f}, "
            f"ARI {evaluation['ari']:.3f}, NMI {evaluation['nmi']:.3f}"
        )
    # Topic names and paths come from the data and the user: each line stays one line, printed as it is written.
    return "\n".join(map(printable, lines))


def update_summary(update: dict) -> list[str]:
    """An update's lines of the summary: new rows, new topics, words outside the vocabulary, and the advice."""
    new_topics = update["new_topics"]
    named = ", ".join(topic["name"] for topic in new_topics[:3]) + (", ..." if len(new_topics) > 3 else "")
    lines = [f"update:   {update['new_rows']} rows new ({update['new_row_share']:.1%}) in "
             f"{len(new_topics)} new topic{'' if len(new_topics) == 1 else 's'}{': ' + named if new_topics else ''}",
             f"{'':<10}{update['novel_rows']} rows novel ({update['novel_row_share']:.1%}): the model describes them poorly"]
    oov = update["out_of_vocabulary_share"]
    if oov["new"] is not None and oov["training"] is not None:
        lines.append(f"{'':<10}{oov['new']:.1%} of the words outside the vocabulary ({oov['training']:.1%} in the training data)")
    if update["retrain_advised"]:
        lines.append(f"advice:   retrain the model on all the data: {'; '.join(update['why'])}")
    return lines


if __name__ == "__main__":
    sys.exit(main())

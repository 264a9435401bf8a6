"""Run the job as a user would (the console script, in its own processes) and report its numbers.

One run on a whole input, as before (a Markdown row for BENCHMARKS.md):

    .venv/bin/python scripts/bench.py --input ../shared/data/imdb_reviews.csv.gz --config conf/imdb.yaml \
        [--set key=value ...] [--label imdb-50000]

Named sizes, each against the single-process reference pipeline (scripts/reference_pipeline.py:
pandas, scikit-learn, Keras and umap-learn, the study's way), in the same invocation:

    .venv/bin/python scripts/bench.py --input ../shared/data/imdb_reviews.csv.gz --config conf/imdb.yaml \
        --sizes 5000,25000,50000 --reference [--set key=value ...] [--json results.json]

For each size N the first N rows of the input are written to one CSV (RFC 4180 quoting, as
pandas writes it) and both pipelines read that same file: the job first, then the reference,
one after the other, each in its own process, with the same config and ``--set`` overrides.
Prints Markdown tables: per-stage wall seconds ("other" is the process's wall time not in
any stage: interpreter, JVM and Spark session start, imports), total wall seconds (the
process's, measured here), rows per second, peak memory, the quality metrics of both, and
the ratio of the job's wall time to the reference's.

Memory, sampled every 0.2 s from /proc, in two measures named the same everywhere:
"process tree peak", the largest sum of resident memory over the whole process tree (for the
job: the Python driver, its JVM, which in local mode also runs the executors' tasks, and the
Python workers; for the reference: its one process), and, for the job, "driver + JVM peak", the
same without the Python workers; the one-run mode also prints the Python driver's own peak. The 1-minute load average before each run is printed, so that
a run on a shared machine shows as one. Every row names the CPU model and the precision the
autoencoder trained in (bfloat16 only where the CPU has it), so that tables from different
machines are never mixed silently.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ("read", "vectorize", "autoencoder", "embed", "manifold", "cluster", "assign", "write")


def tree_rss_bytes(root_pid: int) -> tuple[int, int, int]:
    """Resident memory of ``root_pid`` and all its descendants, of the driver and JVM, and of the root alone.

    The driver is the root process and its JVM; in local mode the JVM also holds the
    executors' tasks and cached blocks. The Python workers (executors) are left out of it.
    The root alone is the Python driver: what it holds (the samples, TensorFlow, UMAP) is what
    a cluster's driver machine holds beside Spark's driver JVM.
    """
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    names: dict[int, str] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        pid, ppid = int(fields["Pid"]), int(fields["PPid"])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
        names[pid] = fields["Name"].strip()
    total, driver, stack = 0, 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        if pid == root_pid or names.get(pid) == "java":
            driver += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total, driver, rss.get(root_pid, 0)


def measured(command: list[str], log_path: Path) -> dict:
    """Run ``command`` to completion; its wall seconds, peak process-tree RSS and the load before it."""
    load_before = os.getloadavg()[0]
    with open(log_path, "w") as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
        peak = peak_driver = peak_python = 0
        while process.poll() is None:
            tree, driver, python = tree_rss_bytes(process.pid)
            peak, peak_driver, peak_python = max(peak, tree), max(peak_driver, driver), max(peak_python, python)
            time.sleep(0.2)
        wall = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"{command[0]} failed ({process.returncode}); log {log_path}:\n{log_path.read_text()[-4000:]}")
    return {"wall_seconds": round(wall, 3), "peak_rss_bytes": peak, "peak_driver_rss_bytes": peak_driver,
            "peak_python_driver_rss_bytes": peak_python, "load_before": round(load_before, 2)}


def run_job(input_path: str, config: str, overrides: list[str], work: Path, name: str) -> dict:
    output = work / f"{name}-out"
    command = [str(Path(sys.executable).parent / "n2d-spark"), "run", "--config", config,
               "--input", input_path, "--output", str(output)]
    for override in overrides:
        command += ["--set", override]
    result = measured(command, work / f"{name}.log")
    result["manifest"] = json.loads((output / "run.json").read_text())
    shutil.rmtree(output, ignore_errors=True)
    return result


def run_reference(input_path: str, config: str, overrides: list[str], work: Path, name: str) -> dict:
    output = work / f"{name}.json"
    command = [sys.executable, str(REPO / "scripts" / "reference_pipeline.py"), "--config", config,
               "--input", input_path, "--output", str(output)]
    for override in overrides:
        command += ["--set", override]
    result = measured(command, work / f"{name}.log")
    result["manifest"] = json.loads(output.read_text())
    return result


def write_slice(input_path: str, rows: int, path: Path) -> int:
    """The first ``rows`` rows of the CSV at ``input_path``, as a CSV at ``path``; the rows written."""
    import pandas as pd

    frame = pd.read_csv(input_path, nrows=rows, dtype=str, keep_default_na=False)
    if len(frame) < rows:
        sys.exit(f"{input_path} has {len(frame)} rows, fewer than the size {rows} asked for")
    frame.to_csv(path, index=False)
    return len(frame)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _machine(manifest: dict) -> str:
    # The reference trains as the study did, in float32.
    return f"{cpu_model()}, {manifest.get('autoencoder_precision', 'float32')}"


def _f(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def tables(results: list[dict]) -> str:
    """Markdown: stage times, quality, and job / reference per size."""
    stages = list(STAGES)
    for result in results:
        stages += [s for s in result["manifest"]["stage_seconds"] if s not in stages]
    lines = ["### Wall seconds per stage", "",
             "| rows | pipeline | CPU, precision | " + " | ".join(stages)
             + " | other | total s | rows/s | process tree peak GiB | load before |",
             "|---" * (len(stages) + 8) + "|"]
    for r in results:
        seconds = r["manifest"]["stage_seconds"]
        other = r["wall_seconds"] - sum(seconds.values())
        lines.append(
            f"| {r['rows']} | {r['pipeline']} | {_machine(r['manifest'])} | "
            + " | ".join(f"{seconds[s]:.1f}" if s in seconds else "–" for s in stages)
            + f" | {other:.1f} | {r['wall_seconds']:.1f} | {r['rows'] / r['wall_seconds']:.0f}"
            + f" | {r['peak_rss_bytes'] / 2**30:.2f} | {r['load_before']:.2f} |"
        )
    lines += ["", "### Quality", "",
              "| rows | pipeline | autoencoder trained on | final val loss | clusters | noise share | silhouette "
              "| accuracy | ARI | NMI |",
              "|---" * 10 + "|"]
    for r in results:
        m = r["manifest"]
        evaluation = m.get("evaluation") or {}
        val_loss = (m.get("autoencoder_history") or {}).get("val_loss") or [None]
        fraction = (m.get("settings") or m.get("config") or {}).get("autoencoder", {}).get("validation_fraction", 0.1)
        trained = m["rows"].get("autoencoder_sample", m["rows"]["in"])
        # The reference trains as the study did, in float32.
        precision = m.get("autoencoder_precision", "float32")
        lines.append(
            f"| {r['rows']} | {r['pipeline']} | {trained} rows, {fraction:.0%} held out, {precision} | {_f(val_loss[-1], 4)}"
            f" | {m['clusters']['n_clusters']} | {_f(m['clusters']['noise_share'])} | {_f(m['clusters'].get('silhouette'))}"
            f" | {_f(evaluation.get('accuracy'))} | {_f(evaluation.get('ari'))} | {_f(evaluation.get('nmi'))} |"
        )
    pairs = {}
    for r in results:
        pairs.setdefault(r["rows"], {})[r["pipeline"]] = r
    ratio_rows = [(n, p["job"], p["reference"]) for n, p in pairs.items() if "job" in p and "reference" in p]
    if ratio_rows:
        lines += ["", "### Job / reference wall time", "",
                  "| rows | job s | reference s | job / reference |", "|---|---|---|---|"]
        for n, job, ref in ratio_rows:
            lines.append(f"| {n} | {job['wall_seconds']:.1f} | {ref['wall_seconds']:.1f}"
                         f" | {job['wall_seconds'] / ref['wall_seconds']:.2f} |")
    return "\n".join(lines)


def single_row(result: dict, label: str) -> str:
    """The one-run mode's Markdown row: stage seconds, total, peak memory and validation loss."""
    manifest = result["manifest"]
    stages = manifest["stage_seconds"]
    rows = manifest["rows"]["in"]
    lines = [
        "| input | rows | CPU, precision | " + " | ".join(STAGES)
        + " | total s | rows/s | driver + JVM peak GiB | process tree peak GiB | clusters | noise |",
        "|---" * (len(STAGES) + 9) + "|",
        f"| {label} | {rows} | {_machine(manifest)} | "
        + " | ".join(f"{stages[s]:.1f}" if s in stages else "–" for s in STAGES)
        + f" | {result['wall_seconds']:.1f} | {rows / result['wall_seconds']:.0f}"
        + f" | {result['peak_driver_rss_bytes'] / 2**30:.2f} | {result['peak_rss_bytes'] / 2**30:.2f}"
        + f" | {manifest['clusters']['n_clusters']} | {manifest['clusters']['noise_share']:.3f} |",
    ]
    per_core = manifest.get("rows_per_second_per_core")
    if per_core:
        lines.append(f"\nrows per second per core: {per_core}; rows {manifest['rows']}")
    lines.append(f"Python driver alone, peak: {result['peak_python_driver_rss_bytes'] / 2**30:.2f} GiB")
    evaluation = manifest.get("evaluation")
    if evaluation:
        lines.append(f"\nagainst {evaluation['label_col']}: ARI {evaluation['ari']:.3f}, NMI {evaluation['nmi']:.3f}")
    lines.append(f"autoencoder val_loss by epoch: {[round(v, 6) for v in manifest['autoencoder_history'].get('val_loss', [])]}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the job, optionally against the single-process reference.")
    parser.add_argument("--input", required=True)
    parser.add_argument("--config", default=str(REPO / "conf" / "imdb.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--label", default=None, help="the input's name in the one-run row")
    parser.add_argument("--sizes", default=None, help="comma-separated row counts: the first N rows of --input, each")
    parser.add_argument("--reference", action="store_true", help="also run scripts/reference_pipeline.py on each size")
    parser.add_argument("--json", default=None, help="write every measurement and manifest here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (slices, logs, reference results)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="n2d-bench-"))
    try:
        if args.sizes is None:
            if args.reference:
                parser.error("--reference needs --sizes (both pipelines must read the same slice)")
            result = run_job(args.input, args.config, args.overrides, work, "job")
            print(single_row(result, args.label or Path(args.input).name))
            results = [{"pipeline": "job", "rows": result["manifest"]["rows"]["in"], **result}]
        else:
            results = []
            print(f"# {os.cpu_count()} CPUs; config {args.config}; overrides {args.overrides or 'none'}", flush=True)
            for size in (int(s.replace("_", "")) for s in args.sizes.split(",")):
                slice_path = work / f"rows-{size}.csv"
                rows = write_slice(args.input, size, slice_path)
                runners = [("job", run_job)] + ([("reference", run_reference)] if args.reference else [])
                for pipeline, runner in runners:
                    result = runner(str(slice_path), args.config, args.overrides, work, f"{pipeline}-{size}")
                    results.append({"pipeline": pipeline, "rows": rows, **result})
                    print(f"# {rows} rows, {pipeline}: {result['wall_seconds']:.1f} s, process tree peak "
                          f"{result['peak_rss_bytes'] / 2**30:.2f} GiB, load before {result['load_before']:.2f}",
                          flush=True)
            print()
            print(tables(results))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, sort_keys=True, default=str))
    finally:
        if args.keep:
            print(f"\nwork folder: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

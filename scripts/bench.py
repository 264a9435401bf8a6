"""Run the job as a user would (the console script, in its own processes) and report its numbers.

    .venv/bin/python scripts/bench.py --input ../shared/data/imdb_reviews.csv.gz --config conf/imdb.yaml \
        [--set key=value ...] [--label imdb-50000]

Prints a Markdown row for BENCHMARKS.md: per-stage wall seconds, total wall seconds, rows
per second, and the driver's peak memory, taken as the largest sum of resident memory over
the driver's process tree (the Python driver, its JVM, which in local mode also runs the
executors' tasks, and the Python workers), sampled every 0.2 s from /proc.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ("read", "vectorize", "autoencoder", "embed", "manifold", "cluster", "write")


def tree_rss_bytes(root_pid: int) -> int:
    """Resident memory of ``root_pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        pid, ppid = int(fields["Pid"]), int(fields["PPid"])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run(input_path: str, config: str, overrides: list[str]) -> dict:
    output = Path(tempfile.mkdtemp(prefix="n2d-bench-")) / "out"
    command = [str(Path(sys.executable).parent / "n2d-spark"), "run", "--config", config,
               "--input", input_path, "--output", str(output)]
    for override in overrides:
        command += ["--set", override]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss_bytes(process.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - started
    log = process.stdout.read()
    if process.returncode != 0:
        sys.exit(f"job failed ({process.returncode}):\n{log[-4000:]}")
    manifest = json.loads((output / "run.json").read_text())
    return {"wall_seconds": wall, "peak_rss_bytes": peak, "manifest": manifest}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--config", default=str(REPO / "conf" / "imdb.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--label", default=None)
    args = parser.parse_args()
    result = run(args.input, args.config, args.overrides)
    manifest = result["manifest"]
    stages = manifest["stage_seconds"]
    rows = manifest["rows"]["in"]
    print("| input | rows | " + " | ".join(STAGES) + " | total s | rows/s | driver peak GiB | clusters | noise |")
    print("|---" * (len(STAGES) + 7) + "|")
    print(
        f"| {args.label or Path(args.input).name} | {rows} | "
        + " | ".join(f"{stages[s]:.1f}" for s in STAGES)
        + f" | {result['wall_seconds']:.1f} | {rows / result['wall_seconds']:.0f}"
        + f" | {result['peak_rss_bytes'] / 2**30:.2f} | {manifest['clusters']['n_clusters']}"
        + f" | {manifest['clusters']['noise_share']:.3f} |"
    )
    evaluation = manifest.get("evaluation")
    if evaluation:
        print(f"\nagainst {evaluation['label_col']}: ARI {evaluation['ari']:.3f}, NMI {evaluation['nmi']:.3f}")
    print(f"autoencoder val_loss by epoch: {[round(v, 6) for v in manifest['autoencoder_history'].get('val_loss', [])]}")


if __name__ == "__main__":
    main()

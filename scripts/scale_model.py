"""A scale model of the job, from measured runs: each stage's fixed seconds and its cost per row per core.

    .venv/bin/python scripts/bench.py --input ROWS.csv --config conf/synthetic.yaml --sizes 100000,300000,1000000 \
        --set spark.driver_memory=3g --set spark.shuffle_partitions=32 --json scale.json
    .venv/bin/python scripts/scale_model.py --json scale.json --fit 100000,1000000 --check 300000 --cores 2

Each stage's wall seconds at two sizes, both on the same ``--cores``, fit ``t = a + b * N / cores``:
``a`` is what the stage costs whatever the input's size (on the driver: training the autoencoder
on its sample, fitting UMAP and the clusterer on theirs; everywhere: session, task and job
start-up), ``b`` the seconds per row on one core, for the part that the executors share out.
"other" (interpreter, JVM and session start, imports) is the larger of the two runs' and fixed.
The model is then checked against a size it was not fitted on (``--check``), and projected to
10 and 100 million rows on 8, 64 and 512 executor cores. The assumptions, and where the model
stops holding, are in BENCHMARKS.md beside its table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

PROJECTED_ROWS = (10_000_000, 100_000_000)
# The job's stages in the order they run; a stage not listed follows them.
STAGE_ORDER = ("read", "vectorize", "autoencoder", "embed", "manifold", "cluster", "assign", "evaluate", "write", "report")
PROJECTED_CORES = (8, 64, 512)


def stage_seconds(result: dict) -> dict[str, float]:
    """The run's seconds per stage, and "other": its wall time in no stage."""
    seconds = dict(result["manifest"]["stage_seconds"])
    seconds["other"] = result["wall_seconds"] - sum(seconds.values())
    return seconds


def fit(small: dict, large: dict, cores: int) -> dict[str, tuple[float, float]]:
    """Per stage (fixed seconds, seconds per row per core) through the two runs' points."""
    n_small, n_large = small["rows"], large["rows"]
    t_small, t_large = stage_seconds(small), stage_seconds(large)
    model = {}
    for stage in sorted(t_large, key=lambda s: (STAGE_ORDER + (s,)).index(s) if s != "other" else len(STAGE_ORDER) + 1):
        if stage == "other":
            model[stage] = (max(t_small[stage], t_large[stage]), 0.0)
            continue
        slope = (t_large[stage] - t_small.get(stage, 0.0)) / ((n_large - n_small) / cores)
        slope = max(slope, 0.0)
        model[stage] = (max(t_large[stage] - slope * n_large / cores, 0.0), slope)
    return model


def predicted(model: dict[str, tuple[float, float]], rows: int, cores: int) -> dict[str, float]:
    return {stage: fixed + per_row * rows / cores for stage, (fixed, per_row) in model.items()}


def report(results: list[dict], fit_sizes: tuple[int, int], check_size: int, cores: int) -> str:
    by_rows = {r["rows"]: r for r in results if r["pipeline"] == "job"}
    small, large, check = by_rows[fit_sizes[0]], by_rows[fit_sizes[1]], by_rows[check_size]
    model = fit(small, large, cores)
    t_small, t_large, t_check = stage_seconds(small), stage_seconds(large), stage_seconds(check)
    forecast = predicted(model, check_size, cores)
    lines = [
        f"### The model: fitted on {fit_sizes[0]:,} and {fit_sizes[1]:,} rows, {cores} cores",
        "",
        f"| stage | s at {fit_sizes[0]:,} | s at {fit_sizes[1]:,} | fixed s (a) | us per row per core (b)"
        f" | predicted s at {check_size:,} | measured s at {check_size:,} |",
        "|---|---|---|---|---|---|---|",
    ]
    for stage, (fixed, per_row) in model.items():
        lines.append(
            f"| {stage} | {t_small.get(stage, 0.0):.1f} | {t_large[stage]:.1f} | {fixed:.1f} | {per_row * 1e6:.1f}"
            f" | {forecast[stage]:.1f} | {t_check.get(stage, 0.0):.1f} |"
        )
    total_forecast, total_check = sum(forecast.values()), check["wall_seconds"]
    lines.append(
        f"| **total** | {small['wall_seconds']:.1f} | {large['wall_seconds']:.1f}"
        f" | {sum(f for f, _ in model.values()):.1f} | {sum(b for _, b in model.values()) * 1e6:.1f}"
        f" | **{total_forecast:.1f}** | **{total_check:.1f}** |"
    )
    lines += [
        "",
        f"Check at {check_size:,} rows: predicted {total_forecast:.1f} s, measured {total_check:.1f} s "
        f"({(total_forecast - total_check) / total_check:+.1%}).",
        "",
        "Python driver alone, peak GiB: "
        + ", ".join(
            f"{r['rows']:,} rows {r['peak_python_driver_rss_bytes'] / 2**30:.2f}"
            for r in sorted(by_rows.values(), key=lambda r: r["rows"])
            if "peak_python_driver_rss_bytes" in r
        ),
        "",
        "### Projected wall time",
        "",
        "| rows | " + " | ".join(f"{c} cores" for c in PROJECTED_CORES) + " | of which fixed |",
        "|---" * (len(PROJECTED_CORES) + 2) + "|",
    ]
    fixed_total = sum(f for f, _ in model.values())
    for rows in PROJECTED_ROWS:
        cells = [_duration(sum(predicted(model, rows, c).values())) for c in PROJECTED_CORES]
        lines.append(f"| {rows:,} | " + " | ".join(cells) + f" | {_duration(fixed_total)} |")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="bench.py --json output holding the runs")
    parser.add_argument("--fit", default="100000,1000000", help="the two sizes to fit on")
    parser.add_argument("--check", type=int, default=300000, help="the size to check the model against")
    parser.add_argument("--cores", type=int, default=2, help="the cores the runs had")
    args = parser.parse_args()
    small, large = (int(s) for s in args.fit.split(","))
    print(report(json.loads(Path(args.json).read_text()), (small, large), args.check, args.cores))


if __name__ == "__main__":
    main()

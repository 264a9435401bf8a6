"""The benchmark scripts' own logic: the CPU and precision every row names, the scale model's fit, the update bench's split, the MLlib peer's settings and marginal cost."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(rows: int, stage_seconds: dict[str, float], wall_seconds: float, precision: str = "float32") -> dict:
    """One job run as bench.py records it (the manifest cut to the keys its rows read)."""
    return {
        "pipeline": "job",
        "rows": rows,
        "wall_seconds": wall_seconds,
        "peak_rss_bytes": 3 * 2**30,
        "peak_driver_rss_bytes": 2 * 2**30,
        "peak_python_driver_rss_bytes": 2**30,
        "load_before": 0.5,
        "manifest": {
            "stage_seconds": stage_seconds,
            "rows": {"in": rows},
            "clusters": {"n_clusters": 4, "noise_share": 0.0},
            "autoencoder_history": {"val_loss": [0.9]},
            "autoencoder_precision": precision,
        },
    }


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="no /proc/cpuinfo on this system")
def test_bench_rows_name_the_cpu_and_the_precision():
    bench = _script("bench")
    model_names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
    cpu = bench.cpu_model()
    assert model_names and cpu == model_names[0]
    row = bench.single_row(_run(1000, {"read": 1.0}, 10.0, precision="bfloat16"), "a label")
    assert f"| a label | 1000 | {cpu}, bfloat16 |" in row
    table = bench.tables([_run(1000, {"read": 1.0}, 10.0)])
    assert f"| 1000 | job | {cpu}, float32 |" in table


def test_scale_model_recovers_fixed_and_per_row_costs_and_predicts_a_third_size():
    scale = _script("scale_model")
    # read: 2 s fixed + 40 us a row on each of 2 cores; autoencoder: 60 s, whatever the size.
    runs = [
        _run(n, {"read": 2.0 + 40e-6 * n / 2, "autoencoder": 60.0}, 2.0 + 40e-6 * n / 2 + 60.0 + 15.0)
        for n in (100_000, 300_000, 1_000_000)
    ]
    model = scale.fit(runs[0], runs[2], cores=2)
    assert model["read"] == pytest.approx((2.0, 40e-6))
    assert model["autoencoder"] == pytest.approx((60.0, 0.0))
    assert model["other"] == pytest.approx((15.0, 0.0))
    assert sum(scale.predicted(model, 300_000, cores=2).values()) == pytest.approx(runs[1]["wall_seconds"])
    # On 64 cores the read's per-row part shrinks 32-fold; the fixed parts do not.
    assert sum(scale.predicted(model, 10_000_000, cores=64).values()) == pytest.approx(2.0 + 40e-6 * 10_000_000 / 64 + 75.0)


def test_update_bench_splits_rows_in_two_hashed_halves():
    """update_bench.py cuts AG News by a hash of the row number: the same halves every run, about even, not in runs."""
    halves = _script("update_bench").halves
    first = halves(7600)
    assert (first == halves(7600)).all() and 0.45 < first.mean() < 0.55
    # Not the first half of the file and then the second: the halves interleave.
    assert 0.4 < first[:3800].mean() < 0.6


def test_mllib_peer_runs_the_peer_as_the_job_and_cancels_fixed_costs():
    peer = _script("mllib_peer")
    settings = peer.job_settings(str(SCRIPTS.parent / "conf" / "synthetic.yaml"), ["spark.master=local[3]", "text.vocab_size=700"])
    assert (settings["cores"], settings["vocab_size"]) == (3, 700)
    # 100 s fixed, then 0.5 ms of wall time a row on 2 cores: 1,000 µs a row per core.
    seconds = {rows: 100.0 + rows * 0.5e-3 for rows in (50_000, 300_000, 100_000)}
    assert peer.marginal_us(seconds, cores=2) == pytest.approx(1000.0)

"""Write scikit-learn's bundled handwritten digits (1,797 8x8 images, no download) as Parquet.

    .venv/bin/python scripts/digits_to_parquet.py data/digits.parquet

Columns: ``pixels`` (array<double>, 64 values from 0 to 16, row by row) and ``digit`` (int, 0-9).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.datasets import load_digits


def write_digits(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    table = pa.table(
        {
            "pixels": pa.array(digits.data.tolist(), type=pa.list_(pa.float64())),
            "digit": pa.array(digits.target, type=pa.int32()),
        }
    )
    pq.write_table(table, path)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default="data/digits.parquet", help="the Parquet file to write")
    target = write_digits(parser.parse_args().output)
    print(f"wrote 1797 digits to {target}")

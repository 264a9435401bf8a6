"""Write scikit-learn's bundled handwritten digits (1,797 8x8 images, no download) as Parquet.

    .venv/bin/python scripts/studies/digits_to_parquet.py data/digits.parquet

Columns: ``pixels`` (array<double>, 64 values from 0 to 16, row by row) and ``digit`` (int, 0-9).
"""

from __future__ import annotations

import sys
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
    target = write_digits(sys.argv[1] if len(sys.argv) > 1 else "data/digits.parquet")
    print(f"wrote 1797 digits to {target}")

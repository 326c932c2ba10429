"""MNIST from the four IDX files (``.gz`` or uncompressed).

Split (fixed): ``train`` = the first 55,000 digits of ``train-images-idx3-ubyte``, ``val`` = the
last 5,000 of it, ``test`` = the 10,000 digits of ``t10k-images-idx3-ubyte``. (For a training
file of another length, e.g. a test fixture, ``val`` is its last ``N // 12`` digits, which is
5,000 for the real 60,000.)
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from vaezoo.data.base import DataError, Dataset, DatasetInfo, tail_split
from vaezoo.data.sources import Location

INFO = DatasetInfo(
    name="mnist",
    shape=(1, 28, 28),
    kind="image",
    likelihood="bernoulli",
    classes=tuple(str(d) for d in range(10)),
    citation=(
        "MNIST handwritten digits, Y. LeCun, C. Cortes, C. J. C. Burges, http://yann.lecun.com/exdb/mnist/; "
        "CC BY-SA 3.0"
    ),
)

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# IDX type byte -> numpy dtype (big-endian).
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not, detected from its first bytes)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        opener = gzip.open if gz else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path} is corrupt or truncated ({e}); delete it and load again") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number); delete it and load again")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path} has a truncated IDX header; delete it and load again")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(
            f"{path} has {len(raw)} bytes but its header {dims} needs {expected}; the file is truncated or "
            "corrupt: delete it and load again"
        )
    arr = np.frombuffer(raw, dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # a writable, native-endian copy


def _read_pair(loc: Location, which: str) -> tuple[np.ndarray, np.ndarray]:
    img_name, lab_name = FILES[which]
    img_path = loc.require(img_name, alternatives=(img_name[:-3],))
    lab_path = loc.require(lab_name, alternatives=(lab_name[:-3],))
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DataError(f"mnist: {img_path} holds {images.dtype} {images.shape}, expected uint8 N x 28 x 28")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"mnist: {lab_path} has {labels.shape} labels for {len(images)} images")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"mnist: {lab_path} has labels outside 0..9")
    return images, labels


def load(split: str, loc: Location) -> Dataset:
    loc.check_root()
    if split == "test":
        x, y = _read_pair(loc, "test")
    else:
        x, y = _read_pair(loc, "train")
        sl = tail_split(len(x), len(x) // 12, split)
        x, y = x[sl], y[sl]
    return Dataset("mnist", split, np.ascontiguousarray(x[:, None]), y.astype(np.int64), INFO)

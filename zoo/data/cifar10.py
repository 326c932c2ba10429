"""CIFAR-10, BINARY version only (``cifar-10-binary.tar.gz``); nothing is ever unpickled.

Each of ``data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin`` is a sequence of
3,073-byte records: one label byte (0..9), then 1,024 red, 1,024 green and 1,024 blue bytes of a
32 x 32 image in row-major order. The files are read either straight out of the tar.gz (only
those six members, by name; nothing is extracted) or from an unpacked ``cifar-10-batches-bin/``
folder (or the ``.bin`` files placed directly in the data folder).

Split (fixed): ``train`` = the first 45,000 records of ``data_batch_1..5`` in order, ``val`` = the
last 5,000 (= ``data_batch_5.bin``), ``test`` = ``test_batch.bin`` (10,000). (For training files of
another length, ``val`` is the last ``N // 10``.)
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from vaezoo.data.base import DataError, Dataset, DatasetInfo, tail_split
from vaezoo.data.sources import Location

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
INFO = DatasetInfo(
    name="cifar10",
    shape=(3, 32, 32),
    kind="image",
    likelihood="gaussian",
    classes=CLASSES,
    citation=(
        "CIFAR-10, A. Krizhevsky, 'Learning Multiple Layers of Features from Tiny Images', 2009, "
        "https://www.cs.toronto.edu/~kriz/cifar.html; cite the tech report"
    ),
)

ARCHIVE = "cifar-10-binary.tar.gz"
FOLDER = "cifar-10-batches-bin"
RECORD = 1 + 3 * 32 * 32
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILES = ("test_batch.bin",)


def parse_records(raw: bytes, label: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from the bytes of one CIFAR-10 binary batch."""
    if len(raw) == 0 or len(raw) % RECORD:
        raise DataError(
            f"cifar10: {label} has {len(raw)} bytes, not a multiple of the {RECORD}-byte record; "
            "the file is truncated or corrupt: delete it and load again"
        )
    rec = np.frombuffer(raw, np.uint8).reshape(-1, RECORD)
    y = rec[:, 0].astype(np.int64)
    if y.max() > 9:
        raise DataError(f"cifar10: {label} has labels above 9; it is not a CIFAR-10 binary batch")
    x = rec[:, 1:].reshape(-1, 3, 32, 32).copy()
    return x, y


def _read_from_tar(path: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tf:
            for member in tf:
                base = PurePosixPath(member.name).name
                if base in names and member.isfile() and base not in found:
                    fh = tf.extractfile(member)
                    assert fh is not None
                    found[base] = fh.read()
                    if len(found) == len(names):
                        break
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"cifar10: {path} is corrupt or truncated ({e}); delete it and load again") from e
    missing = [n for n in names if n not in found]
    if missing:
        raise DataError(f"cifar10: {path} lacks {', '.join(missing)}; it is not the CIFAR-10 binary archive")
    return found


def _read(loc: Location, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    # An unpacked folder (or loose .bin files) wins over the archive.
    folder = loc.find([FOLDER], want_dir=True)
    loose = [loc.find([f"{FOLDER}/{n}", n]) for n in names] if folder is None else [folder / n for n in names]
    if all(p is not None and p.is_file() for p in loose):
        blobs = {n: Path(p).read_bytes() for n, p in zip(names, loose)}
        where = {n: str(p) for n, p in zip(names, loose)}
    else:
        archive = loc.require(ARCHIVE)
        blobs = _read_from_tar(archive, names)
        where = {n: f"{archive}:{n}" for n in names}
    parts = [parse_records(blobs[n], where[n]) for n in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load(split: str, loc: Location) -> Dataset:
    loc.check_root()
    if split == "test":
        x, y = _read(loc, TEST_FILES)
    else:
        x, y = _read(loc, TRAIN_FILES)
        sl = tail_split(len(x), len(x) // 10, split)
        x, y = np.ascontiguousarray(x[sl]), y[sl]
    return Dataset("cifar10", split, x, y, INFO)

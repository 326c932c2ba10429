"""Datasets for vaezoo: numpy arrays in, no torch anywhere in this package.

    from vaezoo.data import DATASETS, load_dataset
    ds = load_dataset("mnist5k", "train")      # bundled, offline
    batch = ds.float_batch(slice(0, 64))       # float32 in [0, 1], 64 x 1 x 28 x 28

Datasets: ``mnist``, ``mnist5k`` (bundled), ``svhn``, ``celeba``, ``cifar10``, ``moons`` and ``sprites`` (generated),
``dsprites`` (a local copy of the real file).
Where files are looked for and how they are downloaded: :mod:`vaezoo.data.sources`.
"""

from vaezoo.data.base import SPLITS, DataError, Dataset, DatasetInfo
from vaezoo.data.download import fetch
from vaezoo.data.registry import DATASETS, load_dataset
from vaezoo.data.sources import SOURCES, clear_checksums, register_checksums

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "Dataset",
    "DataError",
    "SPLITS",
    "SOURCES",
    "load_dataset",
    "fetch",
    "register_checksums",
    "clear_checksums",
]

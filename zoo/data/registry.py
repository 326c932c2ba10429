"""The dataset registry and :func:`load_dataset`, the single entry point the rest of vaezoo uses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vaezoo.data import celeba, cifar10, mnist, mnist5k, moons, sprites, svhn
from vaezoo.data.base import DataError, Dataset, DatasetInfo, check_split
from vaezoo.data.sources import Location

DATASETS: dict[str, DatasetInfo] = {
    info.name: info for info in (mnist.INFO, mnist5k.INFO, svhn.INFO, celeba.INFO, cifar10.INFO, moons.INFO,
                                 sprites.INFO, sprites.REAL_INFO)
}

_FILE_LOADERS = {"mnist": mnist.load, "svhn": svhn.load, "celeba": celeba.load, "cifar10": cifar10.load,
                 "dsprites": sprites.load_real}


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | Path | None = None,
    download: bool = True,
    *,
    mirror: str | Sequence[str] | None = None,
    progress: bool = True,
) -> Dataset:
    """Load one split (``"train"``, ``"val"`` or ``"test"``) of dataset ``name``.

    * ``mnist5k`` is bundled, ``moons`` and ``sprites`` are generated: they need no files. ``dsprites`` is
      read from a local copy only (it is never downloaded).
    * The other datasets are read from ``<data_dir>/<name>/`` or ``<data_dir>/`` (``data_dir``
      defaults to ``$VAEZOO_DATA``, else ``~/.cache/vaezoo/data``); missing files are downloaded
      into ``<data_dir>/<name>/`` when ``download`` is true, from ``mirror`` (a base URL or a list of
      them; default ``$VAEZOO_DATA_MIRROR``) or else the upstream URLs, and checksum-verified.
    * Every known failure raises :class:`DataError` with a one-line message saying what to do.

    The splits are fixed; each dataset module's docstring gives them (``vaezoo.data.mnist`` etc.).
    """
    info = DATASETS.get(name)
    if info is None:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    check_split(name, split)
    if name == "mnist5k":
        return mnist5k.load(split)
    if name == "moons":
        return moons.load(split)
    if name == "sprites":
        return sprites.load(split)
    loc = Location.for_dataset(name, data_dir, download=download, mirror=mirror, progress=progress)
    return _FILE_LOADERS[name](split, loc)

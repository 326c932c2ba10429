"""The data types every loader returns: :class:`DatasetInfo`, :class:`Dataset` and :class:`DataError`.

numpy only. Nothing in ``vaezoo.data`` imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vaezoo.errors import VaezooError

SPLITS = ("train", "val", "test")


class DataError(VaezooError):
    """A known data failure (missing folder, bad checksum, truncated or malformed file).

    The message is one line that says what went wrong and what to do about it.
    """


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset: what one example looks like and where it comes from."""

    name: str
    shape: tuple[int, ...]  # per example: (C, H, W) for images, (D,) for vectors
    kind: str  # "image" | "vector"
    likelihood: str  # default decoder likelihood: "bernoulli" | "gaussian"
    classes: tuple[str, ...]  # label names, () when the dataset has no labels
    citation: str  # short source + licence text
    factors: tuple[str, ...] = ()  # ground-truth factor names (sprites), () when the dataset has none
    factor_sizes: tuple[int, ...] = ()  # how many values each factor takes

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class Dataset:
    """One split of a dataset held in memory (or memory-mapped).

    ``x`` is uint8 ``N x C x H x W`` for images and float32 ``N x D`` for vectors; ``y`` is int64
    ``N`` labels, or ``None`` for unlabelled data (CelebA). Datasets with ground-truth factors (sprites)
    also carry ``factors`` (int64 ``N x K`` class indices) and ``factor_values`` (float64 ``N x K``).
    """

    name: str
    split: str
    x: np.ndarray
    y: np.ndarray | None
    info: DatasetInfo
    factors: np.ndarray | None = None
    factor_values: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.x.shape[1:] != self.info.shape:
            raise DataError(
                f"{self.name}/{self.split}: examples have shape {self.x.shape[1:]}, expected {self.info.shape}; "
                "the data files are not in the expected format"
            )
        if self.y is not None and len(self.y) != len(self.x):
            raise DataError(f"{self.name}/{self.split}: {len(self.x)} examples but {len(self.y)} labels")
        for arr in (self.factors, self.factor_values):
            if arr is not None and arr.shape != (len(self.x), len(self.info.factors)):
                raise DataError(f"{self.name}/{self.split}: factors of shape {arr.shape} for {len(self.x)} examples "
                                f"of {len(self.info.factors)} factors")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def float_batch(self, idx) -> np.ndarray:
        """Examples ``idx`` (int, slice, index array or boolean mask) as float32.

        Images are scaled to [0, 1] (``x / 255``); vectors are returned as they are stored.
        """
        batch = self.x[idx]
        if self.info.kind == "image":
            return batch.astype(np.float32) / np.float32(255.0)
        return np.array(batch, dtype=np.float32, copy=True)

    def __repr__(self) -> str:
        labels = "no labels" if self.y is None else f"{self.info.num_classes} classes"
        return f"Dataset({self.name!r}, split={self.split!r}, n={len(self)}, shape={self.info.shape}, {labels})"


def check_split(name: str, split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"{name}: unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return split


def tail_split(n: int, n_val: int, split: str) -> slice:
    """train = all but the last ``n_val`` items, val = the last ``n_val`` items."""
    if split == "train":
        return slice(0, n - n_val)
    return slice(n - n_val, n)

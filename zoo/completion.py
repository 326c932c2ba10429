"""Half-image conditioning (torch-free): which half of an image a completion model is given.

The condition of an image-conditioned model is the pair (``kept``, ``mask``), both shaped like the data:
``mask`` is 1 on the kept half and 0 on the other, ``kept = x * mask`` (the missing half zero-filled). The
mask is passed beside the pixels so a kept black pixel is not confused with a missing one. For an odd
side, the kept half is the smaller one (13 of 27 rows). Training and inference build masks here, so both
see the same halves.
"""

from __future__ import annotations

import numpy as np

from vaezoo.errors import UsageError

KEEPS = ("top", "bottom", "left", "right")


def half_mask(shape: tuple[int, ...], keep: str) -> np.ndarray:
    """C x H x W float32 mask: 1 on the ``keep`` half of the image, 0 elsewhere."""
    if keep not in KEEPS:
        raise UsageError(f"--keep must be one of {', '.join(KEEPS)}, not {keep!r}")
    if len(shape) != 3:
        raise UsageError(f"half-image masks need C x H x W images, not shape {tuple(shape)}")
    _, h, w = shape
    mask = np.zeros(shape, dtype=np.float32)
    if keep == "top":
        mask[:, : h // 2] = 1
    elif keep == "bottom":
        mask[:, h - h // 2 :] = 1
    elif keep == "left":
        mask[:, :, : w // 2] = 1
    else:
        mask[:, :, w - w // 2 :] = 1
    return mask


def all_masks(shape: tuple[int, ...]) -> np.ndarray:
    """len(KEEPS) x C x H x W: the mask of each half, in the order of :data:`KEEPS`."""
    return np.stack([half_mask(shape, k) for k in KEEPS])

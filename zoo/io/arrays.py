"""Writing a large ``.npy`` in pieces: the header first (the total shape is known), then each batch as
it is computed, so memory stays flat in N; atomic like every output (a temp file renamed at the end)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from vaezoo.errors import VaezooError
from vaezoo.io.files import atomic_path


class _Rows:
    def __init__(self, fh, shape: tuple[int, ...], dtype: np.dtype):
        self.fh, self.shape, self.dtype, self.rows = fh, shape, dtype, 0

    def write(self, batch: np.ndarray) -> None:
        batch = np.ascontiguousarray(batch, dtype=self.dtype)
        if batch.shape[1:] != self.shape[1:] or self.rows + len(batch) > self.shape[0]:
            raise VaezooError(f"internal: a batch of shape {batch.shape} does not fit an array of {self.shape} "
                              f"({self.rows} rows written)")
        self.fh.write(batch.tobytes())
        self.rows += len(batch)


@contextmanager
def npy_writer(path: str | Path, shape: tuple[int, ...], dtype=np.float32):
    """``with npy_writer(path, (n, *item_shape)) as out: out.write(batch)`` ... for exactly n rows; the file
    appears only when all n are written (an error or a kill leaves no partial output)."""
    shape, dtype = tuple(int(s) for s in shape), np.dtype(dtype)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.lib.format.write_array_header_2_0(fh, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                                                  "shape": shape})
        rows = _Rows(fh, shape, dtype)
        yield rows
        if rows.rows != shape[0]:
            raise VaezooError(f"internal: {rows.rows} of {shape[0]} rows were written to {path}")

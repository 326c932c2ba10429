"""Reading user inputs (image files, folders, .npy) and writing outputs (PNG grids, .npy).

Inputs become float32 N x C x H x W in [0, 1] (images) or N x D (vector data such as moons).
Every known problem is a UsageError with one line that names the file.
"""

from __future__ import annotations

import errno
import io
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaezoo.errors import UsageError
from vaezoo.io.arrays import npy_writer
from vaezoo.io.files import atomic_path, check_writable, safe_text

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
ARRAY_EXTS = {".npy"}
HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def warn(msg: str) -> None:
    print(f"warning: {one_line(safe_text(msg))}", file=sys.stderr)


def one_line(msg) -> str:
    """A message on one line: newlines (from a file name, or a library's message) are escaped."""
    return str(msg).replace("\r", "\\r").replace("\n", "\\n")


def _not_there(p: Path) -> str:
    """Why ``p`` is neither a file nor a folder, in a few words."""
    if p.is_symlink() and not p.exists():
        try:
            os.stat(p)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                return f"cannot read {p}: {exc.strerror}"
        return f"input {p} is a broken symlink"
    try:
        os.stat(p)
    except FileNotFoundError:
        return f"input {p} does not exist"
    except OSError as exc:
        return f"cannot read {p}: {exc.strerror}"
    return f"input {p} is not a regular file or a folder"


def expand_inputs(paths: list[str]) -> list[Path]:
    """Files in argument order; folders expanded recursively in sorted order (symlinked folders are not
    followed, so a symlink loop cannot make the walk go round)."""
    if not paths:
        raise UsageError("no inputs given")
    files: list[Path] = []
    for raw in paths:
        if not str(raw):   # Path("") would be the current folder
            raise UsageError("input '' (an empty name) does not exist")
        p = Path(raw)
        if p.is_dir():
            try:
                found = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTS | ARRAY_EXTS and f.is_file())
            except OSError as exc:
                raise UsageError(f"cannot list folder {p}: {exc.strerror or exc}") from None
            if not found:
                raise UsageError(f"no images or .npy files found in folder {p}")
            files += found
        elif p.is_file():
            if p.suffix.lower() not in IMAGE_EXTS | ARRAY_EXTS:
                raise UsageError(f"{p} is not an image (png, jpg, ...) or .npy file")
            files.append(p)
        else:
            raise UsageError(_not_there(p))
    return files


def high_depth_to_unit(im) -> np.ndarray:
    """A 16-bit (I;16), 32-bit integer (I) or float (F) greyscale image as float32 H x W in [0, 1]:
    I;16 scaled by 1/65535, I and F by their maximum (at least 1), negative values clipped to 0.
    The same rule for every command (classify, encode, reconstruct, ...)."""
    arr = np.asarray(im, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ValueError("holds values that are not finite (NaN or inf)")
    top = 65535.0 if im.mode.startswith("I;16") else max(float(arr.max()) if arr.size else 1.0, 1.0)
    return np.clip(arr / top, 0.0, 1.0)


def read_image(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """One image file -> C x H x W float32 in [0, 1], matching ``shape``'s channels."""
    from PIL import Image

    c, h, w = shape
    try:
        with Image.open(path) as im:
            if im.size != (w, h):   # from the header, before decoding anything
                raise UsageError(f"{path} is {im.size[0]}x{im.size[1]}; this model expects {w}x{h} images")
            im.load()
            src_mode = im.mode
            want = "L" if c == 1 else "RGB"
            if src_mode in HIGH_DEPTH_MODES:
                arr = high_depth_to_unit(im)
                warn(f"{path}: scaled {src_mode} to 0-1" + ("" if c == 1 else " and converted it to RGB"))
                if c != 1:
                    arr = np.repeat(arr[:, :, None], 3, axis=2)
            else:
                if src_mode not in (want, "P", "LA" if want == "L" else "RGBA"):
                    warn(f"{path}: converted {src_mode} to {want}")
                arr = np.asarray(im.convert(want), dtype=np.float32) / 255.0
    except UsageError:
        raise
    except Exception as exc:   # Pillow raises many kinds on a damaged or foreign file
        raise UsageError(f"cannot read image {path}: {one_line(exc) or type(exc).__name__}") from None
    return arr[None] if c == 1 else arr.transpose(2, 0, 1)


@dataclass(frozen=True)
class NpyHeader:
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    offset: int          # where the data starts

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def npy_header(path: str | Path) -> NpyHeader:
    """The header of a .npy file, read without loading anything; ValueError when it is not one."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
        offset = fh.tell()
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"header has a negative dimension {shape}")
    return NpyHeader(shape, np.dtype(dtype), bool(fortran), offset)


def npy_problem(path: str | Path, h: NpyHeader) -> str | None:
    """Why the data of a .npy file with header ``h`` cannot be read (pickled objects, or fewer bytes
    than the header declares), or None."""
    if h.dtype.hasobject:
        return f"holds Python objects (dtype {h.dtype}); they are never unpickled"
    size = os.stat(path).st_size
    need = h.offset + h.nbytes
    if size < need:
        return (f"is truncated: its header says {' x '.join(map(str, h.shape)) or 'a scalar'} {h.dtype} "
                f"({need} bytes), the file has {size} bytes")
    return None


def load_npy(path: str | Path) -> np.ndarray:
    """A whole .npy file, after checking its header against its length (a header that promises more than
    the file holds is refused before anything is allocated); UsageError with one line otherwise."""
    try:
        h = npy_header(path)
        problem = npy_problem(path, h)
    except Exception as exc:
        raise UsageError(f"cannot read {path}: {one_line(exc) or type(exc).__name__}") from None
    if problem:
        raise UsageError(f"{path} {problem}")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise UsageError(f"cannot read {path}: {one_line(exc) or type(exc).__name__}") from None


def first_nonfinite_row(arr: np.ndarray) -> int | None:
    """The first row of ``arr`` holding NaN or inf, or None (integer arrays have none)."""
    if not np.issubdtype(arr.dtype, np.inexact) or arr.ndim == 0:
        return None
    bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def read_array(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A .npy of N x shape, N x prod(shape) or N x H x W (grey); uint8 0-255 or float 0-1, every value finite."""
    arr = load_npy(path)
    if np.iscomplexobj(arr):
        raise UsageError(f"{path} has dtype {arr.dtype}; complex arrays are refused (expected uint8 or float)")
    n = arr.shape[0] if arr.ndim else 0
    if arr.ndim == 0 or n == 0:
        raise UsageError(f"{path} holds no examples")
    size = math.prod(shape)
    flat = arr.ndim == 2 and arr.shape[1] == size
    grey = len(shape) == 3 and shape[0] == 1 and arr.shape[1:] == tuple(shape[1:])
    if arr.shape[1:] == tuple(shape) or flat or grey:
        arr = arr.reshape((n, *shape))
    else:
        raise UsageError(f"{path} has shape {arr.shape}; expected N x {' x '.join(map(str, shape))} (or N x {size})")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if not np.issubdtype(arr.dtype, np.number):
        raise UsageError(f"{path} has dtype {arr.dtype}; expected uint8 or float")
    bad = first_nonfinite_row(arr)
    if bad is not None:
        raise UsageError(f"{path} row {bad} is not finite (NaN or inf)")
    with np.errstate(over="ignore"):   # float64 beyond the float32 range: refused below
        arr = arr.astype(np.float32)
    if len(shape) == 3 and (arr.min() < 0 or arr.max() > 1):
        raise UsageError(f"{path}: float images must be in [0, 1] (got {arr.min():.3g}..{arr.max():.3g}); pass uint8 for 0-255")
    bad = first_nonfinite_row(arr)
    if bad is not None:
        raise UsageError(f"{path} row {bad} is beyond the float32 range")
    return arr


def load_inputs(paths: list[str], shape: tuple[int, ...]) -> tuple[np.ndarray, list[str]]:
    """All inputs stacked, with a source name per example (path, or path[index] for arrays)."""
    arrays, names = [], []
    for f in expand_inputs(paths):
        if f.suffix.lower() in ARRAY_EXTS:
            a = read_array(f, shape)
            arrays.append(a)
            names += [f"{f}[{i}]" for i in range(len(a))]
        else:
            if len(shape) != 3:
                raise UsageError(f"{f}: this model takes {shape[0]}-d vectors from a .npy file, not images")
            arrays.append(read_image(f, shape)[None])
            names.append(str(f))
    return np.concatenate(arrays, axis=0), names


# ---------------------------------------------------------------- outputs
def grid_image(images: np.ndarray, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """N x C x H x W in [0, 1] -> one H' x W' (x 3) uint8 grid, ``nrow`` images per row."""
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = np.ones((c, rows * (h + pad) + pad, nrow * (w + pad) + pad), dtype=np.float32)
    for i in range(n):
        r, k = divmod(i, nrow)
        grid[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + k * (w + pad) : pad + k * (w + pad) + w] = images[i]
    out = np.round(np.clip(grid, 0, 1) * 255).astype(np.uint8)
    return out[0] if c == 1 else out.transpose(1, 2, 0)


def scatter_image(points: np.ndarray, size: int = 256) -> np.ndarray:
    """2-d points -> a grey scatter plot (vector data such as two moons)."""
    pts = points[:, :2]
    lo, hi = pts.min(0), pts.max(0)
    span = np.maximum(hi - lo, 1e-6)
    img = np.full((size, size), 255, dtype=np.uint8)
    xy = ((pts - lo) / span * (size - 9) + 4).astype(int)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            img[size - 1 - xy[:, 1] + dy, xy[:, 0] + dx] = 0
    return img


def encode_png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


# A PNG holds everything in memory and on one picture: past these counts, write .npy (it streams).
MAX_GRID_IMAGES = 10_000
MAX_SCATTER_POINTS = 1_000_000


def check_output(path: str | Path, force: bool, count: int | None = None, images: bool = True) -> Path:
    """Refuse, before anything is computed, an output that cannot be written: another extension than
    .png / .npy, an existing file without --force, a missing folder, or a PNG of too many items."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in (".png", ".npy"):
        raise UsageError(f"unsupported output {path}: use .png or .npy")
    check_writable(path, force)
    limit = MAX_GRID_IMAGES if images else MAX_SCATTER_POINTS
    if ext == ".png" and count is not None and count > limit:
        raise UsageError(f"{count} {'images' if images else 'points'} do not fit one PNG (at most {limit}); write .npy, which streams")
    return path


def save_batches(batches, path: str | Path, count: int, force: bool = False, nrow: int | None = None) -> Path:
    """Write ``count`` outputs arriving in batches: a .npy is written as they come (memory flat in
    count), a PNG is drawn once all are there (its size is bounded by :func:`check_output`)."""
    path = Path(path)
    if path.suffix.lower() != ".npy":
        return save_output(np.concatenate(list(batches)), path, force=force, nrow=nrow)
    check_writable(path, force)
    batches = iter(batches)
    first = next(batches)
    with npy_writer(path, (count, *first.shape[1:]), np.float32) as out:
        out.write(first)
        for batch in batches:
            out.write(batch)
    return path


def save_output(data: np.ndarray, path: str | Path, force: bool = False, nrow: int | None = None) -> Path:
    """Write model outputs: ``.png`` (image grid, or scatter plot for 2-d data) or ``.npy``."""
    path = check_output(path, force, len(data), images=data.ndim == 4)
    ext = path.suffix.lower()
    if ext == ".npy":
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, data)
        return path
    if data.ndim == 4:
        png = encode_png(grid_image(data, nrow))
    elif data.ndim == 2 and data.shape[1] >= 2:
        png = encode_png(scatter_image(data))
    else:
        raise UsageError(f"cannot draw outputs of shape {data.shape} as PNG; use .npy")
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)
    return path

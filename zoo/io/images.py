"""Reading user inputs (image files, folders, .npy) and writing outputs (PNG grids, .npy).

Inputs become float32 N x C x H x W in [0, 1] (images) or N x D (vector data such as moons).
Every known problem is a UsageError with one line that names the file.
"""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path

import numpy as np

from vaezoo.errors import UsageError
from vaezoo.io.files import atomic_path, check_writable

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
ARRAY_EXTS = {".npy"}


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def expand_inputs(paths: list[str]) -> list[Path]:
    """Files in argument order; folders expanded recursively in sorted order."""
    if not paths:
        raise UsageError("no inputs given")
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTS | ARRAY_EXTS)
            if not found:
                raise UsageError(f"no images or .npy files found in folder {p}")
            files += found
        elif p.is_file():
            if p.suffix.lower() not in IMAGE_EXTS | ARRAY_EXTS:
                raise UsageError(f"{p} is not an image (png, jpg, ...) or .npy file")
            files.append(p)
        else:
            raise UsageError(f"input {p} does not exist")
    return files


def read_image(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """One image file -> C x H x W float32 in [0, 1], matching ``shape``'s channels."""
    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    try:
        with Image.open(path) as im:
            im.load()
            src_mode = im.mode
            want = "L" if c == 1 else "RGB"
            if im.size != (w, h):
                raise UsageError(f"{path} is {im.size[0]}x{im.size[1]}; this model expects {w}x{h} images")
            if src_mode not in (want, "P", "LA" if want == "L" else "RGBA"):
                warn(f"{path}: converted {src_mode} to {want}")
            arr = np.asarray(im.convert(want), dtype=np.float32) / 255.0
    except UsageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UsageError(f"cannot read image {path}: {exc}") from None
    return arr[None] if c == 1 else arr.transpose(2, 0, 1)


def read_array(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A .npy of N x shape, N x prod(shape) or N x H x W (grey); uint8 0-255 or float 0-1."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
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
    arr = arr.astype(np.float32)
    if len(shape) == 3 and (arr.min() < 0 or arr.max() > 1):
        raise UsageError(f"{path}: float images must be in [0, 1] (got {arr.min():.3g}..{arr.max():.3g}); pass uint8 for 0-255")
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


def save_output(data: np.ndarray, path: str | Path, force: bool = False, nrow: int | None = None) -> Path:
    """Write model outputs: ``.png`` (image grid, or scatter plot for 2-d data) or ``.npy``."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in (".png", ".npy"):
        raise UsageError(f"unsupported output {path}: use .png or .npy")
    check_writable(path, force)
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

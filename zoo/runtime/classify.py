"""The streaming classification engine behind `vaezoo classify` and `vaezoo evaluate` (no torch).

Inputs, in the order given; folders are walked recursively, entries sorted by name at every level:

* image files (PNG, JPEG, BMP, GIF, WebP, TIFF): one item each;
* ``.npy`` arrays of ``N x 28 x 28``, ``N x 784``, ``N x 1 x 28 x 28`` (or ``N x H x W x C``),
  memory-mapped: uint8 is read as 0-255; other real dtypes are checked on the finite values of their
  first 1,000 rows and read as 0-1 or 0-255, and the choice is printed on stderr (complex arrays and
  pickled objects are refused);
* IDX files (``*-idx3-ubyte``, ``*.idx``, optionally ``.gz``), as in the MNIST distribution.

The whole stream is counted first (file headers only) so ``--shard i/n`` can take the contiguous
items ``[floor((i-1) T / n), floor(i T / n))`` of the T items: concatenating the n shard outputs in
order gives the unsharded output. Items are then read lazily and classified in batches, so memory
stays flat and the first rows are written before the last input is read.

Every counted item gets exactly one row, in order, so the counts, the shards and the rows always
agree. An array whose header can be read and whose file holds the bytes it declares counts its N
rows; if they cannot be read as images (wrong shape or dtype, values out of range) it gives N error
rows, and a row holding NaN or inf is an error row of its own. A file whose item count is unknown
(no readable header, truncated, pickled objects, an image that cannot be decoded, a missing file, a
broken symlink or a symlink loop) is exactly one error row. Each failure is also one line on stderr
(per file, or per chunk of rows with NaN or inf: five such lines, then a count); the rest are still
classified. With
``--decode-threads N`` (N > 1) image files are decoded in a thread pool; rows, warnings and errors
still come out in input order, so the output does not depend on N. It is off by default: on a 2-core
machine it gave no speed-up for 28x28 PNGs nor for 600x600 JPEGs (benchmarks/README.md).

Image conversion for grey 28x28 models (MNIST-like): colour -> grey (alpha composited onto white),
other sizes resized to 28x28 with Lanczos after padding to a square, dark-on-light images inverted
(MNIST digits are light on dark; decided from the border pixels). Each is a warning that says what
was done. Images with an aspect ratio beyond 2:1 or a side under 8 pixels are refused (error row).
"""

from __future__ import annotations

import errno
import gzip
import math
import os
import stat
import struct
import sys
import time
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Iterator

import numpy as np

from vaezoo.errors import UsageError, VaezooError
from vaezoo.io.files import safe_text
from vaezoo.io.images import HIGH_DEPTH_MODES, high_depth_to_unit, npy_header, npy_problem, one_line
from vaezoo.io.progress import Progress
from vaezoo.runtime.pipeline import models_with, softmax

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
NPY_MAGIC = b"\x93NUMPY"
MAX_ASPECT = 2.0
MIN_SIDE = 8


def is_idx_name(name: str) -> bool:
    n = name.lower()
    if n.endswith(".gz"):
        n = n[:-3]
    return n.endswith(".idx") or "idx3-ubyte" in n or "idx4-ubyte" in n or n.endswith("-ubyte") or n.endswith(".idx3")


def kind_of(path: Path) -> str | None:
    """image / npy / idx by name; None when a folder walk should skip the file."""
    suf = path.suffix.lower()
    if suf in IMAGE_EXTS:
        return "image"
    if suf == ".npy":
        return "npy"
    if is_idx_name(path.name):
        return "idx"
    return None


def sniff(path: Path) -> str:
    """The kind of an explicitly named file, from its first bytes when the name does not say."""
    k = kind_of(path)
    if k:
        return k
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return "image"  # reading it will report the error
    if head.startswith(NPY_MAGIC):
        return "npy"
    if len(head) >= 4 and head[:2] == b"\0\0" and head[2] in IDX_TYPES:
        return "idx"
    return "image"


# ---------------------------------------------------------------- warnings
class Notes:
    """Warnings on stderr: the first few of each kind in full, then a count at the end."""

    def __init__(self, limit: int = 5, stream=None):
        self.limit, self.counts, self.stream = limit, {}, stream or sys.stderr
        self.error_counts: dict[str, int] = {}

    def warn(self, kind: str, msg: str) -> None:
        c = self.counts[kind] = self.counts.get(kind, 0) + 1
        if c <= self.limit:
            print(f"warning: {one_line(safe_text(msg))}", file=self.stream, flush=True)
        elif c == self.limit + 1:
            print(f"warning: more '{kind}' warnings follow; counting them instead", file=self.stream, flush=True)

    def error(self, msg: str, kind: str | None = None) -> None:
        """An error line; with ``kind``, only the first few of that kind, then a count at the end."""
        if kind is not None:
            c = self.error_counts[kind] = self.error_counts.get(kind, 0) + 1
            if c == self.limit + 1:
                print(f"error: more '{kind}' errors follow; counting them instead", file=self.stream, flush=True)
            if c > self.limit:
                return
        print(f"error: {one_line(safe_text(msg))}", file=self.stream, flush=True)

    def summary(self) -> None:
        for kind, c in self.counts.items():
            if c > self.limit:
                print(f"warning: {c} inputs in all: {kind}", file=self.stream, flush=True)
        for kind, c in self.error_counts.items():
            if c > self.limit:
                print(f"error: {c} in all: {kind}", file=self.stream, flush=True)


# ---------------------------------------------------------------- walking the inputs
@dataclass
class Entry:
    path: Path
    kind: str            # image | npy | idx | missing (an input that cannot be read at all)
    count: int = 1       # items: an array's rows from its header; 1 for an image or an unreadable file
    error: str | None = None
    info: dict = field(default_factory=dict)


def walk(paths: list[str], notes: Notes) -> Iterator[tuple[Path, str, str | None]]:
    """(path, kind, error) in deterministic order; folders recursive with entries sorted by name.

    ``error`` is set (with kind 'missing') for an input that cannot be read at all: a missing file, a
    broken symlink, a symlink loop, a folder that cannot be listed; each becomes one error row."""
    if not paths:
        raise UsageError("no inputs given")
    for raw in paths:
        if not str(raw):   # Path("") would be the current folder
            yield Path(), "missing", "input '' (an empty name) does not exist"
            continue
        p = Path(raw)
        try:
            st = os.stat(p)
        except OSError as exc:
            yield p, "missing", _stat_error(p, exc)
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(p, st, notes)
        elif stat.S_ISREG(st.st_mode):
            yield p, sniff(p), None
        else:
            yield p, "missing", f"input {p} is not a regular file or a folder"


def _stat_error(p: Path, exc: OSError, top: bool = True) -> str:
    name = f"input {p}" if top else str(p)
    if isinstance(exc, FileNotFoundError):
        return f"{name} is a broken symlink" if os.path.islink(p) else f"{name} does not exist"
    if exc.errno == errno.ELOOP:
        return f"{name} is a symlink loop"
    return f"cannot read {p}: {exc.strerror or exc}"


def _listing(folder: Path) -> list:
    with os.scandir(folder) as it:
        return sorted(it, key=lambda e: e.name)


def _walk_dir(root: Path, st, notes: Notes) -> Iterator[tuple[Path, str, str | None]]:
    """Depth first, without recursion (a deep tree cannot exhaust the stack); a symlink that leads back
    to a folder being walked is an error row, not a loop."""
    try:
        entries = _listing(root)
    except OSError as exc:
        yield root, "missing", f"cannot list folder {root}: {exc.strerror or exc}"
        return
    stack = [(iter(entries), {(st.st_dev, st.st_ino): root})]
    while stack:
        it, ancestors = stack[-1]
        e = next(it, None)
        if e is None:
            stack.pop()
            continue
        path = Path(e.path)
        try:
            is_dir = e.is_dir(follow_symlinks=True)
            is_file = not is_dir and e.is_file(follow_symlinks=True)
            sub = e.stat(follow_symlinks=True) if is_dir else None
        except OSError as exc:
            yield path, "missing", _stat_error(path, exc, top=False)
            continue
        if is_dir:
            key = (sub.st_dev, sub.st_ino)
            if key in ancestors:
                yield path, "missing", f"{path} is a symlink loop (it leads back to {ancestors[key]})"
                continue
            try:
                sub_entries = _listing(path)
            except OSError as exc:
                yield path, "missing", f"cannot list folder {path}: {exc.strerror or exc}"
                continue
            stack.append((iter(sub_entries), {**ancestors, key: path}))
        elif is_file:
            k = kind_of(path)
            if k:
                yield path, k, None
            elif not e.name.startswith("."):
                notes.warn("skipped files", f"{path}: skipped (not an image, .npy or IDX file)")
        elif kind_of(path):    # a broken symlink, a FIFO, a socket named like an input
            broken = e.is_symlink() and not os.path.exists(path)
            yield path, "missing", f"{path} is a broken symlink" if broken else f"{path} is not a regular file"
        elif not e.name.startswith("."):
            broken = e.is_symlink() and not os.path.exists(path)
            notes.warn("skipped files", f"{path}: skipped ({'a broken symlink' if broken else 'not a regular file'})")


def _idx_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int, bool]:
    gz = path.name.lower().endswith(".gz")
    opener = gzip.open if gz else open
    with opener(path, "rb") as fh:
        head = fh.read(4)
        if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in IDX_TYPES:
            raise ValueError("not an IDX file (bad magic number)")
        nd = head[3]
        raw = fh.read(4 * nd)
        if len(raw) < 4 * nd:
            raise ValueError("the IDX header is truncated")
        dims = struct.unpack(f">{nd}I", raw)
    return tuple(dims), np.dtype(IDX_TYPES[head[2]]), 4 + 4 * nd, gz


def _gz_length_at_least(path: Path, need: int) -> bool:
    """Whether a gzipped file holds at least ``need`` bytes once decompressed: the gzip trailer's
    length (mod 2**32) when it matches, else by decompressing (stopping at ``need`` bytes)."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() >= 18:
            fh.seek(-4, os.SEEK_END)
            if int.from_bytes(fh.read(4), "little") == need % 2**32:
                return True
    got = 0
    with gzip.open(path, "rb") as fh:
        while got < need:
            chunk = fh.read(min(1 << 20, need - got))
            if not chunk:
                return False
            got += len(chunk)
    return True


def inspect(path: Path, kind: str, error: str | None = None) -> Entry:
    """Count a file's items from its header (no data is read).

    The count is the header's N (an array's first dimension) when the header can be read and the file
    holds all the bytes it declares; then every one of the N items gets a row, and an array whose rows
    cannot be read gives N error rows. Otherwise (no header, a truncated file, pickled objects, no rows
    of images) the file is one error row, since how many items it holds is unknown."""
    if error is not None:
        return Entry(path, "missing", 1, error)
    if kind == "missing":
        return Entry(path, kind, 1, f"input {path} does not exist")
    if kind == "image":
        return Entry(path, kind)
    try:
        if kind == "npy":
            h = npy_header(path)
            shape, dtype = h.shape, h.dtype
            info = {"shape": shape, "dtype": dtype, "offset": h.offset, "fortran": h.fortran, "gz": False}
        else:
            shape, dtype, offset, gz = _idx_header(path)
            info = {"shape": shape, "dtype": dtype, "offset": offset, "gz": gz}
    except Exception as exc:  # truncated or foreign file: one error row
        return Entry(path, kind, 1, f"cannot read {path}: {one_line(exc) or type(exc).__name__}")
    if dtype.hasobject:
        return Entry(path, kind, 1, f"{path} holds Python objects (dtype {dtype}); they are never unpickled")
    if len(shape) < 2 or shape[0] == 0:
        what = "a scalar" if not shape else "labels (1-d)" if len(shape) == 1 else "no examples"
        return Entry(path, kind, 1, f"{path} holds {what}, not images (shape {shape})")
    if math.prod(shape[1:]) == 0:
        return Entry(path, kind, 1, f"{path} holds empty rows, not images (shape {shape})")
    try:
        if kind == "npy":
            problem = npy_problem(path, h)
        else:
            need = info["offset"] + math.prod(shape) * dtype.itemsize
            if info["gz"]:
                ok = _gz_length_at_least(path, need)
            else:
                ok = path.stat().st_size >= need
            problem = None if ok else f"is truncated: its header says {' x '.join(map(str, shape))} ({need} bytes)"
    except Exception as exc:
        return Entry(path, kind, 1, f"cannot read {path}: {one_line(exc) or type(exc).__name__}")
    if problem:
        return Entry(path, kind, 1, f"{path} {problem}")
    return Entry(path, kind, int(shape[0]), None, info)


# ---------------------------------------------------------------- reading
def fit_array_shape(arr_shape: tuple[int, ...], shape: tuple[int, ...]) -> str | None:
    """How rows of ``arr_shape[1:]`` map to the model's (C, H, W): 'same', 'flat', 'grey', 'hwc' or None."""
    rest = tuple(arr_shape[1:])
    c, h, w = shape
    if rest == tuple(shape):
        return "same"
    if rest == (c * h * w,):
        return "flat"
    if c == 1 and rest == (h, w):
        return "grey"
    if rest == (h, w, c):
        return "hwc"
    return None


def to_model_rows(block: np.ndarray, layout: str, shape, scale: float) -> np.ndarray:
    n = block.shape[0]
    if layout == "hwc":
        block = np.moveaxis(np.asarray(block), -1, 1)
    if scale != 1.0:
        return np.multiply(block, np.float32(scale), dtype=np.float32).reshape((n, *shape))
    return np.asarray(block, dtype=np.float32).reshape((n, *shape))


class ImageReader:
    """One image file -> C x H x W float32 in [0, 1], converted (with a warning) or refused."""

    def __init__(self, shape: tuple[int, ...], notes: Notes, mnist_like: bool):
        self.shape, self.notes, self.mnist_like = shape, notes, mnist_like

    def __call__(self, path: Path) -> np.ndarray:
        arr, done = self.read(path)
        self.warn(path, done)
        return arr

    def warn(self, path: Path, done: list[str]) -> None:
        if done:
            self.notes.warn("converted images", f"{path}: " + "; ".join(done))

    def read(self, path: Path) -> tuple[np.ndarray, list[str]]:
        """The image and what was done to it; touches no shared state (safe in a worker thread)."""
        from PIL import Image

        c, h, w = self.shape
        want = "L" if c == 1 else "RGB"
        done = []
        with Image.open(path) as im:
            im.load()
            if getattr(im, "n_frames", 1) > 1:
                done.append("used the first frame")
            mode = im.mode
            if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
                done.append("composited transparency onto white")
            if mode in HIGH_DEPTH_MODES:
                unit = high_depth_to_unit(im)    # the rule every command uses (vaezoo.io.images)
                im = Image.fromarray((unit * 255.0).astype(np.uint8))
                done.append(f"scaled {mode} to 8 bits")
            if im.mode != want:
                if im.mode not in ("P", "RGBA") or want == "L":
                    if not (im.mode == "P" and want == "RGB"):
                        done.append(f"converted {mode} to {'greyscale' if want == 'L' else 'RGB'}")
                im = im.convert(want)
            iw, ih = im.size
            if (iw, ih) != (w, h):
                if min(iw, ih) < MIN_SIDE or max(iw, ih) / min(iw, ih) > MAX_ASPECT:
                    raise ValueError(f"is {iw}x{ih}; refusing to turn it into a {w}x{h} image "
                                     f"(aspect ratio over {MAX_ASPECT:g}:1 or a side under {MIN_SIDE} px)")
                if iw != ih:
                    side = max(iw, ih)
                    arr0 = np.asarray(im)
                    border = np.concatenate([arr0[0].ravel(), arr0[-1].ravel(), arr0[:, 0].ravel(), arr0[:, -1].ravel()])
                    fill = int(np.median(border)) if want == "L" else tuple(int(v) for v in np.median(border.reshape(-1, 3), 0))
                    sq = Image.new(want, (side, side), fill)
                    sq.paste(im, ((side - iw) // 2, (side - ih) // 2))
                    im = sq
                im = im.resize((w, h), Image.LANCZOS)
                done.append(f"resized {iw}x{ih} to {w}x{h}")
            arr = np.asarray(im, dtype=np.float32) / 255.0
        if self.mnist_like:
            border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
            if border.mean() > 0.5:
                arr = 1.0 - arr
                done.append("inverted a dark-on-light image (the model expects light digits on a dark background)")
        return (arr[None] if c == 1 else arr.transpose(2, 0, 1)), done


_FLUSH = object()   # Reader._items: finish the pending images before going on


@dataclass
class Block:
    """A run of consecutive items from one source file: ``x`` rows, or ``n`` items that all failed
    with ``error`` (one error row each)."""

    source: str
    start: int | None    # index of the first row inside the file (None for an image or an unreadable file)
    x: np.ndarray | None
    error: str | None = None
    n: int = 1           # items of an error block

    def __len__(self) -> int:
        return self.n if self.x is None else len(self.x)


class Reader:
    """Blocks of items [lo, hi) of the counted stream."""

    def __init__(self, shape, notes: Notes, chunk: int = 4096, mnist_like: bool = True, threads: int = 1):
        self.shape, self.notes, self.chunk = tuple(shape), notes, chunk
        self.image = ImageReader(self.shape, notes, mnist_like)
        self.threads = max(1, int(threads))

    def blocks(self, entries: Iterator[Entry], lo: int, hi: int) -> Iterator[Block]:
        """With ``threads`` > 1, image files are decoded in a thread pool (Pillow releases the GIL while
        decoding), at most ``WINDOW`` per thread ahead; blocks, warnings and errors still come out in
        input order, from this thread. Arrays are read here, after the images before them are done."""
        if self.threads == 1:
            for item in self._items(entries, lo, hi, None):
                yield self._image_block(*item) if isinstance(item, tuple) else item
            return
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        ex = ThreadPoolExecutor(self.threads, thread_name_prefix="vaezoo-decode")
        pending: deque = deque()
        try:
            for item in self._items(entries, lo, hi, ex):
                if isinstance(item, tuple):
                    pending.append(item)
                    if len(pending) > self.WINDOW * self.threads:
                        yield self._image_block(*pending.popleft())
                    continue
                while pending:
                    yield self._image_block(*pending.popleft())
                if item is not _FLUSH:
                    yield item
            while pending:
                yield self._image_block(*pending.popleft())
        finally:
            ex.shutdown(wait=True, cancel_futures=True)

    WINDOW = 64

    def _image_block(self, path: Path, job) -> Block:
        """An image's block from ``job`` (a future of ImageReader.read, or None: read it now)."""
        try:
            arr, done = job.result() if job is not None else self.image.read(path)
            self.image.warn(path, done)
            return Block(str(path), None, arr[None])
        except Exception as exc:
            msg = str(exc) if isinstance(exc, ValueError) and str(exc).startswith("is ") else f"cannot read image: {exc}"
            msg = f"{path} {msg}" if msg.startswith("is ") else f"{path}: {msg}"
            self.notes.error(msg)
            return Block(str(path), None, None, msg)

    def _items(self, entries: Iterator[Entry], lo: int, hi: int, ex):
        """Blocks in order, with each image file as (path, future or None) in its place."""
        pos = 0
        for e in entries:
            a, b = max(lo, pos), min(hi, pos + e.count)
            pos += e.count
            if a >= b:
                if pos >= hi:
                    return
                continue
            if e.kind != "image" and ex is not None:
                yield _FLUSH   # the images before this entry first: its messages come after theirs
            if e.error:    # an unreadable file of unknown size: one error row
                self.notes.error(e.error)
                yield Block(str(e.path), None, None, e.error, n=b - a)
            elif e.kind == "image":
                yield (e.path, None if ex is None else ex.submit(self.image.read, e.path))
            else:
                yield from self._array(e, a - (pos - e.count), b - (pos - e.count))

    def _open_array(self, e: Entry):
        """The array an entry's header describes (inspect checked the file's length), read a chunk of rows
        at a time: the pages of a memory map would stay resident, so memory would grow with the file. A
        Fortran-ordered .npy (rows are not contiguous) is memory-mapped instead."""
        shape, dtype, off, gz = e.info["shape"], e.info["dtype"], e.info["offset"], e.info["gz"]
        if e.info.get("fortran"):
            return np.memmap(e.path, dtype=dtype, mode="r", offset=off, shape=shape, order="F")
        return _Rows(e.path, shape, dtype, off, gz)

    def _array(self, e: Entry, a: int, b: int) -> Iterator[Block]:
        """Items [a, b) of an array file, in chunks. An array whose rows cannot be read as images (shape,
        dtype, values) gives one error row per item; a row with NaN or inf is an error row of its own."""
        src = str(e.path)
        try:
            arr = self._open_array(e)
            layout = fit_array_shape(arr.shape, self.shape)
            if layout is None:
                c, h, w = self.shape
                raise ValueError(f"has shape {tuple(arr.shape)}; expected N x {c} x {h} x {w}, N x {h} x {w} or N x {c * h * w}")
            scale, clip = self._scale(e, arr)
        except Exception as exc:
            text = one_line(exc) or type(exc).__name__
            msg = f"{src} {text}" if text.startswith("has ") else f"cannot read {src}: {text}"
            self.notes.error(msg if b - a == 1 else f"{msg} ({b - a} error rows)")
            yield Block(src, a, None, msg, n=b - a)
            return
        inexact = np.issubdtype(arr.dtype, np.inexact)
        for s in range(a, b, self.chunk):
            t = min(b, s + self.chunk)
            try:
                block = arr[s:t]
                ok = np.isfinite(block.reshape(t - s, -1)).all(axis=1) if inexact else None
                with np.errstate(invalid="ignore", over="ignore"):   # signalling NaNs, float64 beyond float32
                    x = to_model_rows(block, layout, self.shape, scale)
            except Exception as exc:  # the data part cannot be read (a file changed since it was counted)
                msg = f"cannot read rows {s}..{t - 1} of {src}: {one_line(exc) or type(exc).__name__}"
                self.notes.error(msg)
                yield Block(src, s, None, msg, n=t - s)
                continue
            if ok is not None and not ok.all():
                x = x if x.flags.writeable else x.copy()
                x[~ok] = 0.0
            if clip:
                lo_, hi_ = float(x.min()), float(x.max())
                if lo_ < 0 or hi_ > 1:
                    x = x if x.flags.writeable else x.copy()   # a view of a read-only memory map
                    self.notes.warn("clipped values", f"{src} rows {s}..{t - 1}: values {lo_:.3g}..{hi_:.3g} clipped to [0, 1]")
                    np.clip(x, 0, 1, out=x)
            if ok is None or ok.all():
                yield Block(src, s, x)
                continue
            bad = np.flatnonzero(~ok)
            shown = ", ".join(str(s + int(j)) for j in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            self.notes.error(f"{src}: {len(bad)} of rows {s}..{t - 1} are not finite (NaN or inf): row {shown}",
                             kind="chunks with rows that are not finite")
            yield from _runs(src, s, x, ok)

    def _scale(self, e: Entry, arr) -> tuple[float, bool]:
        """1/255 for uint8 and for 0-255 data, 1 for 0-1 data; say which on stderr. Decided from the
        finite values of the first 1,000 rows (rows with NaN or inf become error rows of their own)."""
        n, dt = arr.shape[0], arr.dtype
        shape_s = " x ".join(map(str, arr.shape))
        if dt == np.uint8:
            print(f"{one_line(safe_text(str(e.path)))}: {shape_s} uint8, read as 0-255 (scaled by 1/255)", file=self.notes.stream, flush=True)
            return 1.0 / 255.0, False
        if dt == np.bool_:
            print(f"{one_line(safe_text(str(e.path)))}: {shape_s} bool, read as 0/1", file=self.notes.stream, flush=True)
            return 1.0, False
        if np.issubdtype(dt, np.complexfloating):
            raise ValueError(f"has dtype {dt}; complex arrays are refused (expected uint8, bool, int or float)")
        if not np.issubdtype(dt, np.number):
            raise ValueError(f"has dtype {dt}; expected uint8 or float")
        with np.errstate(invalid="ignore"):   # a signalling NaN in random bytes
            head = np.asarray(arr[: min(n, 1000)], dtype=np.float64)
        if np.issubdtype(dt, np.inexact):
            head = head[np.isfinite(head)]
            if head.size == 0:
                raise ValueError(f"has no finite values in its first {min(n, 1000)} rows (NaN or inf only)")
        lo, hi = float(head.min()), float(head.max())
        if lo >= 0 and hi <= 1.0:
            print(f"{one_line(safe_text(str(e.path)))}: {shape_s} {dt}, values in [0, 1]: read as 0-1", file=self.notes.stream, flush=True)
            return 1.0, True
        if lo >= 0 and hi <= 255.0:
            print(f"{one_line(safe_text(str(e.path)))}: {shape_s} {dt}, values up to {hi:.4g}: read as 0-255 (scaled by 1/255)", file=self.notes.stream, flush=True)
            return 1.0 / 255.0, True
        raise ValueError(f"has values {lo:.4g}..{hi:.4g}; expected uint8 0-255 or float 0-1 (or 0-255)")


def _runs(src: str, s: int, x: np.ndarray, ok: np.ndarray) -> Iterator[Block]:
    """Rows ``x`` (rows s, s+1, ... of ``src``) as blocks of good rows and error blocks of non-finite rows."""
    edges = np.flatnonzero(np.diff(ok.astype(np.int8))) + 1
    bounds = [0, *edges.tolist(), len(ok)]
    for u, v in zip(bounds[:-1], bounds[1:]):
        if ok[u]:
            yield Block(src, s + u, x[u:v])
        else:
            what = f"row {s + u} is" if v - u == 1 else f"rows {s + u}..{s + v - 1} are"
            yield Block(src, s + u, None, f"{src} {what} not finite (NaN or inf)", n=v - u)


class _Rows:
    """Rows of an array file (.npy, IDX, gzipped IDX) read by slice from an open file; for a gzipped
    file, slices should move forward (seeking back decompresses from the start)."""

    def __init__(self, path: Path, shape, dtype, offset: int, gz: bool = False):
        self.path, self.shape, self.dtype, self.offset = path, tuple(shape), np.dtype(dtype), offset
        self.row = math.prod(shape[1:]) * self.dtype.itemsize
        self.fh = gzip.open(path, "rb") if gz else open(path, "rb")
        self.fh.seek(offset)
        self.pos = 0

    def __getitem__(self, sl: slice) -> np.ndarray:
        start, stop = sl.start or 0, min(sl.stop if sl.stop is not None else self.shape[0], self.shape[0])
        if start != self.pos:
            self.fh.seek(self.offset + start * self.row)
        data = self.fh.read((stop - start) * self.row)
        if len(data) != (stop - start) * self.row:
            raise ValueError("file is truncated")
        self.pos = stop
        return np.frombuffer(data, dtype=self.dtype).reshape((stop - start, *self.shape[1:]))


# ---------------------------------------------------------------- batching and classifying
def parse_shard(spec: str | None) -> tuple[int, int]:
    """'i/n' (1-based, like GNU split's K/N) -> (i, n); None -> (1, 1)."""
    if not spec:
        return 1, 1
    try:
        i, n = (int(v) for v in spec.split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like i/n (e.g. 2/8), not {spec!r}") from None
    if n < 1 or not 1 <= i <= n:
        raise UsageError(f"--shard {spec}: need 1 <= i <= n (shards are numbered from 1)")
    return i, n


def shard_range(total: int, i: int, n: int) -> tuple[int, int]:
    return (i - 1) * total // n, i * total // n


def batches(blocks: Iterator[Block], size: int) -> Iterator[tuple[list[tuple[Block, int, int]], np.ndarray | None]]:
    """Group blocks into batches of at most ``size`` rows (error rows count too, so a file of a million
    error rows is written in batches as well): (pieces, x) with pieces (block, a, b) and x the
    concatenated rows of the pieces that have any (None when none has)."""
    pieces: list[tuple[Block, int, int]] = []
    xs: list[np.ndarray] = []
    rows = 0
    for blk in blocks:
        m, a = len(blk), 0
        while a < m:
            b = min(m, a + size - rows)
            pieces.append((blk, a, b))
            if blk.x is not None:
                xs.append(blk.x[a:b])
            rows += b - a
            a = b
            if rows >= size:
                yield pieces, (None if not xs else xs[0] if len(xs) == 1 else np.concatenate(xs))
                pieces, xs, rows = [], [], 0
    if pieces:
        yield pieces, (None if not xs else xs[0] if len(xs) == 1 else np.concatenate(xs))


@dataclass
class Summary:
    total: int = 0          # items in the whole stream
    shard: tuple[int, int] = (1, 1)
    items: int = 0          # items in this shard
    classified: int = 0
    failed: int = 0
    seconds: float = 0.0


def count_entries(paths: list[str]) -> int:
    """Items in the whole stream, from file headers only. A folder given as an input that holds no
    image, .npy or IDX file is refused (UsageError), as encode refuses it."""
    total = 0
    with open(os.devnull, "w") as sink:
        notes = Notes(limit=0, stream=sink)
        for p in paths:
            count = sum(inspect(*item).count for item in walk([p], notes))
            if count == 0:
                raise UsageError(f"no images, .npy or IDX files found in folder {safe_text(str(p))}")
            total += count
    return total


def run(pipe, paths: list[str], writer, *, batch_size: int = 512, shard: str | None = None,
        progress: bool = True, notes: Notes | None = None, threads: int = 1) -> Summary:
    """Classify ``paths`` through ``pipe`` (a Pipeline; its backend runs the 'classifier' part),
    writing one row per item with ``writer.write(items)``. Returns the summary.

    ``threads``: image files decoded at once (a thread pool when > 1); the output is the same for
    any value."""
    notes = notes or Notes()
    if batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    shape = tuple(pipe.shape)
    if len(shape) != 3:
        raise UsageError(f"{pipe.id} does not take images")
    if not pipe.labels:
        raise UsageError(f"{pipe.id} has no classifier ({models_with('classifier')} have one)")
    i, n = parse_shard(shard)
    t0 = time.perf_counter()
    total = count_entries(paths)          # pass 1: headers only
    lo, hi = shard_range(total, i, n)
    summ = Summary(total=total, shard=(i, n), items=hi - lo)
    writer.begin(hi - lo, len(pipe.labels))
    bar = Progress(hi - lo, desc="classify", enabled=progress, unit="items")
    mnist_like = shape[0] == 1 and pipe.config.get("output", {}).get("likelihood") == "bernoulli"
    reader = Reader(shape, notes, chunk=max(batch_size, 1024), mnist_like=mnist_like,
                    threads=threads)
    entries = (inspect(*item) for item in walk(paths, notes))   # pass 2: read lazily
    item = lo
    for pieces, x in batches(reader.blocks(entries, lo, hi), batch_size):
        logits = pipe.classify_logits(x) if x is not None else None
        rows = []
        r = 0
        for blk, a, b in pieces:
            m = b - a   # one tuple per row, built by C iterators (no per-row Python statements)
            idx = repeat(None, m) if blk.start is None else range(blk.start + a, blk.start + b)
            if blk.x is None:   # m error rows
                rows.extend(zip(range(item, item + m), repeat(blk.source, m), idx, repeat(None, m), repeat(blk.error, m)))
                summ.failed += m
            else:
                rows.extend(zip(range(item, item + m), repeat(blk.source, m), idx, range(r, r + m), repeat(None, m)))
                r += m
                summ.classified += m
            item += m
        writer.write(rows, logits)
        bar.advance(len(rows))
    bar.close()
    if item != hi:   # only when files change between the two passes; the atomic output is then dropped
        raise VaezooError(f"the inputs changed while they were classified: {hi - lo} items were counted, "
                          f"{item - lo} read; run again on inputs that are not being written")
    writer.end()
    notes.summary()
    summ.seconds = time.perf_counter() - t0
    return summ


# ---------------------------------------------------------------- writers
class RowWriter:
    """csv / jsonl rows: item, source, index, label, prob, top-k, error."""

    def __init__(self, fh, fmt: str, labels: list[str], top_k: int):
        self.fh, self.fmt, self.labels, self.k = fh, fmt, list(labels), top_k

    def begin(self, n: int, k: int) -> None:
        self.k = max(1, min(self.k, k))
        if self.fmt == "csv":
            cols = ["item", "source", "index", "label", "prob"]
            for j in range(2, self.k + 1):
                cols += [f"label_{j}", f"prob_{j}"]
            self.fh.write(",".join(cols + ["error"]) + "\n")

    def write(self, rows, logits) -> None:
        if logits is not None:
            p = softmax(logits)
            k = self.k
            top = np.argsort(-p, axis=1, kind="stable")[:, :k] if k > 1 else p.argmax(1)[:, None]
            topp = np.take_along_axis(p, top, 1)
            labs = np.asarray(self.labels, dtype=object)[top].tolist()
            if self.fmt == "csv":
                # "%.6f" of each value as a Python float: the same text as np.char.mod, ~5x faster
                flat = ["%.6f" % v for v in topp.ravel().tolist()]
                if k == 1:
                    labs = [lr[0] for lr in labs]
                    probs = flat
                else:
                    probs = [flat[j : j + k] for j in range(0, len(flat), k)]
            else:
                probs = np.round(topp.astype(np.float64), 6).tolist()
        out = []
        last_src, s = None, ""
        if self.fmt == "csv":
            empty = "," * (2 * (self.k - 1))
            last_err, e = None, ""
            for item, src, idx, r, err in rows:
                if src is not last_src:
                    last_src, s = src, _csv(safe_text(src))
                i = "" if idx is None else idx
                if err is not None:
                    if err is not last_err:
                        last_err, e = err, _csv(safe_text(err))
                    out.append(f"{item},{s},{i},,{empty},{e}\n")
                elif self.k == 1:
                    out.append(f"{item},{s},{i},{labs[r]},{probs[r]},\n")
                else:
                    lr, pr = labs[r], probs[r]
                    out.append(f"{item},{s},{i}," + ",".join(f"{lr[j]},{pr[j]}" for j in range(self.k)) + ",\n")
        else:
            import json

            for item, src, idx, r, err in rows:
                if src is not last_src:
                    last_src, s = src, safe_text(src)
                if err is not None:
                    rec = {"item": item, "source": s, "index": idx, "label": None, "prob": None, "top_k": [], "error": safe_text(err)}
                else:
                    tk = [{"label": labs[r][j], "prob": probs[r][j]} for j in range(self.k)]
                    rec = {"item": item, "source": s, "index": idx, "label": tk[0]["label"], "prob": tk[0]["prob"], "top_k": tk, "error": None}
                out.append(json.dumps(rec) + "\n")
        self.fh.write("".join(out))
        self.fh.flush()

    def end(self) -> None:
        self.fh.flush()


def _csv(s: str) -> str:
    if any(c in s for c in ',"\n\r'):
        return '"' + s.replace('"', '""') + '"'
    return s


class NpyWriter:
    """logits.npy: N x K float32, one row per item in order; failed items are NaN rows."""

    def __init__(self, fh):
        self.fh = fh

    def begin(self, n: int, k: int) -> None:
        self.k = k
        np.lib.format.write_array_header_1_0(self.fh, {"descr": "<f4", "fortran_order": False, "shape": (n, k)})

    def write(self, rows, logits) -> None:
        if logits is not None and len(logits) == len(rows):   # no failed items: row j is logits[j]
            self.fh.write(np.ascontiguousarray(logits, dtype="<f4").tobytes())
            return
        out = np.full((len(rows), self.k), np.nan, dtype="<f4")
        ok = [(j, r) for j, (_, _, _, r, err) in enumerate(rows) if err is None]
        if ok:
            js, rs = zip(*ok)
            out[list(js)] = logits[list(rs)]
        self.fh.write(out.tobytes())

    def end(self) -> None:
        self.fh.flush()

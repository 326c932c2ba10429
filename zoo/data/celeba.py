"""CelebA, aligned-and-cropped JPEGs, as 64 x 64 RGB.

Files: ``img_align_celeba/`` (the unzipped folder) or ``img_align_celeba.zip``, plus
``list_eval_partition.txt`` (lines ``000001.jpg 0``; 0/1/2 = train/val/test, the official split:
162,770 / 19,867 / 19,962 images).

Preprocessing: the common 148 x 148 centre crop of the 178 x 218 aligned images (left 15, top 35),
then a resize to 64 x 64 with Pillow's bilinear filter (antialiased when shrinking). The result for
a split is cached as ``img_align_celeba_c148_64_<split>_<key>.npy`` (uint8 ``N x 3 x 64 x 64``) next to
``list_eval_partition.txt``; ``<key>`` is a CRC of that split's file list, so a changed partition file
builds a new cache. Later loads memory-map the cache copy-on-write (writable in memory, the
file is never changed). Labels: none (``y`` is ``None``).

CelebA's official hosting is Google Drive, which cannot be downloaded from with a plain URL:
put the files in the data folder yourself, or set ``$VAEZOO_DATA_MIRROR`` to a mirror that
serves ``img_align_celeba.zip`` and ``list_eval_partition.txt``.
"""

from __future__ import annotations

import io
import os
import sys
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from vaezoo.data.base import DataError, Dataset, DatasetInfo
from vaezoo.data.sources import Location

INFO = DatasetInfo(
    name="celeba",
    shape=(3, 64, 64),
    kind="image",
    likelihood="gaussian",
    classes=(),
    citation=(
        "CelebA, Z. Liu, P. Luo, X. Wang, X. Tang, 'Deep Learning Face Attributes in the Wild', ICCV 2015, "
        "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html; non-commercial research purposes only"
    ),
)

CROP = 148
SIZE = 64
PARTITION = "list_eval_partition.txt"
FOLDER = "img_align_celeba"
ARCHIVE = "img_align_celeba.zip"
SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
BATCH = 512


def read_partition(path: Path, split: str) -> list[str]:
    """The image file names of ``split``, in the file's order."""
    code = SPLIT_CODE[split]
    names: list[str] = []
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"celeba: cannot read {path} ({e}); it should be the official {PARTITION}") from e
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataError(f"celeba: {path} line {lineno} is not '<image>.jpg 0|1|2'; is it {PARTITION}?")
        if int(parts[1]) == code:
            names.append(parts[0])
    if not names:
        raise DataError(f"celeba: {path} lists no images for split {split!r}")
    return names


def preprocess(data: bytes, label: str) -> np.ndarray:
    """JPEG bytes -> uint8 3 x 64 x 64: centre crop 148 x 148 (smaller side if less), resize 64 x 64."""
    from PIL import Image, UnidentifiedImageError

    bilinear = getattr(Image, "Resampling", Image).BILINEAR
    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB")
            w, h = im.size
            c = min(CROP, w, h)
            left, top = (w - c) // 2, (h - c) // 2
            im = im.crop((left, top, left + c, top + c)).resize((SIZE, SIZE), bilinear)
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"celeba: cannot decode {label} ({e}); the image file is corrupt") from e
    return arr.transpose(2, 0, 1)


def _image_reader(loc: Location) -> tuple[Callable[[str], bytes], Callable[[], None], str]:
    """A function name -> JPEG bytes, a closer, and a description of the source."""
    folder = loc.find([FOLDER], want_dir=True)
    if folder is not None:
        def read_file(name: str) -> bytes:
            try:
                return (folder / name).read_bytes()
            except OSError as e:
                raise DataError(f"celeba: {folder / name} is listed in {PARTITION} but cannot be read ({e.strerror})") from e
        return read_file, lambda: None, str(folder)

    archive = loc.require(ARCHIVE)
    try:
        zf = zipfile.ZipFile(archive)
        members = {Path(i.filename).name: i for i in zf.infolist() if not i.is_dir()}
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"celeba: {archive} is corrupt or truncated ({e}); delete it and load again") from e

    def read_member(name: str) -> bytes:
        info = members.get(name)
        if info is None:
            raise DataError(f"celeba: {name} is listed in {PARTITION} but missing from {archive}")
        try:
            return zf.read(info)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
            raise DataError(f"celeba: {archive} is corrupt ({name}: {e}); delete it and load again") from e

    return read_member, zf.close, str(archive)


def _build(names: list[str], loc: Location, out: np.ndarray) -> None:
    read, close, source = _image_reader(loc)
    n = len(names)
    workers = max(1, min(8, os.cpu_count() or 1))
    if loc.progress and n > BATCH:
        sys.stderr.write(f"celeba: preprocessing {n} images from {source} (once; the result is cached)\n")
    try:
        with ThreadPoolExecutor(workers) as pool:
            for start in range(0, n, BATCH):
                chunk = names[start : start + BATCH]
                blobs = [read(name) for name in chunk]  # sequential reads (zip files share one handle)
                for i, arr in enumerate(pool.map(preprocess, blobs, chunk)):
                    out[start + i] = arr
                if loc.progress and n > BATCH:
                    sys.stderr.write(f"\r  {min(start + BATCH, n)}/{n}")
                    sys.stderr.flush()
        if loc.progress and n > BATCH:
            sys.stderr.write("\n")
    finally:
        close()


def load(split: str, loc: Location) -> Dataset:
    loc.check_root()
    partition = loc.require(PARTITION)
    names = read_partition(partition, split)
    key = f"{zlib.crc32(chr(10).join(names).encode()):08x}"
    cache = partition.parent / f"img_align_celeba_c{CROP}_{SIZE}_{split}_{key}.npy"
    shape = (len(names), 3, SIZE, SIZE)
    if cache.is_file():
        try:
            x = np.load(cache, mmap_mode="c", allow_pickle=False)
            if x.shape == shape and x.dtype == np.uint8:
                return Dataset("celeba", split, x, None, INFO)
        except (OSError, ValueError):
            pass
        sys.stderr.write(f"celeba: cache {cache} is unreadable or stale; rebuilding it\n")
    tmp = cache.with_name(f"{cache.stem}.tmp-{os.getpid()}.npy")
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
    except OSError as e:
        sys.stderr.write(f"celeba: cannot write the cache in {cache.parent} ({e.strerror}); keeping it in memory\n")
        x = np.empty(shape, np.uint8)
        _build(names, loc, x)
        return Dataset("celeba", split, x, None, INFO)
    try:
        _build(names, loc, out)
        out.flush()
        del out
        os.replace(tmp, cache)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    x = np.load(cache, mmap_mode="c", allow_pickle=False)
    return Dataset("celeba", split, x, None, INFO)

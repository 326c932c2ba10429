"""Writers for small files in each real upstream format, used by tests/test_data.py.

Each writer draws random contents from ``rng``, writes the file(s) exactly as the dataset's
publishers lay them out and returns the arrays vaezoo should read back (in vaezoo's layout).
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np


def idx_bytes(arr: np.ndarray) -> bytes:
    """An IDX file (the MNIST format) for a uint8 array."""
    assert arr.dtype == np.uint8
    return struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_mnist(folder: Path, rng: np.random.Generator, n_train: int = 100, n_test: int = 20, gz: bool = True):
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n).astype(np.uint8)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            name = f"{prefix}-{kind}-ubyte"
            raw = idx_bytes(arr)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw, mtime=0))
            else:
                (folder / name).write_bytes(raw)
        out[prefix] = (x[:, None], y.astype(np.int64))
    return out


def write_svhn(folder: Path, rng: np.random.Generator, n_train: int = 60, n_test: int = 12):
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        X = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)  # H x W x C x N, as published
        y = rng.integers(1, 11, (n, 1)).astype(np.uint8)  # 1..10, 10 = digit zero
        y[0, 0] = 10
        savemat(folder / f"{split}_32x32.mat", {"X": X, "y": y})
        labels = y[:, 0].astype(np.int64) % 10
        out[split] = (X.transpose(3, 2, 0, 1).copy(), labels)
    return out


def cifar_batch(rng: np.random.Generator, n: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, n).astype(np.uint8)
    raw = b"".join(bytes([y[i]]) + x[i].tobytes() for i in range(n))  # label byte, then R, G, B planes
    return raw, x, y.astype(np.int64)


def write_cifar10(folder: Path, rng: np.random.Generator, per_batch: int = 20, n_test: int = 10, archive: bool = True):
    folder.mkdir(parents=True, exist_ok=True)
    members: dict[str, bytes] = {"batches.meta.txt": b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"}
    xs, ys = [], []
    for i in range(1, 6):
        raw, x, y = cifar_batch(rng, per_batch)
        members[f"data_batch_{i}.bin"] = raw
        xs.append(x)
        ys.append(y)
    raw, xt, yt = cifar_batch(rng, n_test)
    members["test_batch.bin"] = raw
    if archive:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            for name, data in members.items():
                info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        (folder / "cifar-10-binary.tar.gz").write_bytes(buf.getvalue())
    else:
        sub = folder / "cifar-10-batches-bin"
        sub.mkdir(exist_ok=True)
        for name, data in members.items():
            (sub / name).write_bytes(data)
    return {"train": (np.concatenate(xs), np.concatenate(ys)), "test": (xt, yt)}


CELEBA_PARTS = (0, 0, 0, 0, 0, 1, 1, 2)  # 5 train, 2 val, 1 test


def celeba_image(i: int):
    """178 x 218 like the aligned images: the 148 x 148 centre is one flat colour, the border another."""
    from PIL import Image

    centre = (40 * i % 256, 200, 90)
    im = Image.new("RGB", (178, 218), (0, 0, 255))
    im.paste(Image.new("RGB", (148, 148), centre), (15, 35))
    return im, centre


def write_celeba(folder: Path, as_zip: bool = True):
    folder.mkdir(parents=True, exist_ok=True)
    lines, centres = [], {}
    jpegs = {}
    for i, part in enumerate(CELEBA_PARTS, 1):
        name = f"{i:06d}.jpg"
        im, centre = celeba_image(i)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=95, subsampling=0)
        jpegs[name] = buf.getvalue()
        lines.append(f"{name} {part}")
        centres[name] = centre
    (folder / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    if as_zip:
        with zipfile.ZipFile(folder / "img_align_celeba.zip", "w") as zf:
            for name, data in jpegs.items():
                zf.writestr(f"img_align_celeba/{name}", data)
    else:
        sub = folder / "img_align_celeba"
        sub.mkdir(exist_ok=True)
        for name, data in jpegs.items():
            (sub / name).write_bytes(data)
    return centres

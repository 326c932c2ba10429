"""vaezoo.data: every format read from real files (written here in the publishers' layouts),
downloaded from a local HTTP server through the same mirror + checksum path users hit."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data_formats as fmt  # noqa: E402
from data_server import DataServer  # noqa: E402

from vaezoo.data import (  # noqa: E402
    DATASETS,
    SOURCES,
    DataError,
    Dataset,
    DatasetInfo,
    clear_checksums,
    load_dataset,
    register_checksums,
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No test reads the user's data folder or mirror, and registered checksums are undone."""
    monkeypatch.delenv("VAEZOO_DATA_MIRROR", raising=False)
    monkeypatch.setenv("VAEZOO_DATA", str(tmp_path / "default-root"))
    yield
    clear_checksums()


@pytest.fixture
def served(tmp_path):
    with DataServer(tmp_path / "served") as srv:
        yield srv


def publish(srv: DataServer, name: str) -> str:
    """Register the digests of the files the test wrote for ``name``; return the mirror URL."""
    register_checksums(name, {f: "sha256:" + sha256(srv.root / f) for f in SOURCES[name] if (srv.root / f).exists()})
    return srv.url("files")


# --------------------------------------------------------------------------- registry / API


def test_registry():
    assert set(DATASETS) == {"mnist", "mnist5k", "svhn", "celeba", "cifar10", "moons", "sprites", "dsprites"}
    shapes = {k: v.shape for k, v in DATASETS.items()}
    assert shapes == {
        "mnist": (1, 28, 28), "mnist5k": (1, 28, 28), "svhn": (3, 32, 32),
        "celeba": (3, 64, 64), "cifar10": (3, 32, 32), "moons": (2,), "sprites": (1, 32, 32), "dsprites": (1, 64, 64),
    }
    for info in DATASETS.values():
        assert isinstance(info, DatasetInfo)
        assert info.kind in ("image", "vector") and info.likelihood in ("bernoulli", "gaussian")
        assert info.citation
    assert DATASETS["mnist"].likelihood == "bernoulli" and DATASETS["mnist5k"].likelihood == "bernoulli"
    assert DATASETS["celeba"].classes == () and DATASETS["moons"].classes == ("0", "1")
    assert DATASETS["cifar10"].classes[0] == "airplane" and len(DATASETS["cifar10"].classes) == 10


def test_unknown_name_and_split():
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("imagenet")
    with pytest.raises(DataError, match="unknown split"):
        load_dataset("mnist5k", "validation")


def test_no_torch_import():
    code = (
        "import sys; from vaezoo.data import load_dataset; d = load_dataset('mnist5k', 'val'); "
        "d.float_batch(slice(0, 4)); import vaezoo.data.celeba, vaezoo.data.svhn, vaezoo.data.cifar10; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert not {'scipy', 'sklearn', 'PIL'} & set(sys.modules), 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- mnist5k (bundled)


def test_mnist5k_splits():
    tr, va, te = (load_dataset("mnist5k", s) for s in ("train", "val", "test"))
    assert (len(tr), len(va), len(te)) == (4500, 500, 500)
    assert tr.x.shape == (4500, 1, 28, 28) and tr.x.dtype == np.uint8 and tr.y.dtype == np.int64
    assert np.all(np.bincount(tr.y, minlength=10) == 450)
    assert np.all(np.bincount(va.y, minlength=10) == 50)
    np.testing.assert_array_equal(te.x, va.x)  # test is the same as val (documented)
    np.testing.assert_array_equal(te.y, va.y)
    assert tr.x.max() == 255 and tr.x.min() == 0
    # train and val are disjoint: no val digit appears in train
    tr_keys = {row.tobytes() for row in tr.x.reshape(len(tr), -1)}
    assert not any(row.tobytes() in tr_keys for row in va.x.reshape(len(va), -1))
    b = tr.float_batch(np.arange(8))
    assert b.dtype == np.float32 and b.shape == (8, 1, 28, 28) and 0.0 <= b.min() and b.max() <= 1.0
    np.testing.assert_allclose(b, tr.x[:8] / 255.0, rtol=1e-6)


def test_mnist5k_is_deterministic():
    a, b = load_dataset("mnist5k", "train"), load_dataset("mnist5k", "train")
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    # The same result in a fresh interpreter (no hidden state; fixed seed).
    code = "from vaezoo.data import load_dataset; import hashlib; d = load_dataset('mnist5k', 'val'); " \
           "print(hashlib.sha256(d.x.tobytes() + d.y.tobytes()).hexdigest())"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    va = load_dataset("mnist5k", "val")
    assert out == hashlib.sha256(va.x.tobytes() + va.y.tobytes()).hexdigest()


# --------------------------------------------------------------------------- moons


def test_moons():
    tr, va, te = (load_dataset("moons", s) for s in ("train", "val", "test"))
    assert tr.x.shape == (2000, 2) and va.x.shape == (500, 2) and te.x.shape == (500, 2)
    assert tr.x.dtype == np.float32 and tr.y.dtype == np.int64 and set(np.unique(tr.y)) == {0, 1}
    from sklearn.datasets import make_moons

    x0, _ = make_moons(2000, noise=0.05, random_state=0)
    np.testing.assert_allclose(tr.x, x0.astype(np.float32))  # not standardised
    assert not np.allclose(va.x, te.x[: len(va)])
    np.testing.assert_array_equal(tr.float_batch([3, 1]), tr.x[[3, 1]])


# --------------------------------------------------------------------------- mnist (IDX)


def test_mnist_download_from_mirror(served, tmp_path):
    want = fmt.write_mnist(served.root, np.random.default_rng(0))
    root = tmp_path / "data"
    mirror = publish(served, "mnist")
    tr = load_dataset("mnist", "train", data_dir=root, mirror=mirror, progress=False)
    va = load_dataset("mnist", "val", data_dir=root, mirror=mirror)
    te = load_dataset("mnist", "test", data_dir=root, mirror=mirror)
    x, y = want["train"]
    n_val = 100 // 12  # the last N // 12 (5,000 of the real 60,000)
    assert 60000 // 12 == 5000
    assert (len(tr), len(va), len(te)) == (100 - n_val, n_val, 20)
    assert tr.x.shape == (92, 1, 28, 28) and tr.x.dtype == np.uint8 and tr.y.dtype == np.int64
    np.testing.assert_array_equal(tr.x, x[:92])
    np.testing.assert_array_equal(va.x, x[92:])
    np.testing.assert_array_equal(va.y, y[92:])
    np.testing.assert_array_equal(te.x, want["t10k"][0])
    np.testing.assert_array_equal(te.y, want["t10k"][1])
    assert sorted(p.name for p in (root / "mnist").iterdir() if not p.name.startswith(".")) == sorted(SOURCES["mnist"])
    # downloaded once: the later loads used the local files
    assert len([entry for entry in served.log if entry[2] == 200]) == 4


def test_mnist_env_mirror_and_env_data_folder(served, tmp_path, monkeypatch):
    fmt.write_mnist(served.root, np.random.default_rng(1))
    publish(served, "mnist")
    root = tmp_path / "env-root"
    monkeypatch.setenv("VAEZOO_DATA", str(root))
    monkeypatch.setenv("VAEZOO_DATA_MIRROR", f"http://127.0.0.1:1/nothing-here, {served.url('files')}")
    ds = load_dataset("mnist", "test")
    assert len(ds) == 20
    assert (root / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()


def test_mnist_mirror_name_placeholder(served, tmp_path):
    fmt.write_mnist(served.root, np.random.default_rng(2))
    publish(served, "mnist")
    # {name} is replaced by the dataset name; this server ignores nothing, so a wrong expansion 404s
    ds = load_dataset("mnist", "test", data_dir=tmp_path / "d", mirror=served.base + "/{name}-not-files/")
    assert len(ds) == 20
    assert any(p.startswith("/mnist-not-files/") for p, _, _ in served.log)


def test_mnist_local_uncompressed_files_without_download(tmp_path):
    want = fmt.write_mnist(tmp_path / "mine", np.random.default_rng(3), gz=False)
    ds = load_dataset("mnist", "test", data_dir=tmp_path / "mine", download=False)  # files directly in data_dir
    np.testing.assert_array_equal(ds.x, want["t10k"][0])


def test_mnist_wrong_checksum(served, tmp_path):
    fmt.write_mnist(served.root, np.random.default_rng(4))
    register_checksums("mnist", {"t10k-images-idx3-ubyte.gz": "sha256:" + "ab" * 32})
    with pytest.raises(DataError) as err:
        load_dataset("mnist", "test", data_dir=tmp_path / "d", mirror=served.url("files"), progress=False)
    msg = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "ab" * 32 in msg
    assert sha256(served.root / "t10k-images-idx3-ubyte.gz") in msg
    assert not (tmp_path / "d" / "mnist" / "t10k-images-idx3-ubyte.gz").exists()
    assert not list((tmp_path / "d" / "mnist").glob("*.part"))


def test_mnist_builtin_checksums_reject_other_files(served, tmp_path):
    """Without registered digests the real MNIST md5s apply: a mirror serving other bytes fails."""
    fmt.write_mnist(served.root, np.random.default_rng(5))
    with pytest.raises(DataError, match="f68b3c2dcbeaaa9fbdd348bbdeb94873|9fb629c4189551a2d022fa330f9573f3"):
        load_dataset("mnist", "test", data_dir=tmp_path / "d", mirror=served.url("files"), progress=False)


def test_mnist_missing_files_without_download(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as err:
        load_dataset("mnist", "train", data_dir=tmp_path / "empty", download=False)
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz not found" in msg and "download=True" in msg
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("mnist", "train", data_dir=tmp_path / "no-such-folder", download=False)
    assert not (tmp_path / "no-such-folder").exists()


@pytest.mark.parametrize("damage", ["truncate-gz", "bad-magic", "short-payload"])
def test_mnist_corrupt_files(tmp_path, damage):
    folder = tmp_path / "mnist"
    fmt.write_mnist(folder, np.random.default_rng(6))
    f = folder / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(f.read_bytes())
    if damage == "truncate-gz":
        f.write_bytes(f.read_bytes()[:300])
    elif damage == "bad-magic":
        f.write_bytes(gzip.compress(b"\x12\x34" + raw[2:]))
    else:
        f.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        load_dataset("mnist", "test", data_dir=tmp_path, download=False)


# --------------------------------------------------------------------------- svhn (.mat)


def test_svhn_download_and_labels(served, tmp_path):
    want = fmt.write_svhn(served.root, np.random.default_rng(7))
    mirror = publish(served, "svhn")
    tr = load_dataset("svhn", "train", data_dir=tmp_path, mirror=mirror, progress=False)
    va = load_dataset("svhn", "val", data_dir=tmp_path, mirror=mirror)
    te = load_dataset("svhn", "test", data_dir=tmp_path, mirror=mirror)
    x, y = want["train"]
    assert (len(tr), len(va), len(te)) == (57, 3, 12)  # val = last N // 20
    assert tr.x.shape == (57, 3, 32, 32) and tr.x.dtype == np.uint8 and tr.y.dtype == np.int64
    np.testing.assert_array_equal(tr.x, x[:57])
    np.testing.assert_array_equal(va.x, x[57:])
    assert tr.y[0] == 0  # label 10 in the file means the digit zero
    assert tr.y.min() >= 0 and tr.y.max() <= 9
    np.testing.assert_array_equal(np.concatenate([tr.y, va.y]), y)
    np.testing.assert_array_equal(te.x, want["test"][0])


def test_svhn_corrupt_mat(tmp_path):
    folder = tmp_path / "svhn"
    fmt.write_svhn(folder, np.random.default_rng(8))
    f = folder / "test_32x32.mat"
    f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    with pytest.raises(DataError, match="test_32x32.mat"):
        load_dataset("svhn", "test", data_dir=tmp_path, download=False)
    (folder / "train_32x32.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DataError, match="train_32x32.mat"):
        load_dataset("svhn", "train", data_dir=tmp_path, download=False)


# --------------------------------------------------------------------------- cifar10 (binary)


def test_cifar10_download_archive(served, tmp_path):
    want = fmt.write_cifar10(served.root, np.random.default_rng(9))
    mirror = publish(served, "cifar10")
    tr = load_dataset("cifar10", "train", data_dir=tmp_path, mirror=mirror, progress=False)
    va = load_dataset("cifar10", "val", data_dir=tmp_path, mirror=mirror)
    te = load_dataset("cifar10", "test", data_dir=tmp_path, mirror=mirror)
    x, y = want["train"]
    assert (len(tr), len(va), len(te)) == (90, 10, 10)  # val = last N // 10
    assert tr.x.shape == (90, 3, 32, 32) and tr.x.dtype == np.uint8 and tr.y.dtype == np.int64
    np.testing.assert_array_equal(tr.x, x[:90])  # planes R, G, B, row-major
    np.testing.assert_array_equal(va.y, y[90:])
    np.testing.assert_array_equal(te.x, want["test"][0])
    np.testing.assert_array_equal(te.y, want["test"][1])


def test_cifar10_unpacked_folder(tmp_path):
    want = fmt.write_cifar10(tmp_path / "cifar10", np.random.default_rng(10), archive=False)
    te = load_dataset("cifar10", "test", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(te.x, want["test"][0])


def test_cifar10_corrupt(tmp_path):
    folder = tmp_path / "cifar10"
    fmt.write_cifar10(folder, np.random.default_rng(11), archive=False)
    bad = folder / "cifar-10-batches-bin" / "test_batch.bin"
    bad.write_bytes(bad.read_bytes()[:-5])
    with pytest.raises(DataError, match="test_batch.bin.*truncated"):
        load_dataset("cifar10", "test", data_dir=tmp_path, download=False)
    # a truncated archive
    other = tmp_path / "other"
    fmt.write_cifar10(other / "cifar10", np.random.default_rng(12))
    arc = other / "cifar10" / "cifar-10-binary.tar.gz"
    arc.write_bytes(arc.read_bytes()[:2000])
    with pytest.raises(DataError, match="cifar-10-binary.tar.gz"):
        load_dataset("cifar10", "train", data_dir=other, download=False)


# --------------------------------------------------------------------------- celeba (JPEGs)


def test_celeba_zip_from_mirror_and_cache(served, tmp_path):
    centres = fmt.write_celeba(served.root)
    mirror = publish(served, "celeba")
    tr = load_dataset("celeba", "train", data_dir=tmp_path, mirror=mirror, progress=False)
    assert tr.x.shape == (5, 3, 64, 64) and tr.x.dtype == np.uint8 and tr.y is None
    # The 148 x 148 centre crop holds only the centre colour: the blue border is cut away.
    for i, name in enumerate(sorted(centres)[:5]):
        mean = tr.x[i].reshape(3, -1).mean(axis=1)
        np.testing.assert_allclose(mean, centres[name], atol=4)
        assert tr.x[i, 2, 2:-2, 2:-2].max() < 130  # no border blue inside (JPEG blurs the outermost pixels)
    va = load_dataset("celeba", "val", data_dir=tmp_path, mirror=mirror)
    te = load_dataset("celeba", "test", data_dir=tmp_path, mirror=mirror)
    assert (len(va), len(te)) == (2, 1)
    caches = sorted(p.name for p in (tmp_path / "celeba").glob("*.npy"))
    assert len(caches) == 3 and all(n.startswith("img_align_celeba_c148_64_") for n in caches)
    # The second load reads the cache: it works without the images.
    (tmp_path / "celeba" / "img_align_celeba.zip").unlink()
    again = load_dataset("celeba", "train", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(np.asarray(again.x), tr.x)
    assert again.float_batch([0]).max() <= 1.0


def test_celeba_folder_without_download(tmp_path):
    centres = fmt.write_celeba(tmp_path / "celeba", as_zip=False)
    te = load_dataset("celeba", "test", data_dir=tmp_path, download=False)
    assert te.x.shape == (1, 3, 64, 64)
    np.testing.assert_allclose(te.x[0].reshape(3, -1).mean(axis=1), centres["000008.jpg"], atol=4)


def test_celeba_without_files_or_mirror_says_where_to_put_them(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("celeba", "train", data_dir=tmp_path)
    msg = str(err.value)
    assert "list_eval_partition.txt" in msg and "VAEZOO_DATA_MIRROR" in msg and str(tmp_path) in msg


def test_celeba_corrupt_jpeg_and_missing_image(tmp_path):
    folder = tmp_path / "celeba"
    fmt.write_celeba(folder, as_zip=False)
    (folder / "img_align_celeba" / "000006.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataError, match="000006.jpg"):
        load_dataset("celeba", "val", data_dir=tmp_path, download=False)
    (folder / "img_align_celeba" / "000008.jpg").unlink()
    with pytest.raises(DataError, match="000008.jpg"):
        load_dataset("celeba", "test", data_dir=tmp_path, download=False)
    assert not list(folder.glob("*.tmp-*"))  # no half-written cache left behind


@pytest.mark.parametrize("name", ["mnist", "svhn", "cifar10", "celeba", "mnist5k", "moons"])
def test_arrays_are_writable_and_contiguous(name, tmp_path):
    """torch.from_numpy warns on read-only arrays: every loader hands out writable ones."""
    rng = np.random.default_rng(14)
    folder = tmp_path / name
    {"mnist": lambda: fmt.write_mnist(folder, rng), "svhn": lambda: fmt.write_svhn(folder, rng),
     "cifar10": lambda: fmt.write_cifar10(folder, rng), "celeba": lambda: fmt.write_celeba(folder),
     "mnist5k": lambda: None, "moons": lambda: None}[name]()
    for split in ("train", "val", "test"):
        ds = load_dataset(name, split, data_dir=tmp_path, download=False)
        assert ds.x.flags.writeable and ds.x.flags.c_contiguous, (name, split)
        assert ds.y is None or (ds.y.dtype == np.int64 and ds.y.flags.writeable)
    if name == "celeba":  # the second load comes from the cache
        assert load_dataset(name, "train", data_dir=tmp_path, download=False).x.flags.writeable


def test_dataset_validates_shape():
    with pytest.raises(DataError):
        Dataset("mnist", "train", np.zeros((2, 3, 28, 28), np.uint8), None, DATASETS["mnist"])


def test_default_data_root_from_env(tmp_path, monkeypatch):
    fmt.write_mnist(tmp_path / "envroot" / "mnist", np.random.default_rng(13))
    monkeypatch.setenv("VAEZOO_DATA", str(tmp_path / "envroot"))
    assert len(load_dataset("mnist", "test", download=False)) == 20
    monkeypatch.delenv("VAEZOO_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(DataError, match=str(Path(tmp_path / "home" / ".cache" / "vaezoo" / "data"))):
        load_dataset("mnist", "test", download=False)
    assert os.environ.get("VAEZOO_DATA") is None

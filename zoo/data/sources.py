"""Where dataset files come from: local folders, upstream URLs, mirrors and checksums.

Lookup order for a dataset ``<name>``:

1. the ``data_dir`` argument of :func:`vaezoo.data.load_dataset`, else ``$VAEZOO_DATA``, else
   ``~/.cache/vaezoo/data`` is the *data root*;
2. files are looked for in ``<root>/<name>/`` and then directly in ``<root>/`` (so a folder that
   holds the files themselves works too);
3. missing files are downloaded (``download=True``) into ``<root>/<name>/`` from the mirrors
   (``mirror=`` argument, else ``$VAEZOO_DATA_MIRROR``), else from the upstream URLs below, and
   verified against the checksums below.

A mirror is a base URL that replaces the upstream base: the file ``train_32x32.mat`` is fetched
from ``<mirror>/train_32x32.mat``. ``{name}`` in a mirror is replaced by the dataset name
(``https://example.org/vaezoo/{name}/``). ``$VAEZOO_DATA_MIRROR`` may hold several mirrors
separated by spaces or commas; they are tried in order.

Checksums (verified on 2026-11 against the sources named next to each; md5 is what the dataset
authors and torchvision publish):

* MNIST: the four md5s in torchvision's ``torchvision/datasets/mnist.py`` (``MNIST.resources``),
  identical in several independent repositories' copies.
* SVHN: the md5s in torchvision's ``torchvision/datasets/svhn.py``.
* CIFAR-10 binary: md5 ``c32a1d4ab5d03f1284b67883e8d87530`` from the table on the authors' page
  https://www.cs.toronto.edu/~kriz/cifar.html (also used by many independent loaders).
* CelebA: md5s of ``img_align_celeba.zip`` and ``list_eval_partition.txt`` in torchvision's
  ``torchvision/datasets/celeba.py`` (``CelebA.file_list``).

Files served from a mirror that re-packs data can be given their own digests with
:func:`register_checksums`; those replace the built-in ones for that dataset and file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from vaezoo.data.base import DataError
from vaezoo.data.download import fetch

ENV_DATA = "VAEZOO_DATA"
ENV_MIRROR = "VAEZOO_DATA_MIRROR"
DEFAULT_ROOT = Path("~/.cache/vaezoo/data")


@dataclass(frozen=True)
class Resource:
    """One upstream file: its name, the URLs it is published at and its digest."""

    filename: str
    urls: tuple[str, ...]
    md5: str | None = None
    sha256: str | None = None


_MNIST_BASES = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's mirror, reliable
    "http://yann.lecun.com/exdb/mnist/",  # the original page (often refuses scripted downloads)
)


def _mnist(filename: str, md5: str) -> Resource:
    return Resource(filename, tuple(b + filename for b in _MNIST_BASES), md5=md5)


SOURCES: dict[str, dict[str, Resource]] = {
    "mnist": {
        r.filename: r
        for r in (
            _mnist("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            _mnist("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
            _mnist("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
            _mnist("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
        )
    },
    "svhn": {
        "train_32x32.mat": Resource(
            "train_32x32.mat",
            ("http://ufldl.stanford.edu/housenumbers/train_32x32.mat",),
            md5="e26dedcc434d2e4c54c9b2d4a06d8373",
        ),
        "test_32x32.mat": Resource(
            "test_32x32.mat",
            ("http://ufldl.stanford.edu/housenumbers/test_32x32.mat",),
            md5="eb5a983be6a315427106f1b164d9cef3",
        ),
    },
    "cifar10": {
        "cifar-10-binary.tar.gz": Resource(
            "cifar-10-binary.tar.gz",
            ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
            md5="c32a1d4ab5d03f1284b67883e8d87530",
        ),
    },
    # CelebA is hosted on Google Drive only (no plain URL): downloads need a mirror.
    "celeba": {
        "img_align_celeba.zip": Resource("img_align_celeba.zip", (), md5="00d2c5bc6d35e252742224ab0c1e8fcb"),
        "list_eval_partition.txt": Resource("list_eval_partition.txt", (), md5="d32c9cbf5e040fd4025c592c306e6668"),
    },
}

# What a user must do to get a dataset whose files are missing and cannot be downloaded.
HOW_TO_GET = {
    "dsprites": "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz from https://github.com/deepmind/dsprites-dataset (never downloaded)",
    "mnist": "the four IDX files from http://yann.lecun.com/exdb/mnist/",
    "svhn": "train_32x32.mat and test_32x32.mat from http://ufldl.stanford.edu/housenumbers/",
    "cifar10": "cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html",
    "celeba": (
        "img_align_celeba.zip (or the unzipped img_align_celeba/ folder) and list_eval_partition.txt "
        "from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive)"
    ),
}

_OVERRIDES: dict[tuple[str, str], tuple[str | None, str | None]] = {}


def _parse_digest(value: str) -> tuple[str | None, str | None]:
    v = value.strip().lower()
    algo, _, hexd = v.rpartition(":")
    if not re.fullmatch(r"[0-9a-f]+", hexd) or algo not in ("", "sha256", "md5"):
        raise ValueError(f"not a digest: {value!r} (use 'sha256:<hex>', 'md5:<hex>' or bare hex)")
    if algo == "sha256" or (not algo and len(hexd) == 64):
        if len(hexd) != 64:
            raise ValueError(f"a sha256 digest has 64 hex digits: {value!r}")
        return hexd, None
    if len(hexd) != 32:
        raise ValueError(f"an md5 digest has 32 hex digits: {value!r}")
    return None, hexd


def register_checksums(name: str, checksums: Mapping[str, str]) -> None:
    """Use other digests for files of dataset ``name`` (e.g. files re-packed on a private mirror).

    ``checksums`` maps a file name (as in :data:`SOURCES`) to ``"sha256:<hex>"``,
    ``"md5:<hex>"`` or bare hex (64 digits = sha256, 32 = md5). Undo with :func:`clear_checksums`.
    """
    known = SOURCES.get(name)
    if known is None:
        raise DataError(f"{name}: no downloadable files; datasets with sources: {', '.join(SOURCES)}")
    for filename, digest in checksums.items():
        if filename not in known:
            raise DataError(f"{name}: unknown file {filename!r}; files: {', '.join(known)}")
        _OVERRIDES[(name, filename)] = _parse_digest(digest)


def clear_checksums(name: str | None = None) -> None:
    """Forget the digests registered with :func:`register_checksums` (for ``name``, or all)."""
    for key in [k for k in _OVERRIDES if name is None or k[0] == name]:
        del _OVERRIDES[key]


def resource(name: str, filename: str) -> Resource:
    res = SOURCES[name][filename]
    if (name, filename) in _OVERRIDES:
        sha, md5 = _OVERRIDES[(name, filename)]
        res = replace(res, sha256=sha, md5=md5)
    return res


def parse_mirrors(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = re.split(r"[\s,]+", value) if isinstance(value, str) else list(value)
    return tuple(m for m in (i.strip() for i in items) if m)


def resolve_root(data_dir: str | Path | None) -> Path:
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    return DEFAULT_ROOT.expanduser()


@dataclass
class Location:
    """Where one dataset's files are looked for and downloaded to."""

    name: str
    root: Path
    download: bool = True
    mirrors: tuple[str, ...] = ()
    progress: bool = True

    @classmethod
    def for_dataset(
        cls,
        name: str,
        data_dir: str | Path | None = None,
        download: bool = True,
        mirror: str | Sequence[str] | None = None,
        progress: bool = True,
    ) -> Location:
        mirrors = parse_mirrors(mirror) if mirror is not None else parse_mirrors(os.environ.get(ENV_MIRROR))
        return cls(name, resolve_root(data_dir), download, mirrors, progress)

    @property
    def folder(self) -> Path:
        """Where downloads (and caches) go: ``<root>/<name>``."""
        return self.root / self.name

    @property
    def search(self) -> tuple[Path, ...]:
        return (self.folder, self.root)

    def find(self, names: Iterable[str], want_dir: bool = False) -> Path | None:
        """The first existing file (or folder) among ``search x names``."""
        names = tuple(names)
        for folder in self.search:
            for n in names:
                p = folder / n
                if (p.is_dir() if want_dir else p.is_file()):
                    return p
        return None

    def urls(self, res: Resource) -> tuple[str, ...]:
        if self.mirrors:
            out = []
            for m in self.mirrors:
                base = m.replace("{name}", self.name)
                out.append(base.rstrip("/") + "/" + res.filename)
            return tuple(out)
        return res.urls

    def missing(self, what: str) -> DataError:
        where = f"{self.folder} (or {self.root})"
        how = HOW_TO_GET.get(self.name, "")
        msg = f"{self.name}: {what} not found in {where}; put {how} there" if how else f"{self.name}: {what} not found"
        if not self.download:
            msg += ", or load with download=True"
        msg += f", or point data_dir / ${ENV_DATA} at a folder that has them"
        return DataError(msg)

    def require(self, filename: str, alternatives: Sequence[str] = ()) -> Path:
        """A local copy of ``filename`` (or one of ``alternatives``), downloading it if allowed."""
        found = self.find((filename, *alternatives))
        if found is not None:
            return found
        res = resource(self.name, filename)
        urls = self.urls(res)
        if not self.download:
            raise self.missing(filename)
        if not urls:
            raise DataError(
                f"{self.name}: {filename} not found in {self.folder} (or {self.root}) and it has no direct "
                f"download URL; put {HOW_TO_GET.get(self.name, filename)} there, or set ${ENV_MIRROR} "
                "to a mirror that serves it"
            )
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"{self.name}: cannot create data folder {self.folder}: {e.strerror}; set ${ENV_DATA}") from e
        try:
            return fetch(urls, self.folder / filename, sha256=res.sha256, md5=res.md5, progress=self.progress)
        except DataError as e:
            raise DataError(
                f"{self.name}: {e}. Check the network, set ${ENV_MIRROR} to a mirror, or put {filename} "
                f"in {self.folder} yourself"
            ) from e

    def check_root(self) -> None:
        """With ``download=False`` a data folder that does not exist is an error by itself."""
        if not self.download and not self.root.is_dir():
            raise DataError(
                f"{self.name}: data folder {self.root} does not exist; create it and put "
                f"{HOW_TO_GET.get(self.name, 'the files')} in it, set ${ENV_DATA}, or load with download=True"
            )

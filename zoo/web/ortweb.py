"""onnxruntime-web for `vaezoo export-web`: the few files of its npm package that a page needs.

The package is not in vaezoo's wheel (33 MB packed, and npm is where its maintainers publish it). It
comes from a folder the user names (``--ort-web``: an npm-installed ``node_modules/onnxruntime-web``
or its ``dist/``), or else from ``npm pack onnxruntime-web@VERSION`` run once into
``$VAEZOO_HOME/cache/onnxruntime-web/VERSION/``; the packed tarball is checked against the registry's
pinned integrity hash before anything is unpacked. The page then loads these files from the site
folder itself, never from a CDN.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from vaezoo.errors import UsageError, VaezooError

VERSION = "1.30.0"
# npm's `dist.integrity` of onnxruntime-web@1.30.0 (sha512 of the tarball), from `npm view`
INTEGRITY = "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
# The WebAssembly-only build (no WebGL/WebGPU): the UMD script defining `ort`, the Emscripten glue it
# imports at run time, the CPU kernels. The package has no LICENSE file: its package.json (MIT, the
# version) travels with them as the record.
FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
PACKAGE_JSON = "package.json"
NPM_TIMEOUT = 600   # seconds for `npm pack` (a 33 MB download)


def _dist_of(folder: Path) -> Path | None:
    """The folder holding FILES: ``folder`` itself or its ``dist/`` (an npm package folder)."""
    for cand in (folder, folder / "dist"):
        if all((cand / f).is_file() for f in FILES):
            return cand
    return None


def _version_of(dist: Path) -> str | None:
    for pkg in (dist / "package.json", dist.parent / "package.json"):
        try:
            data = json.loads(pkg.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("name") == "onnxruntime-web":
            return str(data.get("version"))
    return None


def from_folder(folder: Path) -> tuple[Path, str]:
    """(dist folder, version) of a user-given onnxruntime-web folder, or a one-line UsageError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"--ort-web {folder} is not a folder (give node_modules/onnxruntime-web or its dist/)")
    dist = _dist_of(folder)
    if dist is None:
        raise UsageError(f"--ort-web {folder} has no {', '.join(FILES)} (nor a dist/ with them): "
                         f"give an npm-installed node_modules/onnxruntime-web (npm install onnxruntime-web@{VERSION})")
    return dist, _version_of(dist) or "unknown"


def cache_dir(home: Path) -> Path:
    return Path(home) / "cache" / "onnxruntime-web" / VERSION


def from_npm(home: Path) -> tuple[Path, str]:
    """(dist folder, VERSION): the cached copy, or ``npm pack`` into the cache, checked and unpacked."""
    dest = cache_dir(home)
    if _dist_of(dest) is not None:
        return dest, VERSION
    npm = shutil.which("npm")
    if npm is None:
        raise UsageError(f"export-web needs onnxruntime-web {VERSION}: npm is not installed; install npm, or give "
                         "--ort-web node_modules/onnxruntime-web from a machine that has it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".pack.") as tmp:
        try:
            res = subprocess.run([npm, "pack", f"onnxruntime-web@{VERSION}", "--silent", "--pack-destination", tmp],
                                 capture_output=True, text=True, timeout=NPM_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise VaezooError(f"`npm pack onnxruntime-web@{VERSION}` took over {NPM_TIMEOUT} s; check the npm registry "
                              "is reachable, or give --ort-web node_modules/onnxruntime-web") from None
        tarballs = list(Path(tmp).glob("*.tgz"))
        if res.returncode != 0 or len(tarballs) != 1:
            why = (res.stderr.strip().splitlines() or ["no tarball written"])[-1][:200]
            raise VaezooError(f"`npm pack onnxruntime-web@{VERSION}` failed ({why}); check the npm registry is "
                              "reachable, or give --ort-web node_modules/onnxruntime-web")
        data = tarballs[0].read_bytes()
        got = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        if got != INTEGRITY:
            raise VaezooError(f"onnxruntime-web-{VERSION}.tgz from npm does not match its pinned integrity hash; not using it")
        staged = Path(tmp) / "dist"
        staged.mkdir()
        with tarfile.open(tarballs[0]) as tar:
            for name in (*FILES, PACKAGE_JSON):  # only the files the page needs, by exact member name
                member = tar.getmember(f"package/{'dist/' if name in FILES else ''}{name}")
                (staged / name).write_bytes(tar.extractfile(member).read())
        try:
            staged.rename(dest)   # one step: the cache folder exists complete or not at all
        except OSError:
            if _dist_of(dest) is None:  # not a concurrent export that got there first
                raise
    return dest, VERSION


def find(ort_web: Path | None, home: Path) -> tuple[Path, str]:
    return from_folder(ort_web) if ort_web is not None else from_npm(home)

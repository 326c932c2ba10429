"""The static site `vaezoo export-web` writes: the page, the model's prior_inverse and decoder graphs,
numpy's noise for the first seeds, and onnxruntime-web's files, all in one folder any static server serves.

    index.html, app.js     the page (zoo/web/template/)
    model.json             what the page needs to know: latent size, image shape, postprocessing, the files
    noise.bin              float32 eps ~ N(0, I), seeds x count x latent_dim, drawn by the pipeline itself
    onnx/<part>.onnx       the verified graphs (the bytes the ONNX backend checks against the manifest)
    ort/                   onnxruntime-web's WebAssembly build (see vaezoo.web.ortweb)

The noise is written rather than re-drawn in JavaScript: numpy's default_rng is PCG64 seeded through
SeedSequence, and standard_normal is a 256-layer ziggurat over numpy's own tables; porting all three
bit for bit is a lot of code to keep in step with numpy, while count x latent_dim floats per seed
(4 KiB for 64 samples of a 16-d latent) are cheap. Other seeds use the page's own generator.

The site is built in a temporary folder beside the target and renamed onto it, so a killed export
leaves either the old site or the new one.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import numpy as np

from vaezoo.errors import UsageError
from vaezoo.version import __version__
from vaezoo.web import ortweb

TEMPLATE = Path(__file__).resolve().parent / "template"
PAGE = ("index.html", "app.js")
PARTS = ("prior_inverse", "decoder")   # the graphs `vaezoo sample` runs
FORMAT = "vaezoo-web/1"


def check_target(out: Path, force: bool) -> Path:
    """Refuse, before anything is loaded, a target that is a file, a non-empty folder without --force,
    or one whose parent folder is missing."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {out} is a file; give a folder for the site")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"{out} exists and is not empty; pass --force to replace it")
    if not out.parent.is_dir():
        raise UsageError(f"output folder {out.parent} does not exist")
    return out


def check_model(pipe):
    """``pipe`` (an ONNX-backend pipeline), or a one-line UsageError for a model the page cannot show."""
    if not pipe.is_image:
        raise UsageError(f"export-web draws image grids; {pipe.id} models {pipe.config['input']['kind']} data")
    if not pipe.backend.has("decoder"):
        raise UsageError(f"{pipe.id} has no decoder.onnx: run `vaezoo export {pipe.id}` first")
    return pipe


def site_files(pipe, seeds: int, count: int, ort_dist: Path, ort_version: str) -> dict[str, bytes | Path]:
    """{relative path: bytes, or a file to copy} of the site for ``pipe`` (checked by :func:`check_model`)."""
    from vaezoo.store.checkpoint import read_verified

    backend = pipe.backend
    parts = [p for p in PARTS if backend.has(p)]
    graphs = read_verified(pipe.folder, [f"onnx/{p}.onnx" for p in parts], pipe.config)
    noise = np.stack([pipe.noise(count, seed) for seed in range(seeds)]).astype("<f4")
    model = {
        "format": FORMAT,
        "id": pipe.id,
        "vaezoo": __version__,
        "ort_web": ort_version,
        "latent_dim": pipe.latent_dim,
        "shape": list(pipe.shape),
        "postprocess": backend.metadata("decoder")["postprocess"],   # the exporter's word for logits -> pixels
        "conditional": pipe.conditional,
        "labels": pipe.labels,
        "graphs": {p: (f"onnx/{p}.onnx" if p in parts else None) for p in PARTS},
        "noise": {"file": "noise.bin", "dtype": "float32", "seeds": seeds, "count": count,
                  "drawn": "numpy.random.default_rng(seed).standard_normal((count, latent_dim)) for seed in range(seeds)"},
    }
    files: dict[str, bytes | Path] = {name: TEMPLATE / name for name in PAGE}
    files["model.json"] = (json.dumps(model, indent=2) + "\n").encode()
    files["noise.bin"] = noise.tobytes()
    files.update(graphs)
    files.update({f"ort/{name}": ort_dist / name for name in ortweb.FILES})
    pkg = ort_dist / ortweb.PACKAGE_JSON
    if not pkg.is_file():
        pkg = ort_dist.parent / ortweb.PACKAGE_JSON
    if pkg.is_file():
        files[f"ort/{ortweb.PACKAGE_JSON}"] = pkg   # onnxruntime-web's licence (MIT) and version
    return files


def write_site(files: dict[str, bytes | Path], out: Path, force: bool) -> int:
    """Write ``files`` as the folder ``out`` in one rename; returns the bytes written."""
    out = check_target(out, force)
    stem = f".{out.name}.{os.getpid()}.{secrets.token_hex(8)}"
    tmp, old = out.parent / f"{stem}.tmp", out.parent / f"{stem}.old"
    total = 0
    try:
        for rel, data in files.items():
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, Path):
                shutil.copyfile(data, dest)
            else:
                dest.write_bytes(data)
            total += dest.stat().st_size
        if out.exists():
            out.rename(old)   # (an empty folder, or --force)
        try:
            tmp.rename(out)
        except OSError:
            if old.exists():
                old.rename(out)   # the old site stays
            raise
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return total

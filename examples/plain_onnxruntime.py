"""Sample from a vaezoo model with nothing but numpy and onnxruntime (no vaezoo, no torch).

Everything this script needs is in the graphs' own metadata (key "vaezoo", a JSON object): the latent
size, what the decoder outputs (Bernoulli logits or a mean) and how to turn it into pixels, and the
data shape. Usage::

    python examples/plain_onnxruntime.py path/to/checkpoint/onnx -n 16 --seed 0 -o samples.png

It writes a PNG grid (images) or a .npy array (vector data such as moons), using only the standard
library's zlib for the PNG.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import onnxruntime as ort


def load(path: Path) -> tuple[ort.InferenceSession, dict]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = json.loads(sess.get_modelmeta().custom_metadata_map["vaezoo"])
    return sess, meta


def sample(onnx_dir: Path, n: int, seed: int = 0, temperature: float = 1.0) -> tuple[np.ndarray, dict]:
    """n samples: eps ~ N(0, temperature^2 I) -> prior_inverse -> decoder -> postprocess (all read from metadata)."""
    inverse, inv_meta = load(onnx_dir / "prior_inverse.onnx")
    decoder, meta = load(onnx_dir / "decoder.onnx")
    if meta["model_id"] != inv_meta["model_id"]:
        raise SystemExit(f"decoder.onnx is from {meta['model_id']} but prior_inverse.onnx from {inv_meta['model_id']}")
    if meta.get("conditional"):
        raise SystemExit("this example handles unconditional decoders only (z -> data)")
    # one code per sample, of the shape the metadata gives (N x latent; N x T x latent for DRAW's T steps)
    code = [int(s) for s in inv_meta["inputs"][0]["shape"][1:]]
    eps = (np.random.default_rng(seed).standard_normal((n, *code)) * temperature).astype(np.float32)
    (z,) = inverse.run(None, {inverse.get_inputs()[0].name: eps})
    (out,) = decoder.run(None, {decoder.get_inputs()[0].name: z})
    post = meta["postprocess"]
    if post == "sigmoid":
        out = 0.5 * (1.0 + np.tanh(0.5 * out))
    elif post == "clip01":
        out = np.clip(out, 0.0, 1.0)
    return out.astype(np.float32), meta


def png_bytes(grid: np.ndarray) -> bytes:
    """uint8 H x W (gray) or H x W x 3 (RGB) -> PNG file bytes (zlib + struct only)."""
    h, w = grid.shape[:2]
    color = 0 if grid.ndim == 2 else 2
    raw = b"".join(b"\x00" + grid[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def make_grid(images: np.ndarray, nrow: int, pad: int = 2) -> np.ndarray:
    """N x C x H x W floats in [0, 1] -> one uint8 image with ``nrow`` images per row."""
    n, c, h, w = images.shape
    rows = math.ceil(n / nrow)
    grid = np.zeros((c, rows * (h + pad) + pad, nrow * (w + pad) + pad), dtype=np.float32)
    for i, img in enumerate(images):
        r, k = divmod(i, nrow)
        grid[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = img
    grid = np.round(np.clip(grid, 0, 1) * 255).astype(np.uint8)
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx_dir", type=Path, help="folder with decoder.onnx and prior_inverse.onnx")
    ap.add_argument("-n", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("-o", "--output", type=Path, default=Path("samples.png"))
    args = ap.parse_args(argv)
    out, meta = sample(args.onnx_dir, args.n, args.seed, args.temperature)
    if args.output.suffix == ".npy" or meta["data"]["kind"] != "image":
        np.save(args.output.with_suffix(".npy"), out)
        print(f"wrote {len(out)} samples of {meta['model_id']} to {args.output.with_suffix('.npy')}")
    else:
        args.output.write_bytes(png_bytes(make_grid(out, nrow=max(1, math.ceil(math.sqrt(len(out)))))))
        print(f"wrote {len(out)} samples of {meta['model_id']} to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

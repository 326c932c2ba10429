"""The bundled starters' outputs through both backends, written to or checked against an .npz.

    python scripts/starter_outputs.py write tests/golden/starters_before_layout.npz   # (ran at dff7813)
    python scripts/starter_outputs.py check tests/golden/starters_before_layout.npz   # max abs difference

Outputs per starter and backend: sample(8, seed=0), encode (mu, logvar) and reconstruct of the first 8
mnist5k validation digits, the generation-space codes of dp models, and class probabilities of models
with a classifier. tests/test_starters.py runs ``check`` (tolerance 1e-6).
"""

from __future__ import annotations

import argparse

import numpy as np

STARTERS = ["vae-mnist5k", "dp-vae-mnist5k", "dp-factor-mnist5k", "m2-mnist5k"]


def outputs() -> dict[str, np.ndarray]:
    import vaezoo
    from vaezoo.data import load_dataset

    x = (load_dataset("mnist5k", "val").x[:8].astype(np.float32) / 255.0).reshape(8, 1, 28, 28)
    out = {"x": x}
    for mid in STARTERS:
        for backend in ("torch", "onnx"):
            p = vaezoo.load(mid, backend=backend)
            key = f"{mid}/{backend}"
            out[f"{key}/sample"] = p.sample(8, seed=0)
            out[f"{key}/mu"], out[f"{key}/logvar"] = p.encode(x)
            out[f"{key}/reconstruct"] = p.reconstruct(x)
            if p.config["recipe"]["prior"]["kind"] == "flow":
                out[f"{key}/eps"] = p.encode(x, space="generation")[0]
            if p.labels and p.backend.has("classifier"):
                out[f"{key}/classify"] = p.classify(x)
    return out


def differences(path) -> dict[str, float]:
    """{array name: max difference between now and the file, absolute for |values| <= 1 and relative
    above}; an array missing on either side is inf. Relative above 1 because float32 carries about 7
    digits: for a latent mean near 16 one ulp is 1.9e-6, and CPUs with other vector units (AVX-512 or
    not) round differently, so an absolute 1e-6 would compare the machines, not the code."""
    ref, now = np.load(path), outputs()
    keys = set(ref.files) | set(now)
    return {k: float((np.abs(now[k] - ref[k]) / np.maximum(1.0, np.abs(ref[k]))).max()) if k in ref.files and k in now
            else float("inf") for k in sorted(keys)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["write", "check"])
    ap.add_argument("path")
    args = ap.parse_args()
    if args.mode == "write":
        np.savez_compressed(args.path, **outputs())
        print(f"wrote {args.path}")
        return
    diffs = differences(args.path)
    for k, d in diffs.items():
        print(f"{k:40s} {d:.3g}")
    print(f"max difference (relative above 1): {max(diffs.values()):.3g}")


if __name__ == "__main__":
    main()

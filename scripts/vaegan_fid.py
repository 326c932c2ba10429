"""VAE-GAN against a VAE with the same decoder network, on mnist5k: FID-LeNet and a side-by-side sample grid.

    python scripts/vaegan_fid.py --steps 1000 --threads 1     # trains both into $VAEZOO_HOME/vaegan (reused when done)

The VAE is `vae-mnist5k` with vaegan-mnist5k's [model] table (the conv28 backbone instead of the MLP), written
as the recipe file vae-conv28-mnist5k.toml, so the two decoders are the same network; each keeps its own
objective and learning rate (the VAE's recipe 1e-3, the VAE-GAN's 3e-4). Both train for the same --steps,
batch 100, seed --train-seed. Every number comes from `vaezoo evaluate MODEL --metrics fid --samples N --seed S`:
FID-LeNet between N prior samples (decoder means) and the 4,500 mnist5k training digits, in the 84 features
of `lenet-mnist5k` (trained and exported into $VAEZOO_HOME first when it is not there). The grid is
`vaezoo sample MODEL -n 64 --seed S` of each, the VAE left, the VAE-GAN right.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from dpvae_table import ensure_classifier, vaezoo   # scripts/: the same CLI runner and FID classifier


def train_and_export(recipe: str, out: Path, steps: int, seed: int, threads: int) -> None:
    if (out / "onnx" / "decoder.onnx").is_file():   # finished runs are reused, killed ones resumed
        return
    again = "--resume" if (out / "train_state.safetensors").is_file() else "--force"
    vaezoo("train", recipe, "--out", str(out), "--steps", str(steps), "--seed", str(seed), "--threads", str(threads), again, "-q")
    vaezoo("export", str(out), "--check", "--force")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000, help="training steps of each model (the recipe: 3000)")
    ap.add_argument("--samples", type=int, default=5000, help="prior samples for FID-LeNet")
    ap.add_argument("--seed", type=int, default=0, help="seed of the FID samples and the grid")
    ap.add_argument("--train-seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--classifier", default="lenet-mnist5k")
    ap.add_argument("--grid", default=None, help="side-by-side PNG (default: $VAEZOO_HOME/vaegan/samples_vae_vs_vaegan.png)")
    args = ap.parse_args(argv)

    from vaezoo.io.files import atomic_path
    from vaezoo.io.images import encode_png, grid_image
    from vaezoo.recipes import resolve, to_toml
    from vaezoo.store.resolution import home

    root = home() / "vaegan"
    root.mkdir(parents=True, exist_ok=True)
    vae_recipe = root / "vae-conv28-mnist5k.toml"   # vae-mnist5k on the VAE-GAN's networks
    vae_recipe.write_text(to_toml({"family": "vae", "dataset": "mnist5k", "model": resolve("vaegan-mnist5k")["model"]}))
    ensure_classifier(args.classifier, args.threads)
    rows, grids = [], []
    for name, recipe in (("vae (conv28)", str(vae_recipe)), ("vaegan", "vaegan-mnist5k")):
        out = root / Path(recipe).name.removesuffix(".toml")
        train_and_export(recipe, out, args.steps, args.train_seed, args.threads)
        res = json.loads(vaezoo("evaluate", str(out), "--metrics", "fid", "--samples", str(args.samples), "--seed", str(args.seed),
                                "--classifier", args.classifier, "--json", capture=True))
        val = json.loads((out / "metrics.json").read_text())["validation"]
        rows.append((name, res["metrics"]["fid"]["value"], val["neg_elbo"], val["nll"]))
        npy = root / f"samples_{out.name}.npy"
        vaezoo("sample", str(out), "-n", "64", "--seed", str(args.seed), "-o", str(npy), "--force")
        grids.append(np.load(npy))
    left, right = grid_image(grids[0]), grid_image(grids[1])          # grey H x W uint8 grids
    side = np.concatenate([left, np.full((left.shape[0], 8), 255, np.uint8), right], axis=1)   # a white band between
    png = Path(args.grid) if args.grid else root / "samples_vae_vs_vaegan.png"
    with atomic_path(png) as tmp:
        tmp.write_bytes(encode_png(side))
    print(f"mnist5k, --steps {args.steps} (batch 100, train seed {args.train_seed}), FID-LeNet on --samples {args.samples} "
          f"prior samples --seed {args.seed} against the 4,500 training digits, classifier {args.classifier}; "
          f"-ELBO / NLL: 500 validation digits, K = 1000 (the recipes' eval)\n")
    print("| model (same conv28 decoder) | FID-LeNet | val -ELBO (nats) | val NLL (nats) |")
    print("|---|---|---|---|")
    for name, fid, elbo, nll in rows:
        print(f"| {name} | {fid:.1f} | {elbo:.1f} | {nll:.1f} |")
    print(f"\ngrid (VAE left, VAE-GAN right): {png}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

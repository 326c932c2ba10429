"""A GAN on a VAE against the VAE alone, same decoder network, on mnist5k: FID-LeNet and a side-by-side sample grid.

    python scripts/vaegan_fid.py --steps 1000 --threads 1     # trains both into $VAEZOO_HOME/vaegan (reused when done)
    python scripts/vaegan_fid.py --pair cvae-cgan             # CVAE+CGAN against the label CVAE, in $VAEZOO_HOME/cvae-cgan
    python scripts/vaegan_fid.py --pair draw-gan --steps 1000 --nll-samples 10   # DRAW+GAN against DRAW

``--pair vaegan`` (the default): the VAE is `vae-mnist5k` with vaegan-mnist5k's [model] table (the conv28 backbone instead of the MLP), written
as the recipe file vae-conv28-mnist5k.toml, so the two decoders are the same network; each keeps its own
objective and learning rate (the VAE's recipe 1e-3, the VAE-GAN's 3e-4). Both train for the same --steps,
batch 100, seed --train-seed. Every number comes from `vaezoo evaluate MODEL --metrics fid --samples N --seed S`:
FID-LeNet between N prior samples (decoder means) and the 4,500 mnist5k training digits, in the 84 features
of `lenet-mnist5k` (trained and exported into $VAEZOO_HOME first when it is not there). The grid is
`vaezoo sample MODEL -n 64 --seed S` of each, the VAE left, the VAE-GAN right.

``--pair cvae-cgan``: `cvae-label-mnist5k` against `cvae-cgan-mnist5k` (the same MLPs; the recipes' learning
rates), the samples cycling through the ten labels, and one more column: the share of samples that the judge
(scripts/conditional_labels.py, the bundled m2-mnist5k's q(y|x)) reads as the label asked for, 100 per class,
and their diversity (the same script's: same-class sample spread over the held-out digits', 1 = as varied).
Their -ELBO and NLL are of -log p(x|y), each validation digit with its true label.

``--pair draw-gan``: `draw-mnist5k` against `draw-gan-mnist5k` (the same LSTMs and attention; the GAN term on the
final canvas of prior samples).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from dpvae_table import ensure_classifier, vaezoo   # scripts/: the same CLI runner and FID classifier


def train_and_export(recipe: str, out: Path, steps: int, seed: int, threads: int, nll_samples: int | None = None) -> None:
    if (out / "onnx" / "decoder.onnx").is_file():   # finished runs are reused, killed ones resumed
        return
    again = "--resume" if (out / "train_state.safetensors").is_file() else "--force"
    vaezoo("train", recipe, "--out", str(out), "--steps", str(steps), "--seed", str(seed), "--threads", str(threads), again, "-q",
           *(["--nll-samples", str(nll_samples)] if nll_samples else []))
    # parity is printed (and kept in the graphs' metadata), not enforced: DRAW trained with a GAN draws logits in the
    # thousands, where float32 sums over its 16 steps differ from torch by a relative 2e-4 (benchmarks/README.md)
    vaezoo("export", str(out), "--force")


# --pair: (name of the run folder, (label, recipe) of the model without the GAN, then with it)
PAIRS = {"vaegan": ("vaegan", ("vae (conv28)", None), ("vaegan", "vaegan-mnist5k")),
         "cvae-cgan": ("cvae-cgan", ("cvae-label", "cvae-label-mnist5k"), ("cvae-cgan", "cvae-cgan-mnist5k")),
         "draw-gan": ("draw-gan", ("draw", "draw-mnist5k"), ("draw-gan", "draw-gan-mnist5k"))}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pair", choices=sorted(PAIRS), default="vaegan")
    ap.add_argument("--steps", type=int, default=3000, help="training steps of each model (the recipe: 3000)")
    ap.add_argument("--samples", type=int, default=5000, help="prior samples for FID-LeNet")
    ap.add_argument("--seed", type=int, default=0, help="seed of the FID samples and the grid")
    ap.add_argument("--train-seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--classifier", default="lenet-mnist5k")
    ap.add_argument("--nll-samples", type=int, default=None,
                    help="K of training's NLL (default: the recipe's 1000; DRAW's takes 16 min there, 10 gives an upper bound)")
    ap.add_argument("--grid", default=None, help="side-by-side PNG (default: $VAEZOO_HOME/<pair>/samples_<without>_vs_<with>.png)")
    args = ap.parse_args(argv)

    from vaezoo.io.files import atomic_path
    from vaezoo.io.images import encode_png, grid_image
    from vaezoo.recipes import resolve, to_toml
    from vaezoo.store.resolution import home

    folder, without, with_gan = PAIRS[args.pair]
    root = home() / folder
    root.mkdir(parents=True, exist_ok=True)
    if without[1] is None:   # vae-mnist5k on the VAE-GAN's networks
        without = (without[0], str(root / "vae-conv28-mnist5k.toml"))
        Path(without[1]).write_text(to_toml({"family": "vae", "dataset": "mnist5k", "model": resolve("vaegan-mnist5k")["model"]}))
    ensure_classifier(args.classifier, args.threads)
    rows, grids = [], []
    for name, recipe in (without, with_gan):
        out = root / Path(recipe).name.removesuffix(".toml")
        train_and_export(recipe, out, args.steps, args.train_seed, args.threads, args.nll_samples)
        res = json.loads(vaezoo("evaluate", str(out), "--metrics", "fid", "--samples", str(args.samples), "--seed", str(args.seed),
                                "--classifier", args.classifier, "--json", capture=True))
        val = json.loads((out / "metrics.json").read_text())["validation"]
        rows.append((name, res["metrics"]["fid"]["value"], val["neg_elbo"], val["nll"], _label_rate(out, args.seed)))
        npy = root / f"samples_{out.name}.npy"
        vaezoo("sample", str(out), "-n", "64", "--seed", str(args.seed), "-o", str(npy), "--force")
        grids.append(np.load(npy))
    left, right = grid_image(grids[0]), grid_image(grids[1])          # grey H x W uint8 grids
    side = np.concatenate([left, np.full((left.shape[0], 8), 255, np.uint8), right], axis=1)   # a white band between
    png = Path(args.grid) if args.grid else root / ("samples_vae_vs_vaegan.png" if args.pair == "vaegan" else
                                                    f"samples_{without[0]}_vs_{with_gan[0]}.png")
    with atomic_path(png) as tmp:
        tmp.write_bytes(encode_png(side))
    print(f"mnist5k, --steps {args.steps} (batch 100, train seed {args.train_seed}), FID-LeNet on --samples {args.samples} "
          f"prior samples --seed {args.seed} against the 4,500 training digits, classifier {args.classifier}; "
          f"-ELBO / NLL: 500 validation digits, K = {args.nll_samples or 1000} (the recipes' eval)\n")
    conditional = rows[0][4] is not None
    print(f"| model (same decoder network) | FID-LeNet | val -ELBO (nats) | val NLL (nats) |"
          f"{' right digit (judge) | diversity |' if conditional else ''}")
    print(f"|---|---|---|---|{'---|---|' if conditional else ''}")
    for name, fid, elbo, nll, judged in rows:
        print(f"| {name} | {fid:.1f} | {elbo:.1f} | {nll:.1f} |"
              + (f" {100 * judged['overall']:.1f} % | {judged['diversity']:.3f} |" if conditional else ""))
    print(f"\ngrid ({without[0]} left, {with_gan[0]} right): {png}")


def _label_rate(folder: Path, seed: int) -> dict | None:
    """scripts/conditional_labels.py's share of right digits and diversity, for a label-conditional model
    (None for the others)."""
    from conditional_labels import held_out_digits, label_rates

    from vaezoo import load

    model = load(str(folder))
    if not model.conditional:
        return None
    return label_rates(model, load("m2-mnist5k"), 100, seed, held_out_digits(model))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

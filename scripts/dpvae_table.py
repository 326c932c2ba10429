"""The dpVAE paper's MNIST table (FID / FID-LP / sKL, with and without the decoupled prior), measured on mnist5k.

    python scripts/dpvae_table.py                      # the bundled starters: vae, dp-vae, dp-factor (-mnist5k)
    python scripts/dpvae_table.py --train              # trains the six pairs on mnist5k (recipe lengths) into $VAEZOO_HOME/dpvae
    python scripts/dpvae_table.py --train --models info,dp-info   # some of them (finished runs are reused, killed ones resumed)

Every number comes from ``vaezoo evaluate MODEL --metrics fid,fid-lp,skl --samples N --seed S`` (see
vaezoo.evaluation.suite for the protocol): FID-LeNet between N prior samples and the 4,500 mnist5k training
digits, FID-LP on the N lowest-aggregate-posterior of 10 N prior draws, sKL by the 1-NN estimator between
N prior and N aggregate-posterior draws (the 500 validation digits, N / 500 draws each) in the space the
prior lives in. The FID classifier is ``lenet-mnist5k`` (trained and exported into $VAEZOO_HOME first when
it is not there).

Ours, not the paper's: mnist5k (4,500 training digits, not 60,000), the recipes' MLP nets with latent 16
and a Bernoulli likelihood (the authors: the beta-VAE conv net, latent 2, MSE, 100k iterations,
augmentation), our LeNet's features (not their FID code, which wrote one batch only), sKL in 16
dimensions. So only the orderings (with vs without the decoupled prior) compare with the paper.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

PAPER = {  # REFERENCE.md, the dpVAE paper's MNIST numbers: FID / FID-LP / sKL
    "vae": (137.4, 165.0, 1.26), "dp-vae": (129.0, 153.1, 0.88),
    "factor": (130.5, 191.2, 1.04), "dp-factor": (120.8, 121.3, 0.85),
    "info": (128.7, 133.2, 2.89), "dp-info": (110.1, 110.5, 1.70),
}
BUNDLED = ["vae", "dp-vae", "dp-factor"]


def vaezoo(*args: str, capture: bool = False) -> str:
    cmd = [sys.executable, "-c", "from vaezoo.cli import main; main()", *args]
    print("+ vaezoo " + " ".join(args), file=sys.stderr, flush=True)
    res = subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE if capture else None)
    return res.stdout if capture else ""


def ensure_classifier(name: str, threads: int) -> None:
    from vaezoo.store.resolution import local_dir

    if Path(name).is_dir():   # a checkpoint folder given as --classifier: used as it is
        return
    folder = local_dir(name)
    if not (folder / "onnx" / "features.onnx").is_file():
        if not (folder / "model.safetensors").is_file():
            vaezoo("train", name, "--threads", str(threads), "-q")
        vaezoo("export", name, "--check")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", action="store_true", help="train every pair into $VAEZOO_HOME/dpvae (else: the bundled starters)")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--classifier", default="lenet-mnist5k")
    ap.add_argument("--models", default=None, help="comma-separated families (default: all six with --train, else the bundled three)")
    args = ap.parse_args(argv)

    from vaezoo.store.resolution import home

    ensure_classifier(args.classifier, args.threads)
    rows = []
    fams = args.models.split(",") if args.models else list(PAPER if args.train else BUNDLED)
    for fam in fams:
        model = f"{fam}-mnist5k"
        if args.train:
            out = home() / "dpvae" / model
            if not (out / "onnx" / "decoder.onnx").is_file():   # finished runs are reused, killed ones resumed
                again = "--resume" if (out / "train_state.safetensors").is_file() else "--force"
                vaezoo("train", model, "--out", str(out), "--threads", str(args.threads), again, "-q",
                       *(["--steps", str(args.steps)] if args.steps else []))
                vaezoo("export", str(out), "--check", "--force")
            model = str(out)
        res = json.loads(vaezoo("evaluate", model, "--metrics", "fid,fid-lp,skl", "--samples", str(args.samples),
                                "--seed", str(args.seed), "--classifier", args.classifier, "--json", capture=True))
        m = res["metrics"]
        rows.append((fam, m["fid"]["value"], m["fid-lp"]["value"], m["skl"]["value"], PAPER[fam]))
    print(f"mnist5k, {'trained here' if args.train else 'bundled starters'}, --samples {args.samples} --seed {args.seed}, "
          f"classifier {args.classifier}\n")
    print("| model | FID-LeNet | FID-LP | sKL | paper (MNIST) FID / FID-LP / sKL |")
    print("|---|---|---|---|---|")
    for fam, fid, fid_lp, skl, paper in rows:
        print(f"| {fam} | {fid:.1f} | {fid_lp:.1f} | {skl:.2f} | {paper[0]} / {paper[1]} / {paper[2]} |")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

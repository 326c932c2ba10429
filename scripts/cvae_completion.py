"""How often the zoo's digit classifier reads CVAE completions of held-out digits as the right digit,
against the kept half alone (zero-filled) as a baseline (issue #13).

Protocol: the CVAE is ``cvae-mnist5k`` trained by its recipe (the trainer, as `vaezoo train` runs it; only
``train.seed`` changes per seed). The digits are mnist5k's 500 validation digits, seen by neither the CVAE
nor the classifier. For each half in ``--keep``, each digit keeps that half; the CVAE draws ``--per-input``
completions (noise from numpy, seed 0; the kept half pasted back), and the classifier (the bundled
``m2-mnist5k``'s q(y|x), 3.8 % error on these digits whole) labels each completion, the zero-filled kept
half, and the whole digit. Reported per half: the share labelled as the true digit.

    python scripts/cvae_completion.py                          # seed 0, the recipe's 3,000 steps
    python scripts/cvae_completion.py --seeds 0,1,2 --per-input 4

Runs are kept in --out (default ``$VAEZOO_HOME/cvae_completion``) and reused when finished.
Measured: benchmarks/README.md, "CVAE image completion".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def train_run(seed: int, out: Path, steps: int | None, nll_samples: int | None) -> Path:
    from vaezoo.recipes import resolve
    from vaezoo.train.trainer import train_once

    folder = out / (f"cvae-mnist5k-seed{seed}" + ("" if steps is None else f"-steps{steps}"))
    over = {"train": {"seed": seed, **({"steps": steps} if steps else {})}}
    if nll_samples:
        over["eval"] = {"nll_samples": nll_samples}
    train_once(resolve("cvae-mnist5k", over), folder, what=f"cvae-mnist5k seed {seed}", device="cpu")
    return folder


def rates(cvae, classifier, x: np.ndarray, y: np.ndarray, keep: str, per_input: int) -> dict:
    kept, done = cvae.complete(x, keep, per_input, seed=0)
    right = lambda imgs, truth: float((classifier.classify_logits(imgs).argmax(1) == truth).mean())  # noqa: E731
    return {"completed": right(done.reshape(-1, *x.shape[1:]), np.repeat(y, per_input)),
            "kept_half": right(kept, y)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0", help="comma-separated train.seed values")
    ap.add_argument("--keep", default="top,bottom,left,right", help="the halves to keep, comma-separated")
    ap.add_argument("--per-input", type=int, default=4, help="completions per digit")
    ap.add_argument("--steps", type=int, default=None, help="override train.steps (default: the recipe's)")
    ap.add_argument("--nll-samples", type=int, default=None, help="override eval.nll_samples (quick runs)")
    ap.add_argument("--classifier", default="m2-mnist5k", help="the model whose q(y|x) reads the digits")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch

    from vaezoo.data import load_dataset
    from vaezoo.runtime.pipeline import load_pipeline
    from vaezoo.store.resolution import home

    torch.set_num_threads(args.threads)
    out = args.out or home() / "cvae_completion"
    val = load_dataset("mnist5k", "val")
    x, y = val.float_batch(slice(None)), np.asarray(val.y)
    classifier = load_pipeline(args.classifier, "auto")
    whole = float((classifier.classify_logits(x).argmax(1) == y).mean())
    keeps = args.keep.split(",")
    results = {"protocol": {"digits": len(x), "split": "mnist5k val", "per_input": args.per_input, "noise_seed": 0,
                            "classifier": args.classifier, "whole_digit": whole}, "runs": {}}
    for seed in (int(s) for s in args.seeds.split(",")):
        cvae = load_pipeline(str(train_run(seed, out, args.steps, args.nll_samples)), "torch")
        results["runs"][seed] = {k: rates(cvae, classifier, x, y, k, args.per_input) for k in keeps}
    out.mkdir(parents=True, exist_ok=True)
    (out / "cvae_completion.json").write_text(json.dumps(results, indent=2))

    seeds = list(results["runs"])
    print(f"classified as the true digit by {args.classifier} ({len(x)} held-out mnist5k digits; whole digits: "
          f"{100 * whole:.1f} %; {args.per_input} completions per digit; train seeds {', '.join(map(str, seeds))})\n")
    print("| kept half | CVAE completions | kept half alone (zero-filled) |")
    print("|---|---:|---:|")
    for k in keeps:
        c = [results["runs"][s][k]["completed"] for s in seeds]
        b = [results["runs"][s][k]["kept_half"] for s in seeds]
        spread = lambda v: f" ± {100 * float(np.std(v)):.1f}" if len(v) > 1 else ""  # noqa: E731
        print(f"| {k} | {100 * float(np.mean(c)):.1f} %{spread(c)} | {100 * float(np.mean(b)):.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

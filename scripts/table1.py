"""Reproduce the structure of Table 1 of Kingma et al. (2014) on the data available offline.

Data: ``mnist5k``: its 4,500 training digits are the unlabelled set, of which N (100, 600, 1000,
3000) are labelled, balanced per class and fixed by the seed; its 500 validation digits are the
held-out test part (never seen in training). Models: M2 and M1+M2 trained with the recipes
``m2-<N>-mnist5k`` and ``m1m2-<N>-mnist5k`` (the trainer, as `vaezoo train` runs it). Reported:
test error (argmax q(y|x)) as mean +- std over seeds, printed beside the paper's numbers (which
used 50,000 MNIST digits, ten times more unlabelled data).

    python scripts/table1.py                        # full: 3 seeds, recipe lengths
    python scripts/table1.py --seeds 0 --steps 1500 # quicker
    python scripts/table1.py --dataset mnist        # the real protocol, when MNIST is available

Runs are kept in --out (default ``$VAEZOO_HOME/table1``); finished runs are reused, so an
interrupted table continues where it stopped. Results also go to ``<out>/table1.json``.
Measured tables (what ran, beside the paper's numbers): benchmarks/README.md, section "Table 1".
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

PAPER = {  # Table 1, test error %, mean (std)
    "m2": {100: (11.97, 1.71), 600: (4.94, 0.13), 1000: (3.60, 0.56), 3000: (3.92, 0.63)},
    "m1m2": {100: (3.33, 0.14), 600: (2.59, 0.05), 1000: (2.40, 0.02), 3000: (2.18, 0.04)},
}
NAMES = {"m2": "M2", "m1m2": "M1+M2", "m2-cgan": "M2+CGAN"}
# The VAE meets GAN poster's semi-supervised VAE (its SSL with GANs: "currently similar to SSL VAE", no numbers):
# test error %, 55,000 MNIST training digits, convolutional encoder as the classifier.
POSTER = {1000: 4.8, 600: 6.2}


# The paper's networks and data: MLP q(y|x) with 500 hidden units for M2, no augmentation for either (the
# mnist5k recipes use a conv q(y|x) for M2 and 2-pixel shifts for both; see train/recipes/base.toml).
PAPER_NETS = {"m2": {"model": {"classifier_backbone": "mlp", "classifier_hidden": [500], "classifier_dropout": 0.0},
                     "objective": {"shift": 0}},
              "m1m2": {"objective": {"shift": 0}}}


def run_one(family: str, n: int, dataset: str, seed: int, steps: int | None, out: Path, nll: int,
            paper_nets: bool = False, weighting: str | None = None) -> dict:
    from vaezoo.recipes import resolve

    from vaezoo.train.trainer import train_once

    model_id = f"{family}-{n}-{dataset}"
    folder = out / (f"{model_id}-seed{seed}" + ("" if steps is None else f"-steps{steps}") + ("-paper-nets" if paper_nets else "")
                  + (f"-{weighting}" if weighting else ""))
    over = {"train": {"seed": seed, **({"steps": steps} if steps else {})}, "eval": {"nll_samples": nll}}
    if paper_nets:
        over.update(PAPER_NETS[family])
    if weighting:   # "sum": the paper's J^alpha / N; the recipes' "batch" is ours
        over["objective"] = {**over.get("objective", {}), "weighting": weighting}
    m = train_once(resolve(model_id, over), folder, what=f"{model_id} seed {seed}")
    return {"id": model_id, "seed": seed, "error": 100 * m["validation"]["error_rate"],
            "cross_entropy": m["validation"]["cross_entropy"], "examples": m["validation"]["examples"],
            "labelled": m["labels"]["labelled"], "seconds": m["train"]["seconds"], "steps": m["train"]["steps"]}


def fmt(vals: list[float]) -> str:
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.2f}"
    return f"{statistics.mean(vals):.2f} (± {statistics.stdev(vals):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="m2,m1m2")
    ap.add_argument("--labels", default="100,600,1000,3000")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=None, help="override train.steps (default: the recipe's)")
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--nll-samples", type=int, default=0, help="importance samples for the NLL in metrics.json (0: skip)")
    ap.add_argument("--paper-nets", action="store_true", help="the paper's networks: MLP q(y|x) for M2, no shifts for either model")
    ap.add_argument("--weighting", choices=["batch", "sum"], default=None,
                    help="override objective.weighting: sum = the paper's J^alpha/N, batch = the recipes' per-batch means (ours)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default; 1 helps on a busy machine)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from vaezoo.store.resolution import home

    out = args.out or home() / "table1"
    out.mkdir(parents=True, exist_ok=True)
    fams = args.models.split(",")
    budgets = [int(v) for v in args.labels.split(",")]
    seeds = [int(v) for v in args.seeds.split(",")]
    results = []
    for n in budgets:
        for fam in fams:
            for s in seeds:
                results.append(run_one(fam, n, args.dataset, s, args.steps, out, args.nll_samples, args.paper_nets, args.weighting))
                (out / "table1.json").write_text(json.dumps(results, indent=1))
    held = results[0]["examples"] if results else 0
    print(f"\nTable 1 (structure of Kingma et al. 2014): test error %, {args.dataset}, "
          f"{held} held-out digits, seeds {seeds}" + (f", {args.steps} steps" if args.steps else "")
          + (", the paper's nets (MLP q(y|x) for M2, no shifts)" if args.paper_nets else "")
          + f", weighting {args.weighting or 'as in the recipes (batch: ours)'}")
    head = f"{'N':>6} | " + " | ".join(f"{NAMES[f] + ' (ours)':>22} | {NAMES[f] + ' (paper)':>16}" for f in fams)
    print(head)
    print("-" * len(head))
    for n in budgets:
        cells = []
        for f in fams:
            errs = [r["error"] for r in results if r["id"] == f"{f}-{n}-{args.dataset}"]
            p = PAPER.get(f, {}).get(n)
            cells.append(f"{fmt(errs):>22} | {(f'{p[0]:.2f} (± {p[1]:.2f})' if p else '-'):>16}")
        print(f"{n:>6} | " + " | ".join(cells))
    if "m2-cgan" in fams:
        print("the VAE meets GAN poster's conv semi-supervised VAE (55,000 MNIST digits), test error %: "
              + ", ".join(f"{n} labels {e}" for n, e in POSTER.items()) + "; with the GAN: 'similar' (no numbers)")
    print(f"\n(paper: 50,000 MNIST training digits; here: {args.dataset}. Runs and table1.json in {out})")


if __name__ == "__main__":
    main()

"""Burda et al.'s IWAE against the VAE on the held-out likelihood: k = 1 (the VAE), 5 and 50, same nets, data, steps.

Models, trained by the trainer (as `vaezoo train` runs them), one run per (k, seed):

* k = 1: ``vae-<dataset>``, the VAE's ELBO with the closed-form KL. (``iwae`` with k = 1 is the same bound
  with a one-draw Monte Carlo KL; tests/test_geco_iwae.py checks that they agree in expectation.)
* k > 1: ``iwae-<dataset>`` with the recipe override ``objective.k = k``. The k draws of a batch go through
  one decoder pass of B*k codes (``VAE.importance_pass``; tested by tests/test_geco_iwae.py).

Measured on the held-out split (mnist5k: its 500 validation digits, grey levels in [0, 1] as the Bernoulli
targets; this zoo has no binarised-MNIST protocol, so these are NOT the paper's binarised-MNIST nats):

* **NLL** = -L_K, the importance-sampled -log p(x) with K = --nll-samples draws per digit (the trainer's own
  evaluator, ``VAE.validation_metrics``, seed 1234), and the **-ELBO** of the same evaluator;
* **active units** (Burda et al. section 5.2): latent dimensions u with Cov_x(E_q(u|x)[u]) > 1e-2 over the
  held-out digits (E_q[u] is the encoder's mean);
* **throughput**: training images / s (steps x batch / the trainer's train.seconds) and images x samples / s
  (times k): what the k-sample bound costs.

The paper's numbers (MNIST test set, dynamic binarisation, K = 5000, latent 50, MLP 200-200 tanh, batch 20,
3280 epochs) are printed beside ours; the settings here are the recipes' (mnist5k: latent 16, MLP 256 ReLU,
batch 100, 3000 steps), so only the ordering compares.

    python scripts/iwae_table.py --threads 1                         # k = 1, 5, 50; recipe length; K = 5000
    python scripts/iwae_table.py --ks 1,5 --steps 500 --nll-samples 1000

Runs are kept in --out (default ``$VAEZOO_HOME/iwae``); finished runs are reused. Results go to ``<out>/iwae.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# Burda et al. 2016, Table 1, MNIST, one stochastic layer: test NLL and active units, by the training k.
PAPER = {1: {"vae": (86.76, 19), "iwae": (86.76, 19)},
         5: {"vae": (86.47, 20), "iwae": (85.54, 22)},
         50: {"vae": (86.35, 20), "iwae": (84.78, 25)}}
ACTIVE_THRESHOLD = 1e-2


def active_units(folder: Path, dataset: str, examples: int, data_dir: str | None) -> int:
    """Latent dimensions whose posterior mean varies across the held-out digits (variance > 1e-2)."""
    import torch

    from vaezoo.data import load_dataset
    from vaezoo.models.loading import load_model

    model, _ = load_model(folder)
    model.eval()
    x = torch.from_numpy(load_dataset(dataset, "val", data_dir=data_dir).x[:examples])
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    with torch.no_grad():
        mu, _ = model.encoder(x)
    return int((mu.var(0) > ACTIVE_THRESHOLD).sum())


def run_one(k: int, dataset: str, seed: int, args) -> dict:

    from vaezoo.recipes import resolve
    from vaezoo.train.trainer import train_once

    family = "vae" if k == 1 else "iwae"
    model_id = f"{family}-{dataset}"
    name = f"{model_id}-k{k}-seed{seed}" + ("" if args.steps is None else f"-steps{args.steps}") + f"-K{args.nll_samples}"
    folder = args.out / name
    over = {"train": {"seed": seed, **({"steps": args.steps} if args.steps else {})},
            "eval": {"nll_samples": args.nll_samples}}
    if k > 1:
        over["objective"] = {"k": k}
    m = train_once(resolve(model_id, over), folder, what=f"{model_id} k={k} seed {seed}", data_dir=args.data_dir)
    val, tr = m["validation"], m["train"]
    images_per_s = tr["steps"] * tr["batch_size"] / tr["seconds"]
    return {"id": model_id, "k": k, "seed": seed, "steps": tr["steps"], "batch_size": tr["batch_size"],
            "nll": val["nll"], "nll_samples": val["nll_samples"], "neg_elbo": val["neg_elbo"], "examples": val["examples"],
            "active_units": active_units(folder, dataset, val["examples"], args.data_dir),
            "train_seconds": tr["seconds"], "threads": tr["threads"],
            "images_per_s": images_per_s, "image_samples_per_s": images_per_s * k}


def mean(vals: list[float]) -> float:
    return sum(vals) / len(vals)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", default="1,5,50", help="training k's (1 = the VAE)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--steps", type=int, default=None, help="override train.steps (default: the recipe's)")
    ap.add_argument("--dataset", default="mnist5k", help="mnist5k or mnist")
    ap.add_argument("--nll-samples", type=int, default=5000, help="importance samples K per held-out digit (default 5000)")
    ap.add_argument("--data-dir", default=None, help="folder with the dataset's files (else $VAEZOO_DATA or download)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default; 1 helps on a busy machine)")
    args = ap.parse_args()
    try:
        ks = [int(v) for v in args.ks.split(",")]
        seeds = [int(v) for v in args.seeds.split(",")]
    except ValueError:
        ap.error("--ks and --seeds are comma-separated integers")
    if min(ks) < 1 or args.nll_samples < 1 or (args.steps is not None and args.steps < 1):
        ap.error("--ks, --nll-samples and --steps must be at least 1")
    if args.dataset not in ("mnist5k", "mnist"):
        ap.error("--dataset must be mnist5k or mnist (the IWAE recipes with a Bernoulli decoder)")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from vaezoo.store.resolution import home

    args.out = args.out or home() / "iwae"
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for k in ks:
        for s in seeds:
            results.append(run_one(k, args.dataset, s, args))
            (args.out / "iwae.json").write_text(json.dumps(results, indent=1))
    r0 = results[0]
    print(f"\nIWAE against the VAE, {args.dataset}: held-out NLL = -L_K with K = {r0['nll_samples']} on the "
          f"{r0['examples']} validation digits (grey-level Bernoulli targets), {r0['steps']} steps of batch {r0['batch_size']}, "
          f"seeds {seeds}, {r0['threads']} torch threads")
    head = (f"{'k':>3} | {'model':<14} | {'NLL (-L_K)':>10} | {'-ELBO':>8} | {'active':>6} | {'images/s':>9} | "
            f"{'img*samples/s':>13} | {'paper VAE NLL':>13} | {'paper IWAE NLL':>14} | {'paper active':>12}")
    print(head)
    print("-" * len(head))
    for k in ks:
        rows = [r for r in results if r["k"] == k]
        ref = PAPER.get(k)
        au = mean([r["active_units"] for r in rows])
        p_vae, p_iwae, p_au = (f"{ref['vae'][0]:.2f}", f"{ref['iwae'][0]:.2f}", f"{ref['vae'][1]} / {ref['iwae'][1]}") if ref else ("-",) * 3
        print(f"{k:>3} | {rows[0]['id']:<14} | {mean([r['nll'] for r in rows]):>10.2f} | {mean([r['neg_elbo'] for r in rows]):>8.2f} | "
              f"{au:>6.3g} | {mean([r['images_per_s'] for r in rows]):>9.0f} | {mean([r['image_samples_per_s'] for r in rows]):>13.0f} | "
              f"{p_vae:>13} | {p_iwae:>14} | {p_au:>12}")
    print(f"\n(paper: Burda et al. 2016 Table 1, binarised MNIST test set, K = 5000, latent 50, MLP 200-200 tanh; "
          f"its VAE at k > 1 is trained on the k-sample ELBO, not run here; active = Cov_x(E_q[u]) > {ACTIVE_THRESHOLD}, "
          f"paper VAE / IWAE. Ours: {args.dataset} recipes, latent {_latent(results[0]['id'])}. Runs and iwae.json in {args.out})")


def _latent(model_id: str) -> int:
    from vaezoo.recipes import resolve

    return int(resolve(model_id)["model"]["latent"])


if __name__ == "__main__":
    main()

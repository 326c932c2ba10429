"""The Taming VAEs slides' comparison: VAE, beta-VAE (beta = 0.5), GECO and GECO+IWAE, marginal KL and reconstruction.

Models: the recipes ``vae-<dataset>``, ``beta-half-<dataset>``, ``geco-<dataset>`` and ``geco-iwae-<dataset>``
trained by the trainer (as `vaezoo train` runs them), one run per seed. Measured on the held-out split
(``val``: mnist5k's 500 digits), with a fixed evaluation seed:

* **marginal KL** = KL(q(z) || p(z)) between the aggregate posterior q(z) = (1/M) sum_n q(z|x_n) of the M
  held-out examples and the prior, estimated as mean_j [log q(z_j) - log p(z_j)] with z_j ~ q(z|x_j),
  log q(z_j) = logsumexp_n log q(z_j|x_n) - log M (the example's own posterior included), averaged over
  ``--draws`` draws per example; log p(z) is the model's prior density (through the flow for dp models).
  The estimator is biased for finite M; runs compare with each other at the same M.
* **squared error** = ||x - x_hat||^2 per example, summed over pixels, x_hat the mean of p(x|z) at a draw
  z ~ q(z|x) (GECO's constraint without kappa);
* **-log p(x|z)** = the reconstruction term of the ELBO in nats (metrics.json's ``recon``);
* **train err/k^2** (GECO rows) = the last training batch's squared error over kappa^2: GECO's constraint is
  met at <= 1, and the issue's target is within 5 % of 1.

The slides' numbers are printed beside ours; the slides do not say how they estimated the marginal KL or
in which units their reconstruction loss is, so only orderings compare.

    python scripts/taming_table.py                        # mnist5k, 3 seeds, recipe lengths
    python scripts/taming_table.py --seeds 0 --steps 1000 # quicker

Runs are kept in --out (default ``$VAEZOO_HOME/taming``); finished runs are reused. Results also go to
``<out>/taming.json``; each run folder gets ``reconstructions.png`` (16 held-out digits over their
reconstructions) beside the ``samples.png`` grid training writes.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

SEED_TABLE = {  # the slides' "Numerical comparison": marginal KL, reconstruction loss
    "mnist": {"vae": (1.5813, 55.8484), "beta-half": (10.5938, 15.1434), "geco": (10.4975, 14.6269), "geco-iwae": (1.3640, 12.9214)},
    "cifar10": {"vae": (31.9662, 77.6570), "beta-half": (59.4998, 57.9653), "geco": (383.0849, 11.4413)},
}
SEED_TABLE["mnist5k"] = SEED_TABLE["mnist"]
NAMES = {"vae": "VAE", "beta-half": "beta-VAE (0.5)", "geco": "GECO", "geco-iwae": "GECO + IWAE"}


def marginal_kl(model, x, draws: int):
    """KL(q(z) || p(z)) of the aggregate posterior of ``x``, as the module docstring defines it."""
    import torch

    from vaezoo.models.distributions import DiagGaussian, gaussian_log_density

    q = DiagGaussian(*model.encoder(x))
    m = x.shape[0]
    vals = []
    for _ in range(draws):
        z = q.sample()                                                                  # (M, D)
        logq = gaussian_log_density(z.unsqueeze(1), q.mu.unsqueeze(0), q.logvar.unsqueeze(0)).sum(2)  # (M, M)
        log_qz = torch.logsumexp(logq, dim=1) - math.log(m)
        vals.append((log_qz - model.prior.log_prob(z)).mean())
    return float(torch.stack(vals).mean())


def evaluate(folder: Path, dataset: str, examples: int, draws: int, data_dir: str | None) -> dict:
    import torch

    from vaezoo.data import load_dataset
    from vaezoo.models.loading import load_model

    model, _ = load_model(folder)
    model.eval()
    ds = load_dataset(dataset, "val", data_dir=data_dir)
    x = torch.from_numpy(ds.x[:examples])
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    torch.manual_seed(1234)
    with torch.no_grad():
        fwd = model.forward_pass(x)
        sq = float((x - model.likelihood.mean(fwd.out)).pow(2).flatten(1).sum(1).mean())
        mkl = marginal_kl(model, x, draws)
    return {"marginal_kl": mkl, "squared_error": sq, "examples": int(x.shape[0])}


def write_grids(folder: Path, dataset: str, data_dir: str | None) -> dict:
    """reconstructions.png (16 held-out inputs spread over the split, their reconstructions below: the decoder's mean at the
    posterior mean) beside the samples.png (64 prior samples, seed 0) that training wrote."""
    import numpy as np

    from vaezoo.data import load_dataset
    from vaezoo.io.images import save_output
    from vaezoo.runtime.pipeline import load_pipeline

    pipe = load_pipeline(str(folder), backend="torch")
    x = load_dataset(dataset, "val", data_dir=data_dir).x
    x = x[np.linspace(0, len(x) - 1, 16).astype(int)]   # spread over the split (mnist5k's is sorted by class)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    recon = save_output(np.concatenate([x, pipe.reconstruct(x)]), folder / "reconstructions.png", force=True, nrow=16)
    return {"reconstructions": str(recon), "samples": str(folder / "samples.png")}


def write_montage(results: list[dict], fams: list[str], seed: int, path: Path) -> Path:
    """One PNG comparing the models of one seed: per model, its reconstructions.png (inputs over
    reconstructions) and the first row of its samples.png, in ``fams`` order."""
    import numpy as np
    from PIL import Image

    def gray(p):
        return np.asarray(Image.open(p).convert("L"))

    rows = []
    for fam in fams:
        (r,) = [r for r in results if r["family"] == fam and r["seed"] == seed]
        recon, samples = gray(r["grids"]["reconstructions"]), gray(r["grids"]["samples"])
        first = samples[:recon.shape[0] // 2 + 1]                                   # one row of 8 samples
        rows += [recon, np.pad(first, ((0, 0), (0, recon.shape[1] - first.shape[1])), constant_values=255)]
    Image.fromarray(np.concatenate(rows)).save(path)
    return path


def run_one(family: str, dataset: str, seed: int, steps: int | None, out: Path, args) -> dict:

    from vaezoo.recipes import resolve
    from vaezoo.train.trainer import train_once

    model_id = f"{family}-{dataset}"
    folder = out / (f"{model_id}-seed{seed}" + ("" if steps is None else f"-steps{steps}"))
    over = {"train": {"seed": seed, **({"steps": steps} if steps else {})}, "eval": {"nll_samples": args.nll_samples}}
    m = train_once(resolve(model_id, over), folder, what=f"{model_id} seed {seed}", data_dir=args.data_dir)
    res = {"id": model_id, "family": family, "seed": seed, "steps": m["train"]["steps"], "recon_nats": m["validation"]["recon"],
           "kl": m["validation"]["kl"], **evaluate(folder, dataset, args.examples, args.draws, args.data_dir),
           "grids": write_grids(folder, dataset, args.data_dir)}
    if "lambda" in m["train"]["final_stats"]:
        res["lambda"] = m["train"]["final_stats"]["lambda"]
        # GECO's target: the last training batch's squared error against the tolerance kappa^2
        kappa = json.loads((folder / "config.json").read_text())["recipe"]["objective"]["kappa"]
        res["train_mse_over_kappa2"] = m["train"]["final_stats"]["mse"] / kappa ** 2
    return res


def fmt(vals: list[float]) -> str:
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.2f}"
    return f"{statistics.mean(vals):.2f} (± {statistics.stdev(vals):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="vae,beta-half,geco,geco-iwae")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=None, help="override train.steps (default: the recipe's)")
    ap.add_argument("--dataset", default="mnist5k", help="mnist5k, mnist or cifar10")
    ap.add_argument("--examples", type=int, default=500, help="held-out examples measured (and M of the marginal KL)")
    ap.add_argument("--draws", type=int, default=10, help="posterior draws per example for the marginal KL")
    ap.add_argument("--nll-samples", type=int, default=0, help="importance samples for the NLL in metrics.json (0: skip)")
    ap.add_argument("--data-dir", default=None, help="folder with the dataset's files (else $VAEZOO_DATA or download)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default; 1 helps on a busy machine)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from vaezoo.store.resolution import home

    out = args.out or home() / "taming"
    out.mkdir(parents=True, exist_ok=True)
    fams = args.models.split(",")
    seeds = [int(v) for v in args.seeds.split(",")]
    results = []
    for fam in fams:
        for s in seeds:
            results.append(run_one(fam, args.dataset, s, args.steps, out, args))
            (out / "taming.json").write_text(json.dumps(results, indent=1))
    montage = write_montage(results, fams, seeds[0], out / "grids.png")
    held = results[0]["examples"] if results else 0
    print(f"\nTaming VAEs comparison, {args.dataset}: {held} held-out examples, seeds {seeds}"
          + (f", {args.steps} steps" if args.steps else ""))
    head = (f"{'model':<16} | {'marginal KL':>16} | {'squared error':>16} | {'-log p(x|z)':>16} | {'lambda':>14} | "
            f"{'train err/k^2':>14} | {'slides: mKL':>11} | {'slides: recon':>13}")
    print(head)
    print("-" * len(head))
    seed_rows = SEED_TABLE.get(args.dataset, {})
    for fam in fams:
        rows = [r for r in results if r["family"] == fam]
        lam = [r["lambda"] for r in rows if "lambda" in r]
        ratio = [r["train_mse_over_kappa2"] for r in rows if "train_mse_over_kappa2" in r]
        ref = seed_rows.get(fam)
        print(f"{NAMES.get(fam, fam):<16} | {fmt([r['marginal_kl'] for r in rows]):>16} | {fmt([r['squared_error'] for r in rows]):>16} | "
              f"{fmt([r['recon_nats'] for r in rows]):>16} | {fmt(lam):>14} | {fmt(ratio):>14} | {(f'{ref[0]:.2f}' if ref else '-'):>11} | "
              f"{(f'{ref[1]:.2f}' if ref else '-'):>13}")
    print(f"\n(the slides: full MNIST / CIFAR-10, estimators and units not stated; here: {args.dataset}. "
          f"Runs and taming.json in {out}; each run folder holds reconstructions.png and samples.png; {montage.name}: seed {seeds[0]}'s, "
          f"per model its inputs, reconstructions and 8 samples, in the table's order)")


if __name__ == "__main__":
    main()

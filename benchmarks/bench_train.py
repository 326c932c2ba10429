"""Training benchmark on mnist5k: vaezoo (vae, iwae, tc, factor, info, dp-factor) against pythae. Prints figures; asserts nothing.

    python benchmarks/bench_train.py [--epochs 10] [--nll-samples 1000] [--threads N] [--seeds 1]
                                     [--device cpu] [--no-pythae] [--pythae-own-nll] [--json]

What runs, all in this one process with one thread setting (``torch.set_num_threads``):

1. ``vae-mnist5k``, ``iwae-mnist5k``, ``tc-mnist5k``, ``factor-mnist5k``, ``info-mnist5k`` and
   ``dp-factor-mnist5k`` (--models) through the real trainer (``vaezoo.train.trainer.train``) with
   ``train.steps = epochs x steps_per_epoch`` (steps_per_epoch = 4,500 // batch 100 = 45) into a temporary
   folder. FactorVAE objectives read a second batch per step (for the discriminator's permuted codes), so one
   dp-factor "epoch" of 45 steps reads the training set twice.
2. If ``pythae`` imports: ``pythae.models.VAE`` with a custom encoder/decoder built from vaezoo's own MLP
   modules (``vaezoo.models.nets.MLPEncoder/MLPDecoder``: 784-256-(16+16) encoder, 16-256-784 decoder, ReLU), so
   the architecture is identical and, with the same seed, so are the initial weights (checked and printed).
   pythae's decoder returns ``sigmoid(logits)`` and trains with ``reconstruction_loss="bce"``, which is
   ``F.binary_cross_entropy(...).sum(-1).mean(0)`` + KL: summed over the 784 pixels, averaged over the
   batch, as vaezoo's loss. Same data (mnist5k train, uint8/255 floats), batch 100, Adam lr 1e-3, same
   epochs, same seed, trained with pythae's ``BaseTrainer`` (no eval set, no checkpoints, no predictions).
   Likewise each other id of PEERS against its pythae model, with the recipe's settings mapped onto pythae's
   config by ``peer_spec``: ``IWAE`` (number_samples = objective.k), ``BetaTCVAE`` (alpha, beta, gamma;
   use_mss=False, i.e. minibatch-weighted sampling as vaezoo's), ``FactorVAE`` (gamma; its default
   discriminator has vaezoo's shape; ``AdversarialTrainer`` with the recipe's disc lr and betas; pythae splits
   one batch into the VAE half and the permuted half, so it gets batches of 200 for twice the epochs: the
   same model steps and data as vaezoo's two batches of 100 per step), ``INFOVAE_MMD`` (alpha, lbd = lambda,
   rbf kernel at the bandwidth that makes it vaezoo's kernel; pythae's MMD estimate is the unbiased one).
   Where a definition differs the output says so, per pair.

Timing (seconds per epoch = training time / epochs; evaluation is never included):
  * vaezoo: the trainer's ``metrics["train"]["seconds"]``: the training loop, including its resumable
    state writes (every 500 steps and at the last step). Data loading, model build, evaluation and the
    final checkpoint are outside it.
  * pythae: the time spent inside ``BaseTrainer.train_step`` (DataLoader + forward + backward + Adam, per
    epoch). This is the figure used in the ratio. pythae's per-epoch extras outside ``train_step``
    (a ``deepcopy`` of the model whenever the train loss improves, epoch logging) and the final
    ``final_model`` save are excluded there, and reported separately as "pythae train() wall / epoch".
    pythae's tqdm bars are disabled (``TQDM_DISABLE=1``) unless --verbose: that only makes pythae faster.

NLL: the SAME evaluator for every model: ``VAE.validation_metrics`` (vaezoo.models.metrics) (importance-sampled NLL, K =
--nll-samples, seed 1234) on the 500 mnist5k validation digits. For pythae, its trained encoder/decoder
weights (the ``_best_model`` pythae saves as ``final_model``; with no eval set it keeps the best-on-train
epoch) are loaded into a vaezoo ``VAE`` of the same recipe; p(x|z) = Bernoulli(sigmoid(logits)) is the
density pythae trained (its BCE on probabilities is the same function, each log term clamped at -100). The
"paired SE" of the NLL difference comes from a second pass of ``vaezoo.models.distributions.importance_nll`` with
common random numbers for both models (per-digit differences); it covers the evaluation noise over
validation digits, not the training-seed noise (use --seeds N for that).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

if "--verbose" not in sys.argv:
    os.environ.setdefault("TQDM_DISABLE", "1")  # pythae's per-epoch progress bars; read when tqdm is imported

import torch

# vaezoo ids with a pythae counterpart (peer_spec maps each recipe onto pythae's config)
PEERS = ("vae-mnist5k", "iwae-mnist5k", "tc-mnist5k", "factor-mnist5k", "info-mnist5k")
MODELS = (*PEERS, "dp-factor-mnist5k")
NLL_SEED = 1234


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data and shared evaluation
def mnist5k_float(split: str) -> torch.Tensor:
    from vaezoo.data import load_dataset

    return torch.from_numpy(load_dataset("mnist5k", split).x).float() / 255.0


def val_digits(recipe: dict) -> torch.Tensor:
    """The validation digits the trainer evaluates on (all 500 of mnist5k val)."""
    x = mnist5k_float("val")
    n = min(len(x), int(recipe.get("eval", {}).get("max_examples", 1000)))
    return x[:n]


@torch.no_grad()
def per_digit_nll(model, x: torch.Tensor, k: int, batch: int = 500) -> torch.Tensor:
    """(N,) importance-sampled NLL with vaezoo's importance_nll, common random numbers (seed NLL_SEED)."""
    from vaezoo.models.distributions import importance_nll

    torch.manual_seed(NLL_SEED)
    model.eval()
    return torch.cat([importance_nll(model.log_weights, x[i : i + batch], k) for i in range(0, len(x), batch)])


# ---------------------------------------------------------------- vaezoo
def run_vaezoo(model_id: str, epochs: int, k: int, seed: int, device: str, work: Path) -> dict:
    from vaezoo.models.loading import load_model
    from vaezoo.recipes import resolve
    from vaezoo.train.trainer import train

    base = resolve(model_id)
    n_train = len(mnist5k_float("train"))
    spe = n_train // int(base["train"]["batch_size"])
    recipe = resolve(model_id, {"train": {"steps": epochs * spe, "seed": seed}, "eval": {"nll_samples": k}})
    out = work / f"{model_id}-s{seed}"
    log(f"[vaezoo] {model_id}: {epochs} epochs x {spe} steps, batch {recipe['train']['batch_size']}, "
        f"lr {recipe['train']['lr']}, seed {seed}")
    t0 = time.perf_counter()
    metrics = train(recipe, out, device=device, force=True, progress=False, threads=torch.get_num_threads())  # same threads as pythae
    wall = time.perf_counter() - t0
    seconds = float(metrics["train"]["seconds"])
    val = metrics["validation"]
    res = {
        "model": model_id,
        "framework": "vaezoo",
        "epochs": epochs,
        "steps": epochs * spe,
        "seed": seed,
        "train_seconds": seconds,
        "s_per_epoch": seconds / epochs,
        "val_nll": float(val["nll"]),
        "val_neg_elbo": float(val["neg_elbo"]),
        "val_examples": int(val["examples"]),
        "wall_seconds_incl_eval": round(wall, 2),
        "timing": "trainer metrics train.seconds (loop incl. resumable-state writes; no eval)",
    }
    if model_id in PEERS:
        model, _ = load_model(out, device=device)
        res["_model"] = model
    return res


# ---------------------------------------------------------------- pythae
def pythae_status() -> tuple[bool, str]:
    try:
        import pythae  # noqa: F401
        from pythae.models import VAE, VAEConfig  # noqa: F401
        from pythae.trainers import BaseTrainer, BaseTrainerConfig  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name == "pythae":
            return False, "pythae is not installed (see benchmarks/README.md: pip install --no-deps pythae imageio)"
        return False, f"pythae is installed but cannot be imported: missing module {exc.name!r} ({exc})"
    except Exception as exc:  # incompatible with this Python / torch: say exactly why
        return False, f"pythae is installed but cannot be imported with Python {platform.python_version()} / torch {torch.__version__}: {type(exc).__name__}: {exc}"
    from importlib.metadata import version

    return True, f"pythae {version('pythae')}"


def _pythae_parts(vz_encoder, vz_decoder):
    """Wrap vaezoo's MLP modules in pythae's BaseEncoder / BaseDecoder interfaces."""
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self, net):
            BaseEncoder.__init__(self)
            self.net = net

        def forward(self, x):
            mu, logvar = self.net(x)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self, net):
            BaseDecoder.__init__(self)
            self.net = net

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))  # pythae's bce wants probabilities

    return Encoder(vz_encoder), Decoder(vz_decoder)


def peer_spec(model_id: str, recipe: dict) -> dict:
    """pythae's counterpart of a vaezoo recipe: its model class and config with vaezoo's settings mapped on,
    the trainer, the batch pythae must be given, and where pythae's definition differs (said in the output)."""
    from pythae import models as pm
    from pythae.trainers import AdversarialTrainer, AdversarialTrainerConfig, BaseTrainer, BaseTrainerConfig

    obj, mcfg = recipe["objective"], recipe["model"]
    common = {"input_dim": (1, 28, 28), "latent_dim": int(mcfg["latent"]), "reconstruction_loss": "bce"}
    family = recipe["family"]
    spec = {"trainer": BaseTrainer, "trainer_config": BaseTrainerConfig, "batch_factor": 1, "differs": ""}
    if family == "vae":
        spec.update(label="pythae VAE", model=pm.VAE, config=pm.VAEConfig(**common))
    elif family == "iwae":
        spec.update(label="pythae IWAE", model=pm.IWAE, config=pm.IWAEConfig(**common, number_samples=int(obj["k"])),
                    differs="same bound and gradient (pythae's surrogate -(stopgrad(w~) log w) has IWAE's gradient); "
                            "k draws in one B*k decoder pass in both")
    elif family == "tc":
        spec.update(label="pythae BetaTCVAE", model=pm.BetaTCVAE,
                    config=pm.BetaTCVAEConfig(**common, alpha=float(obj["alpha"]), beta=float(obj["beta"]),
                                              gamma=float(obj["gamma"]), use_mss=False),
                    differs="use_mss=False: minibatch-weighted sampling with N = 4,500, as vaezoo's estimator")
    elif family == "factor":
        spec.update(label="pythae FactorVAE", model=pm.FactorVAE, config=pm.FactorVAEConfig(**common, gamma=float(obj["gamma"])),
                    trainer=AdversarialTrainer, trainer_config=AdversarialTrainerConfig, batch_factor=2,
                    differs=f"pythae splits one batch of {2 * int(recipe['train']['batch_size'])} into the VAE half and the "
                            "permuted half (vaezoo: two batches of 100), so it runs 2x the epochs of 22 steps = the same "
                            "model steps and data; its default discriminator is vaezoo's (6 linear layers, 1000 hidden, "
                            "LeakyReLU 0.2), disc Adam lr/betas mapped")
    elif family == "info":
        # vaezoo's kernel exp(-||a-b||^2 / D^2) is pythae's rbf exp(-||a-b||^2 / (2 D bw^2)) at bw = sqrt(D / 2)
        bw = math.sqrt(int(mcfg["latent"]) / 2)
        spec.update(label="pythae INFOVAE_MMD", model=pm.INFOVAE_MMD,
                    config=pm.INFOVAE_MMD_Config(**common, kernel_choice="rbf", alpha=float(obj["alpha"]),
                                                 lbd=float(obj["lambda"]), kernel_bandwidth=bw),
                    differs=f"same rbf kernel (bandwidth {bw:.3f}) and weights; pythae's MMD^2 estimate is the unbiased "
                            "one (diagonal terms left out), vaezoo's the biased one")
    else:
        raise SystemExit(f"bench_train: {model_id} has no pythae counterpart here")
    return spec


def run_pythae(model_id: str, epochs: int, k: int, seed: int, device: str, work: Path, own_nll: bool, verbose: bool) -> dict:
    import logging

    from pythae.data.datasets import BaseDataset

    from vaezoo.store.checkpoint import make_config
    from vaezoo.models import build_model
    from vaezoo.models.nets import build_backbone
    from vaezoo.recipes import resolve

    if not verbose:
        for name in ("pythae.trainers.base_trainer.base_trainer", "pythae.trainers.adversarial_trainer.adversarial_trainer",
                     "pythae.trainers.training_callbacks"):
            logging.getLogger(name).setLevel(logging.WARNING)

    recipe = resolve(model_id, {"train": {"seed": seed}})
    tcfg, mcfg = recipe["train"], recipe["model"]
    spec = peer_spec(model_id, recipe)
    shape = (1, 28, 28)
    dev = torch.device(device)

    # Same seed, same construction order as vaezoo's VAE (encoder, then decoder): same initial weights.
    torch.manual_seed(seed)
    enc, dec = build_backbone(mcfg, shape)
    torch.manual_seed(seed)
    ref = build_model(make_config(recipe))
    same_init = all(torch.equal(a, b) for a, b in zip(
        [*enc.state_dict().values(), *dec.state_dict().values()],
        [*ref.encoder.state_dict().values(), *ref.decoder.state_dict().values()]))
    p_enc, p_dec = _pythae_parts(enc, dec)
    model = spec["model"](spec["config"], encoder=p_enc, decoder=p_dec)

    x_train = mnist5k_float("train")
    from vaezoo.data import load_dataset

    y_train = torch.from_numpy(load_dataset("mnist5k", "train").y)
    batch = spec["batch_factor"] * int(tcfg["batch_size"])
    p_epochs = spec["batch_factor"] * epochs   # the same number of batches of 100 read as vaezoo's run
    lr = float(tcfg["lr"])
    if spec["trainer"].__name__ == "AdversarialTrainer":
        optim = {"autoencoder_learning_rate": lr, "discriminator_learning_rate": float(recipe["objective"]["disc_lr"]),
                 "discriminator_optimizer_params": {"betas": tuple(recipe["objective"]["disc_betas"])}}
    else:
        optim = {"learning_rate": lr, "optimizer_cls": "Adam"}
    config = spec["trainer_config"](
        output_dir=str(work / f"pythae-{model_id}"),
        per_device_train_batch_size=batch,
        per_device_eval_batch_size=batch,
        num_epochs=p_epochs,
        steps_saving=None,
        steps_predict=None,
        seed=seed,
        no_cuda=dev.type != "cuda",
        **optim,
    )
    log(f"[pythae] {spec['label']}: {p_epochs} epochs x {len(x_train) // batch} steps, batch {batch}, lr {lr}, seed {seed}")
    trainer = spec["trainer"](model, BaseDataset(x_train, y_train), None, config)

    step_times: list[float] = []
    epoch_losses: list[float] = []
    inner = trainer.train_step

    def timed_train_step(epoch):
        t = time.perf_counter()
        out = inner(epoch)
        step_times.append(time.perf_counter() - t)
        epoch_losses.append(float(out[0] if isinstance(out, tuple) else out))   # AdversarialTrainer: (loss, ae, disc)
        return out

    trainer.train_step = timed_train_step
    t0 = time.perf_counter()
    trainer.train()
    whole = time.perf_counter() - t0
    best = getattr(trainer, "_best_model", trainer.model)
    best_epoch = 1 + min(range(len(epoch_losses)), key=epoch_losses.__getitem__)

    # Evaluate with vaezoo's evaluator: pythae's trained weights in a vaezoo VAE of the same recipe.
    vz = build_model(make_config(recipe)).to(dev)
    vz.encoder.load_state_dict(best.encoder.net.state_dict())
    vz.decoder.load_state_dict(best.decoder.net.state_dict())
    xv = val_digits(recipe).to(dev)
    val = vz.validation_metrics(xv, None, k)
    train_s = sum(step_times)
    res = {
        "model": spec["label"],
        "peer_of": model_id,
        "framework": "pythae",
        "differs": spec["differs"],
        "epochs": epochs,
        "pythae_epochs": p_epochs,
        "steps": p_epochs * len(trainer.train_loader),
        "seed": seed,
        "train_seconds": round(train_s, 2),
        "s_per_epoch": train_s / epochs,
        "train_call_seconds": round(whole, 2),
        "s_per_epoch_whole_train_call": whole / epochs,
        "val_nll": float(val["nll"]),
        "val_neg_elbo": float(val["neg_elbo"]),
        "val_examples": int(val["examples"]),
        "identical_initial_weights": bool(same_init),
        "evaluated_epoch": best_epoch,
        "timing": "sum of train_step (loader+fwd+bwd+Adam); excludes per-epoch best-model deepcopy, logging, final save",
        "_model": vz,
    }
    if own_nll:  # pythae's own IS estimator (K//100 batches of 100 per digit), as a cross-check
        t = time.perf_counter()
        best.eval()
        with torch.no_grad():
            torch.manual_seed(NLL_SEED)
            res["pythae_get_nll"] = -float(best.get_nll(xv, n_samples=k, batch_size=100))
        res["pythae_get_nll_seconds"] = round(time.perf_counter() - t, 1)
    return res


# ---------------------------------------------------------------- main
def warm_up(device: str) -> None:
    """A few untimed steps of the benchmark's MLP so that the first timed run pays no one-off costs."""
    from vaezoo.models.nets import MLPDecoder, MLPEncoder

    enc, dec = MLPEncoder((1, 28, 28), [256], 16).to(device), MLPDecoder((1, 28, 28), [256], 16).to(device)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], 1e-3)
    x = torch.rand(100, 1, 28, 28, device=device)
    for _ in range(20):
        mu, lv = enc(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(dec(mu + lv.exp()), x)
        opt.zero_grad()
        loss.backward()
        opt.step()


def mean(vals):
    return sum(vals) / len(vals)


def summarise(runs: list[dict]) -> dict:
    """Mean over seeds of one model's runs (and the spread when there is more than one)."""
    out = {k: v for k, v in runs[0].items() if not k.startswith("_") and k != "seed"}
    for key in ("s_per_epoch", "val_nll", "val_neg_elbo", "train_seconds", "s_per_epoch_whole_train_call", "pythae_get_nll"):
        if key in runs[0]:
            vals = [r[key] for r in runs]
            out[key] = mean(vals)
            if len(vals) > 1:
                out[key + "_min"], out[key + "_max"] = min(vals), max(vals)
    out["seeds"] = [r["seed"] for r in runs]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10, help="training epochs per model (default 10; 1 epoch = 45 steps)")
    ap.add_argument("--nll-samples", type=int, default=1000, help="importance samples K per validation digit (default 1000)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for every run (default: torch's default here)")
    ap.add_argument("--seeds", type=int, default=1, help="train every model with seeds 0..N-1 and average (default 1)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda; the same for every run")
    ap.add_argument("--models", default=",".join(MODELS), help=f"vaezoo ids to train (default {','.join(MODELS)})")
    ap.add_argument("--no-pythae", action="store_true", help="skip pythae even if it is installed")
    ap.add_argument("--pythae-own-nll", action="store_true", help="also print pythae's own VAE.get_nll as a cross-check")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of the table")
    ap.add_argument("--verbose", action="store_true", help="keep the trainers' progress output")
    args = ap.parse_args(argv)
    if args.epochs < 1 or args.nll_samples < 1 or args.seeds < 1:
        ap.error("--epochs, --nll-samples and --seeds must be at least 1")
    if args.device not in ("cpu", "cuda") and not args.device.startswith("cuda:"):
        ap.error("--device must be cpu or cuda")

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    from vaezoo.recipes import resolve

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    from vaezoo.errors import UsageError

    for model_id in models:
        try:
            resolve(model_id)  # unknown ids fail here, before any training
        except UsageError as exc:
            ap.error(str(exc))
    have_pythae, pythae_msg = (False, "skipped (--no-pythae)") if args.no_pythae else pythae_status()
    log(f"bench_train: {args.epochs} epochs, K={args.nll_samples}, {threads} torch threads, device {args.device}, "
        f"seeds {list(range(args.seeds))}; {pythae_msg}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None

    warm_up(args.device)
    results: dict[str, list[dict]] = {}
    paired: dict[str, list[dict]] = {}   # vaezoo id -> per-seed paired figures against its pythae peer
    pairs: dict[str, str] = {}           # vaezoo id -> its pythae peer's name
    with tempfile.TemporaryDirectory(prefix="vaezoo-bench-") as tmp:
        work = Path(tmp)
        for seed in range(args.seeds):
            for model_id in models:
                results.setdefault(model_id, []).append(run_vaezoo(model_id, args.epochs, args.nll_samples, seed, args.device, work))
            for model_id in (m for m in models if m in PEERS and have_pythae):
                peer = run_pythae(model_id, args.epochs, args.nll_samples, seed, args.device, work, args.pythae_own_nll,
                                  args.verbose)
                results.setdefault(peer["model"], []).append(peer)
                pairs[model_id] = peer["model"]
                a = results[model_id][-1].pop("_model")
                b = peer.pop("_model")
                xv = val_digits(resolve(model_id)).to(args.device)
                log(f"[paired] per-digit NLL of {model_id} and {peer['model']} (common random numbers, K={args.nll_samples})")
                d = per_digit_nll(a, xv, args.nll_samples) - per_digit_nll(b, xv, args.nll_samples)
                paired.setdefault(model_id, []).append({
                    "seed": seed,
                    "time_ratio": results[model_id][-1]["s_per_epoch"] / peer["s_per_epoch"],
                    "mean_diff": float(d.mean()),
                    "se": float(d.std() / math.sqrt(len(d))),
                })
            for runs in results.values():
                runs[-1].pop("_model", None)

    summary = {name: summarise(runs) for name, runs in results.items()}
    report = {
        "settings": {
            "epochs": args.epochs, "nll_samples": args.nll_samples, "threads": threads, "device": args.device,
            "seeds": args.seeds, "python": platform.python_version(), "torch": torch.__version__,
            "machine": f"{platform.machine()} {os.cpu_count()} cpus", "load_average_at_start": load,
        },
        "pythae": pythae_msg,
        "results": summary,
        "runs": {name: [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs] for name, runs in results.items()},
    }
    report["comparisons"] = {}
    for model_id, peer in pairs.items():
        vz, py = summary[model_id], summary[peer]
        cmp = {
            "pair": f"{model_id} vs {peer}",
            "peer": peer,
            "differs": py["differs"],
            "time_ratio_vaezoo_over_pythae": vz["s_per_epoch"] / py["s_per_epoch"],
            "time_ratio_vs_pythae_whole_train_call": vz["s_per_epoch"] / py["s_per_epoch_whole_train_call"],
            "nll_diff_vaezoo_minus_pythae": vz["val_nll"] - py["val_nll"],
            "paired": paired[model_id],
        }
        cmp.update(verdict(cmp["time_ratio_vaezoo_over_pythae"], paired[model_id]))
        report["comparisons"][model_id] = cmp
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


def print_table(report: dict) -> None:
    s = report["settings"]
    print(f"bench_train: mnist5k, {s['epochs']} epochs (45 steps of batch 100 each), val IS-NLL K={s['nll_samples']} "
          f"on the 500 validation digits, {s['threads']} torch threads, device {s['device']}, "
          f"seeds {s['seeds']}; {s['machine']}, torch {s['torch']}, Python {s['python']}"
          + (f"; load average at start {s['load_average_at_start'][0]:.1f}" if s["load_average_at_start"] else ""))
    print(f"pythae: {report['pythae']}")
    res, cmps = report["results"], report["comparisons"]
    peer_of = {c["peer"]: m for m, c in cmps.items()}
    head = f"{'model':<20} {'s/epoch':>8} {'val NLL':>9} {'-ELBO':>9} {'time/pythae':>12} {'NLL-pythae':>11} {'pythae whole':>12}"
    print()
    print(head)
    print("-" * len(head))
    for name, r in res.items():
        ratio = diff = whole = ""
        if name in cmps:
            ratio = f"{cmps[name]['time_ratio_vaezoo_over_pythae']:.2f}x"
            diff = f"{cmps[name]['nll_diff_vaezoo_minus_pythae']:+.2f}"
        if name in peer_of:
            whole = f"{r['s_per_epoch_whole_train_call']:.3f}"
        print(f"{name:<20} {r['s_per_epoch']:>8.3f} {r['val_nll']:>9.2f} {r['val_neg_elbo']:>9.2f} {ratio:>12} {diff:>11} {whole:>12}")
    print()
    for name, r in res.items():
        if s["seeds"] > 1:
            print(f"{name}: s/epoch {r['s_per_epoch_min']:.3f}..{r['s_per_epoch_max']:.3f}, "
                  f"NLL {r['val_nll_min']:.2f}..{r['val_nll_max']:.2f} over seeds {r['seeds']}")
    print("s/epoch: training time per 45 model steps. vaezoo = trainer's train.seconds / epochs (loop incl. its "
          "resumable-state writes)" + ("; pythae = time inside its trainer's train_step / epochs (excludes its per-epoch "
                                       "deepcopy, logging, final save; tqdm bars off); 'pythae whole' = its whole train() "
                                       "call / epochs." if cmps else "."))
    print("val NLL / -ELBO: nats, VAE.validation_metrics for every model"
          + (" (pythae's weights loaded into a vaezoo VAE of the same recipe)." if cmps else "."))
    if any("factor" in name for name in res):
        print("FactorVAE objectives read two batches per step (the permuted codes come from the second).")
    if "dp-factor-mnist5k" in res:
        print("dp-factor-mnist5k has no pythae counterpart here (FactorVAE objective + RealNVP prior).")
    for model_id, cmp in cmps.items():
        py = res[cmp["peer"]]
        print()
        print(f"{cmp['pair']}: time ratio {cmp['time_ratio_vaezoo_over_pythae']:.2f}x (vaezoo / pythae train_step; "
              f"{cmp['time_ratio_vs_pythae_whole_train_call']:.2f}x against pythae's whole train() call), "
              f"NLL difference {cmp['nll_diff_vaezoo_minus_pythae']:+.2f} nats (vaezoo - pythae; negative = vaezoo better)")
        print(f"  identical initial encoder/decoder weights: {py['identical_initial_weights']}; evaluated pythae's "
              f"best-on-train model (epoch {py['evaluated_epoch']} of {py['pythae_epochs']}, as pythae saves it)")
        if cmp["differs"]:
            print(f"  differs: {cmp['differs']}")
        if "pythae_get_nll" in py:
            print(f"  pythae's own get_nll (K={s['nll_samples']}): {py['pythae_get_nll']:.2f} nats "
                  f"({py['pythae_get_nll_seconds']}s) vs {py['val_nll']:.2f} with vaezoo's evaluator.")
        for p in cmp["paired"]:
            print(f"  seed {p['seed']}: time ratio {p['time_ratio']:.2f}x, paired per-digit NLL difference "
                  f"{p['mean_diff']:+.2f} +- {p['se']:.2f} (1 SE over the 500 digits)")
        print(f"  paired NLL difference {cmp['paired_nll_diff']:+.2f} +- {cmp['paired_nll_se']:.2f} nats, SE {cmp['se_kind']}")
        print(f"  target: at least as fast per epoch: {cmp['speed_target']}; better or equal NLL: {cmp['nll_target']}")


def verdict(time_ratio: float, paired: list[dict]) -> dict:
    """Targets: vaezoo at least as fast per epoch, and a better or equal NLL (2 SE decide 'equal')."""
    diffs = [p["mean_diff"] for p in paired]
    d = mean(diffs)
    if len(diffs) > 1:
        se = statistics.stdev(diffs) / math.sqrt(len(diffs))
        kind = f"between {len(diffs)} seeds (training and evaluation noise)"
    else:
        se = paired[0]["se"]
        kind = "over the 500 digits: evaluation noise only; one seed, so training-seed noise is NOT included (use --seeds 5)"
    if d < -2 * se:
        nll = "met (better by more than 2 SE)"
    elif d <= 0:
        nll = "met (lower, within 2 SE)"
    elif d <= 2 * se:
        nll = "met within noise (higher by less than 2 SE)"
    else:
        nll = "NOT met (higher by more than 2 SE)"
    if len(diffs) == 1:
        nll += "; one seed only, so not conclusive: rerun with --seeds 5"
    return {"paired_nll_diff": d, "paired_nll_se": se, "se_kind": kind,
            "speed_target": "met" if time_ratio <= 1.0 else "NOT met", "nll_target": nll}


if __name__ == "__main__":
    sys.exit(main())

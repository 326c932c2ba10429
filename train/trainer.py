"""The training loop: recipe -> checkpoint folder, resumable, DDP-ready.

* Deterministic: the data order of epoch e is ``randperm(N)`` seeded by (seed, e), and the global
  torch RNG state is saved, so a resumed run gives the same weights as an uninterrupted one.
* Resumable: every ``checkpoint_every`` steps one file, ``train_state.safetensors``, is written
  atomically (weights, optimiser and RNG tensors; step and settings in its metadata).
* DDP: under ``torchrun`` (WORLD_SIZE > 1) each rank takes every world-th example of the epoch's
  permutation, the gradients of the model and of the objective's networks are averaged over the ranks after
  each backward (:func:`average_gradients`: every objective's loss counts, wherever it is computed), the
  ranks are checked to end with the same weights, and only rank 0 writes files.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from vaezoo.models.loading import save_checkpoint
from vaezoo.runtime.preview import write_preview
from vaezoo.store.checkpoint import CONFIG, MANIFEST_KEY, METRICS, ONNX_DIR, WEIGHTS, make_config, read_config, safe_path
from vaezoo.data import binarize
from vaezoo.train import augment
from vaezoo.errors import UsageError, VaezooError
from vaezoo.io.files import atomic_path
from vaezoo.io.progress import Progress, log
from vaezoo.runtime.device import pick_device

STATE = "train_state.safetensors"


@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


class EpochSampler:
    """Index batches over epochs; the position (epoch, offset) is the whole state."""

    def __init__(self, n: int, batch: int, seed: int, ddp: Dist, epoch: int = 0, offset: int = 0):
        if n < batch * ddp.world:
            raise UsageError(f"batch size {batch} is larger than the training set ({n} examples)")
        self.n, self.batch, self.seed, self.ddp = n, batch // ddp.world, seed, ddp
        self.epoch, self.offset = epoch, offset
        self._perm = self._make_perm()

    def _make_perm(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g)
        return perm[self.ddp.rank :: self.ddp.world]

    def next(self) -> torch.Tensor:
        if self.offset + self.batch > len(self._perm):  # drop the ragged tail of an epoch
            self.epoch, self.offset = self.epoch + 1, 0
            self._perm = self._make_perm()
        idx = self._perm[self.offset : self.offset + self.batch]
        self.offset += self.batch
        return idx

    @property
    def steps_per_epoch(self) -> int:
        return len(self._perm) // self.batch


def _to_tensor(ds) -> torch.Tensor:
    return torch.from_numpy(ds.x)  # uint8 images or float32 vectors; scaled per batch


def binarized(batches: list[torch.Tensor], recipe: dict) -> list[torch.Tensor]:
    """data.binarize = "dynamic": each pixel of each batch on with probability its grey level, drawn now from
    torch's generator (saved with the training state, so a resumed run draws the same)."""
    if binarize.mode(recipe) == "none":
        return batches
    return [torch.bernoulli(b) for b in batches]


# The trainer's transforms of its own batches (data.<key>): (the modes, what it does to them), for one rule each.
BATCH_TRANSFORMS = {"binarize": (binarize.MODES, "binarises"), "augment": (augment.MODES, "transforms")}


def check_batch_transforms(recipe: dict, objective) -> None:
    """data.binarize and data.augment: a known mode, and not for objectives that draw their own batches (the trainer
    transforms only its own); binarised digits need a Bernoulli likelihood."""
    where = f"recipe {recipe.get('id', '?')!r}"
    for key, (modes, verb) in BATCH_TRANSFORMS.items():
        value = recipe.get("data", {}).get(key, "none")
        if value not in modes:
            raise UsageError(f"{where}: data.{key} must be one of {', '.join(modes)}, not {value!r}")
        if value != "none" and objective.own_batches:
            raise UsageError(f"{where}: data.{key} = {value!r} {verb} the trainer's batches, and objective "
                             f"{recipe['objective']['name']!r} trains on batches it draws itself")
    if binarize.mode(recipe) != "none" and recipe["model"].get("likelihood") != "bernoulli":
        raise UsageError(f"{where}: binarised digits need a Bernoulli likelihood, not {recipe['model'].get('likelihood')!r}")


def average_gradients(params: list, world: int) -> None:
    """Average the gradients of ``params`` over the ranks: one all-reduce of them flattened, plus one of which
    of them have a gradient, so a parameter no rank used keeps grad None (Adam then leaves it alone, as in one
    process), and one that some rank used gets the mean with zeros from the others."""
    has = torch.tensor([float(p.grad is not None) for p in params], device=params[0].device)
    dist.all_reduce(has)
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params])
    dist.all_reduce(flat)
    flat /= world
    start = 0
    for p, used in zip(params, has.tolist()):
        n = p.numel()
        if used:
            p.grad = flat[start : start + n].view_as(p).clone()
        start += n


def check_in_sync(model, objective) -> None:
    """Under DDP every rank must end with the same weights (the model's, and the objective's networks): a
    gradient that one rank did not share would let them drift apart silently, and rank 0 alone writes the
    checkpoint. Compared through a checksum of every parameter, before anything is written."""
    sums = torch.stack([torch.stack([p.detach().double().sum(), p.detach().double().pow(2).sum()])
                        for p in [*model.parameters(), *objective.parameters()]]).flatten()
    low, high = sums.clone(), sums.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    if not torch.allclose(low, high, rtol=1e-6, atol=1e-9):
        raise VaezooError("the DDP ranks ended training with different weights (a gradient was not averaged across "
                          "them); nothing was written")


def _batch(data: torch.Tensor, idx: torch.Tensor, device) -> torch.Tensor:
    x = data[idx]
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    return x.to(device, non_blocking=True)


# ---------------------------------------------------------------- training state I/O
def _flat_optimizer(prefix: str, opt, tensors: dict) -> dict:
    sd = opt.state_dict()
    for idx, st in sd["state"].items():
        for name, val in st.items():
            tensors[f"{prefix}.{idx}.{name}"] = val.detach().cpu().clone() if torch.is_tensor(val) else torch.tensor(val)
    return {"param_groups": sd["param_groups"]}


def _unflat_optimizer(prefix: str, opt, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, val in tensors.items():
        if key.startswith(prefix + "."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = val
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


CURVE_KEYS = ("neg_elbo", "kl", "recon", "error_rate")   # what a validation check records, where the model reports it


def curve_point(val: dict, step: int) -> dict:
    """{step, neg_elbo, kl, ...}: the CURVE_KEYS of validation metrics, as one entry of validation_curve."""
    return {"step": step, **{k: round(float(val[k]), 4) for k in CURVE_KEYS if k in val}}


def validation_check(model, xv, yv, step: int) -> dict:
    """The curve point of the held-out digits, without the NLL; the RNG is forked, so a check does not change
    what training draws next (a resumed run draws the same)."""
    with torch.random.fork_rng(devices=[]):
        val = model.validation_metrics(xv, yv, 0)
    model.train()
    return curve_point(val, step)


def save_state(path: Path, model, objective, opt, aux_opts: dict, sampler, step, recipe, elapsed, curve=()) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"objective.{k}": v.detach().cpu().contiguous() for k, v in objective.state_dict().items()})
    meta = {"opt": _flat_optimizer("opt", opt, tensors),
            "aux_opts": {name: _flat_optimizer(f"aux_opt_{name}", o, tensors) for name, o in aux_opts.items()}}
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta.update(step=step, epoch=sampler.epoch, offset=sampler.offset, recipe=recipe, elapsed=elapsed, curve=list(curve))
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"vaezoo_train_state": json.dumps(meta)})


def load_state(path: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads(fh.metadata()["vaezoo_train_state"])
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # corrupt or foreign file: say so in one line
        raise VaezooError(f"cannot resume from {path}: {exc}") from None
    return meta, tensors


def _strip(prefix: str, tensors: dict) -> dict:
    return {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


# ---------------------------------------------------------------- the loop
def prepare_out(out: Path, resume: bool, force: bool) -> bool:
    """Check the output folder; returns True when there is a state to resume from. A folder whose files
    are not a vaezoo run (a foreign config.json, a lone metrics.json) is refused even with --force."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    state = out / STATE
    if resume:
        if not state.is_file():
            raise UsageError(f"nothing to resume in {out} (no {STATE})")
        return True
    if state.is_file() and not force:
        raise UsageError(f"an unfinished run is in {out}; pass --resume to continue it or --force to start over")
    if (out / WEIGHTS).exists() and not force:
        raise UsageError(f"{out} already holds a trained model; pass --force to retrain it")
    if (out / CONFIG).exists():
        try:
            read_config(out)
        except VaezooError:
            raise UsageError(f"{out / CONFIG} is not a vaezoo checkpoint's; train into another folder "
                             "(nothing there is replaced, with or without --force)") from None
        if not force:
            raise UsageError(f"{out} already holds a checkpoint ({CONFIG}); pass --force to replace it")
    elif (out / METRICS).exists():
        raise UsageError(f"{out} holds a {METRICS} but no vaezoo {CONFIG}: not a checkpoint folder; train into another folder")
    return False


def resumed_recipe(stored: dict, asked: dict, overrides: dict | None, out: Path, step: int) -> dict:
    """The recipe a resumed run continues with: the stored one. It must be the same model, the command
    line may only change the length, and a setting asked for that differs from the run is refused
    (it would be silently ignored otherwise). Without ``overrides`` (the Python API) the length is
    ``asked``'s; with them, the stored length unless --steps is given."""
    if asked["id"] != stored["id"]:
        raise UsageError(f"{out} holds an unfinished run of {stored['id']}, not {asked['id']}: resume it as "
                         f"`vaezoo train {stored['id']} --resume --out {out}`, or train {asked['id']} elsewhere")
    recipe = json.loads(json.dumps(stored))
    steps = asked["train"]["steps"] if overrides is None else overrides.get("train", {}).get("steps")
    for table, values in (overrides or {}).items():
        for key, value in values.items():
            if (table, key) != ("train", "steps") and stored.get(table, {}).get(key) != value:
                raise UsageError(f"--{key.replace('_', '-')} {value} differs from the run being resumed ({table}.{key} = "
                                 f"{stored.get(table, {}).get(key)!r}); a resumed run keeps its settings (--force starts over)")
    if steps is not None:
        if int(steps) < step:
            raise UsageError(f"--steps {steps} is fewer than the {step} steps already trained in {out}")
        recipe["train"]["steps"] = int(steps)
    return recipe


def clear_out(out: Path) -> None:
    """--force: drop the previous run's own files (its state, weights, config, metrics and the files its
    manifest lists), once the new run has been built (a bad recipe keeps them). Other files stay."""
    listed = []
    if (out / CONFIG).is_file():
        listed = sorted((read_config(out).get(MANIFEST_KEY) or {}).keys())
    for name in {STATE, WEIGHTS, CONFIG, METRICS, *listed}:
        path = safe_path(out, name) if name != STATE else out / STATE
        path.unlink(missing_ok=True)
    graphs = out / ONNX_DIR
    if graphs.is_dir():  # folders the old graphs and test data leave empty go too, deepest first
        for folder in sorted((p for p in graphs.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True) + [graphs]:
            if not any(folder.iterdir()):
                folder.rmdir()


def set_threads(recipe: dict, threads: int | None) -> None:
    """CPU threads for torch: the MLP backbones' small matrix products run fastest on one thread
    (measured on 2 cores: the same dp-vae-moons run took 11 s with one thread and 170 s with two
    while another process was busy); conv backbones use every core. ``threads`` overrides."""
    if threads is None or threads <= 0:
        threads = 1 if recipe["model"].get("backbone") == "mlp" else (os.cpu_count() or 1)
    torch.set_num_threads(threads)


def lr_at(tcfg: dict, step: int, total: int) -> float:
    """Learning rate of ``step``: ``train.lr`` ("constant"), or "cosine" annealing to ``lr_final`` x lr."""
    lr = float(tcfg["lr"])
    kind = tcfg["lr_schedule"]
    if kind == "constant":
        return lr
    if kind == "cosine":
        floor = lr * float(tcfg["lr_final"])
        return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1)))
    raise UsageError(f"unknown train.lr_schedule {kind!r} (constant, cosine)")


def train_step(model, objective, opt, aux_opts: dict, batches, step: int, tcfg: dict, runner, world: int = 1) -> dict:
    """One optimiser step of the model, then of each auxiliary network; the stats (tensors) of the step.
    Also what benchmarks/bench_steps.py times, so its seconds per step are the trainer's."""
    for g in opt.param_groups:  # a pure function of the step, so resuming needs no scheduler state
        g["lr"] = lr_at(tcfg, step, int(tcfg["steps"]))
    loss, stats = objective(model, batches, step, runner=runner)
    if not torch.isfinite(loss):
        raise VaezooError(f"loss became {float(loss)} at step {step}; lower the learning rate (--lr) or check the data")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if world > 1:
        average_gradients(list(model.parameters()), world)
    if float(tcfg["grad_clip"]) > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(tcfg["grad_clip"]))
    opt.step()
    for aux in objective.auxiliaries():  # training-only networks, each on its own loss after the model step
        aux_loss = aux.loss()
        if aux_loss is None:   # the objective skips this network's step (a GAN's balancing)
            continue
        aux_opt = aux_opts[aux.name]
        aux_opt.zero_grad(set_to_none=True)
        aux_loss.backward()
        if world > 1:
            average_gradients(list(aux.module.parameters()), world)
        aux_opt.step()
        stats[aux.name] = aux_loss.detach()
    return stats


def train(recipe: dict, out: Path, *, device: str = "auto", resume: bool = False, force: bool = False,
          data_dir: str | None = None, progress: bool = True, stop_after: int | None = None,
          threads: int | None = None, overrides: dict | None = None) -> dict:
    """Train a recipe into ``out``. ``stop_after`` ends the process's work early (tests of resume).

    ``overrides`` are the settings the command line asked for ({"train": {"steps": ...}, ...}); on
    resume they are checked against the stored run (see :func:`resumed_recipe`)."""
    from vaezoo.data import load_dataset
    from vaezoo.models import build_model
    from vaezoo.train.objectives import build_objective

    dev = pick_device(device)
    set_threads(recipe, threads)
    ddp = init_distributed(dev)
    out = Path(out)
    has_state = prepare_out(out, resume, force) if ddp.main else (out / STATE).is_file() and resume
    meta, tensors = load_state(out / STATE) if has_state else ({}, {})
    if meta:
        recipe = resumed_recipe(meta["recipe"], recipe, overrides, out, int(meta["step"]))
    tcfg = recipe["train"]
    lr_at(tcfg, 0, 1)  # an unknown train.lr_schedule fails here, before anything is written
    torch.manual_seed(int(tcfg["seed"]))

    train_set = load_dataset(recipe["data"]["name"], "train", data_dir=data_dir)
    val_set = load_dataset(recipe["data"]["name"], "val", data_dir=data_dir)
    config = make_config(recipe)
    model = build_model(config).to(dev)
    objective = build_objective(recipe, len(train_set)).to(dev)
    check_batch_transforms(recipe, objective)
    objective.attach(train_set, dev)
    opt = torch.optim.Adam(model.parameters(), lr=float(tcfg["lr"]))
    auxiliaries = objective.auxiliaries()
    aux_opts = {a.name: torch.optim.Adam(a.module.parameters(), lr=a.lr, betas=a.betas) for a in auxiliaries}

    step, elapsed = 0, 0.0
    sampler = EpochSampler(len(train_set), int(tcfg["batch_size"]), int(tcfg["seed"]), ddp)
    if meta:
        model.load_state_dict(_strip("model", tensors))
        objective.load_state_dict(_strip("objective", tensors))
        _unflat_optimizer("opt", opt, tensors, meta["opt"])
        for name, aux_opt in aux_opts.items():
            _unflat_optimizer(f"aux_opt_{name}", aux_opt, tensors, meta["aux_opts"][name])
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and dev.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"])
        step, elapsed = int(meta["step"]), float(meta["elapsed"])
        sampler = EpochSampler(len(train_set), int(tcfg["batch_size"]), int(tcfg["seed"]), ddp, meta["epoch"], meta["offset"])
        if ddp.main:
            log(f"resuming {recipe['id']} from step {step} in {out}")

    # Not DistributedDataParallel: several objectives compute their loss outside the model's forward pass (M2's
    # bounds, the GANs' decoder-only passes), which DDP's wrapper would not see; train_step averages by hand.
    runner = model
    data = _to_tensor(train_set)
    total = int(tcfg["steps"])
    bar = Progress(total, step, desc=recipe["id"], enabled=progress and ddp.main)
    if ddp.main:
        if force and not has_state:
            clear_out(out)
        out.mkdir(parents=True, exist_ok=True)
    ecfg = recipe["eval"]
    n_val = min(len(val_set), int(ecfg["max_examples"]))
    xv = _batch(torch.from_numpy(val_set.x), torch.arange(n_val), dev)
    if binarize.mode(recipe) != "none":   # scored on digits binarised once, as `vaezoo evaluate` scores them
        xv = torch.from_numpy(binarize.fixed(xv.cpu().numpy())).to(dev)
    yv = torch.from_numpy(val_set.y[:n_val]).long().to(dev) if val_set.y is not None else None
    every = int(tcfg["eval_every"])   # 0: no checks during training
    curve: list = list(meta.get("curve", [])) if meta else []
    model.train()
    objective.train()   # adaptive objective state (GECO's lambda) moves only in training mode
    t_start = time.perf_counter() - elapsed
    last_stats: dict = {}
    while step < total:
        batches = [_batch(data, sampler.next(), dev) for _ in range(objective.batches_per_step)]
        batches = binarized(augment.augmented(batches, recipe), recipe)   # augmented grey levels, then binarised
        stats = train_step(model, objective, opt, aux_opts, batches, step, tcfg, runner, ddp.world)
        step += 1
        last_stats = {k: float(v) for k, v in stats.items()}
        bar.advance(1, loss=last_stats["loss"], **{k: last_stats[k] for k in ("kl", *objective.progress_stats) if k in last_stats})
        if ddp.main and every and step % every == 0 and step < total:   # the last step's check is the final evaluation
            curve.append(validation_check(model, xv, yv, step))
            if bar.enabled:
                log("validation at " + ", ".join(f"{k} {v:.4g}" for k, v in curve[-1].items()))
        if ddp.main and (step % int(tcfg["checkpoint_every"]) == 0 or step == total):
            save_state(out / STATE, model, objective, opt, aux_opts, sampler, step, recipe, time.perf_counter() - t_start, curve)
        if stop_after is not None and step >= stop_after:
            bar.close()
            return {"stopped_at": step}
    bar.close()
    seconds = time.perf_counter() - t_start
    if ddp.world > 1:
        check_in_sync(model, objective)
        dist.destroy_process_group()
    if not ddp.main:
        return {}

    log(f"evaluating on {n_val} validation examples (importance-sampled NLL, K={ecfg['nll_samples']})")
    val = model.validation_metrics(xv, yv, int(ecfg["nll_samples"]))
    metrics = {
        "validation": {"split": "val", **val},
        # the checks every train.eval_every steps (no NLL), then the final evaluation's same numbers
        "validation_curve": curve + [curve_point(val, total)],
        "train": {
            "steps": total,
            "batch_size": int(tcfg["batch_size"]),
            # every batch counts (FactorVAE reads two per step)
            "epochs": round(total * objective.batches_per_step / max(sampler.steps_per_epoch, 1), 2),
            "examples": len(train_set),
            "seconds": round(seconds, 2),
            "final_stats": last_stats,
            "device": str(dev),
            "world_size": ddp.world,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "hardware": f"{platform.machine()} {os.cpu_count()} cpus" + (f", {torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else ""),
        },
    }
    metrics.update(objective.metrics_info())
    save_checkpoint(out, model, config, metrics)
    write_preview(out, backend="torch")   # the card's sample grid, in the manifest like the weights
    (out / STATE).unlink(missing_ok=True)
    nll = f"val NLL {val['nll']:.2f} nats, " if "nll" in val else ""
    score = f"-ELBO {val['neg_elbo']:.2f}" if "neg_elbo" in val else f"error {100 * val['error_rate']:.2f}%"  # a classifier has no ELBO
    log(f"wrote {out} ({nll}{score}) in {seconds:.0f}s")
    return metrics


def train_once(recipe: dict, out: Path, *, what: str | None = None, device: str = "auto", data_dir: str | None = None) -> dict:
    """metrics.json of the finished run in ``out``, trained first (from scratch, torch's current thread setting)
    when there is none: how the experiment scripts reuse their finished runs. ``what`` names the run in the
    progress lines (default: the recipe's id)."""
    done = Path(out) / METRICS
    if not done.is_file():
        t = time.time()
        print(f"training {what or recipe['id']} ({recipe['train']['steps']} steps) -> {out}", file=sys.stderr, flush=True)
        train(recipe, out, device=device, force=True, progress=False, data_dir=data_dir, threads=torch.get_num_threads())
        print(f"  done in {time.time() - t:.0f}s", file=sys.stderr, flush=True)
    return json.loads(done.read_text())

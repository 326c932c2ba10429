"""Seconds per training step of registry recipes, as the trainer runs them. Prints figures; with --write
also records them in train/recipes/step_times.json, where a model that is not available reads them to
say how long `vaezoo train` would take (`vaezoo sample dp-factor-celeba` on a machine without it).

    python benchmarks/bench_steps.py [IDS ...] [--steps 5] [--warmup 2] [--threads N] [--device cpu] [--write]

Each step is ``vaezoo.train.trainer.train_step`` (objective, backward, Adam, auxiliary networks) on the
recipe's nets and batch size, over random inputs of the dataset's shape (random labels where the
objective needs them): the time of a step does not depend on the pixel values, and this way a recipe is
timed without its dataset (CelebA is 1.4 GB). Data loading is not included; the trainer keeps the
training set in memory, so it is small next to a step. The median over --steps timed steps is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMES = REPO / "train" / "recipes" / "step_times.json"
DEFAULT_IDS = ["vae-celeba", "dp-factor-celeba", "vae-cifar10", "dp-factor-cifar10", "vae-svhn", "dp-factor-svhn",
               "vae-mnist", "dp-factor-mnist", "m2-mnist"]


def fake_train_set(recipe: dict, n: int):
    import numpy as np

    from vaezoo.data import DATASETS
    from vaezoo.data.base import Dataset

    info = DATASETS[recipe["data"]["name"]]
    rng = np.random.default_rng(0)
    if info.kind == "image":
        x = rng.integers(0, 256, size=(n, *info.shape), dtype=np.uint8)
    else:
        x = rng.standard_normal((n, *info.shape)).astype(np.float32)
    y = (np.arange(n) % info.num_classes).astype(np.int64) if info.num_classes else None   # every class alike
    return Dataset(info.name, "train", x, y, info)


def seconds_per_step(model_id: str, steps: int, warmup: int, device: str) -> float:
    import torch

    from vaezoo.models import build_model
    from vaezoo.recipes import resolve
    from vaezoo.runtime.device import pick_device
    from vaezoo.store.checkpoint import make_config
    from vaezoo.train.objectives import build_objective
    from vaezoo.train.trainer import _batch, train_step

    recipe = resolve(model_id)
    dev = pick_device(device)
    tcfg = recipe["train"]
    bs = int(tcfg["batch_size"])
    train_set = fake_train_set(recipe, max(4 * bs, 2 * int(recipe["data"].get("labels") or 0)))   # room for balanced labels
    torch.manual_seed(0)
    model = build_model(make_config(recipe)).to(dev).train()
    objective = build_objective(recipe, len(train_set)).to(dev).train()
    objective.attach(train_set, dev)
    opt = torch.optim.Adam(model.parameters(), lr=float(tcfg["lr"]))
    aux_opts = {a.name: torch.optim.Adam(a.module.parameters(), lr=a.lr, betas=a.betas) for a in objective.auxiliaries()}
    data = torch.from_numpy(train_set.x)
    times = []
    for step in range(warmup + steps):
        batches = [_batch(data, torch.randint(0, len(train_set), (bs,)), dev) for _ in range(objective.batches_per_step)]
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        train_step(model, objective, opt, aux_opts, batches, step, tcfg, model)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    return f"{platform.machine()} {os.cpu_count()} cpus, {torch.get_num_threads()} threads"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ids", nargs="*", default=DEFAULT_IDS)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per recipe (median recorded)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--write", action="store_true", help=f"record the figures in {TIMES.relative_to(REPO)}")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    kind = "gpu" if args.device.startswith("cuda") else "cpu"
    where = machine(args.device)
    load = round(os.getloadavg()[0], 2)   # other work on the machine inflates the figures: recorded beside them
    print(f"load average (1 min) at start: {load}")
    print(f"seconds per training step, median of {args.steps} after {args.warmup} warm-up, {where}, torch {torch.__version__}")
    from vaezoo.recipes import resolve

    rows = {}
    for mid in args.ids:
        s = seconds_per_step(mid, args.steps, args.warmup, args.device)
        total = int(resolve(mid)["train"]["steps"])
        rows[mid] = round(s, 5)
        print(f"  {mid:24s} {s:8.4f} s/step  x {total} steps = {s * total / 3600:7.2f} h", flush=True)
    if args.write:
        record = json.loads(TIMES.read_text()) if TIMES.is_file() else {}
        entry = record.setdefault(kind, {"seconds_per_step": {}})
        entry.update(machine=where, torch=torch.__version__, load_average=load, command=" ".join(["python", "benchmarks/bench_steps.py", *sys.argv[1:]]))
        entry["seconds_per_step"].update(rows)
        TIMES.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        print(f"recorded in {TIMES.relative_to(REPO)}")


if __name__ == "__main__":
    main()

"""DRAW on mnist5k: held-out NLL with and without attention against the VAE, training and sampling speed.
Prints figures; asserts nothing.

    python benchmarks/bench_draw.py [--steps 500] [--threads 1] [--nll-samples 1000] [--models ...] [--json]

Each model trains with the real trainer (``vaezoo.train.trainer.train``) for ``--steps`` steps of its recipe
(batch 100, seed 0) into a temporary folder; the NLL is the trainer's own evaluation, the model's
``validation_metrics``: importance sampling with K = --nll-samples (seed 1234) on the 500 mnist5k validation
digits (the split the trainer holds out). Training speed is the trainer's ``train.seconds`` (its loop only).
Sampling speed: the exported graphs (torchscript exporter; parity measured) through ONNX Runtime,
``Pipeline.sample`` of --sample-n images (noise drawn with numpy), best of three, after one warm-up call.

``--profile``: where a training step's time goes, per model of --models (untrained, the recipe's sizes, batch
100 of random binary images, one thread): the forward pass split into its parts (read, encoder LSTM, q, decoder
LSTM, write: each wrapped in a timer, summed over the T steps) and the backward pass, of the median of 5 steps.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

MODELS = ("draw-mnist5k", "noattn-draw-mnist5k", "vae-mnist5k")


def run(model_id: str, steps: int, nll_samples: int, threads: int, sample_n: int, root: Path, reuse: Path | None) -> dict:
    from vaezoo import load
    from vaezoo.export import export_checkpoint
    from vaezoo.recipes import resolve
    from vaezoo.train.trainer import train

    recipe = resolve(model_id, {"train": {"steps": steps}, "eval": {"nll_samples": nll_samples}})
    if reuse is not None and (reuse / model_id / "metrics.json").is_file():   # trained before with these settings
        out = reuse / model_id
        metrics = json.loads((out / "metrics.json").read_text())
        if metrics["train"]["steps"] != steps or metrics["validation"]["nll_samples"] != nll_samples:
            raise SystemExit(f"{out} was trained with other --steps / --nll-samples")
    else:
        out = root / model_id
        metrics = train(recipe, out, device="cpu", progress=False, threads=threads)
    # parity is measured and reported, not enforced: a trained DRAW's logits reach |260|, where float32's
    # rounding over T recurrent steps exceeds the absolute 1e-4 of --check (see benchmarks/README.md)
    report = export_checkpoint(out, exporter="torchscript", force=True, log=None)
    parity = max(max(p["parity"].values()) for p in report["parts"].values())
    pipe = load(str(out), backend="onnx")
    pipe.sample(16, seed=0)   # warm-up: sessions created
    best = min(_timed(lambda: pipe.sample(sample_n, seed=1)) for _ in range(3))
    val, tr = metrics["validation"], metrics["train"]
    return {"model": model_id, "steps": steps, "nll": val["nll"], "neg_elbo": val["neg_elbo"], "kl": val["kl"],
            "nll_samples": val["nll_samples"], "val_examples": val["examples"],
            "train_steps_per_s": steps / tr["seconds"], "train_seconds": tr["seconds"],
            "sample_per_s": sample_n / best, "sample_n": sample_n, "threads": tr["threads"], "parity_max_abs": parity,
            "graph_bytes": {k: p["bytes"] for k, p in report["parts"].items()}}


PARTS = ("read", "enc", "q", "dec", "write")


def profile_step(model_id: str, repeats: int = 5) -> dict:
    """{part: seconds} of one training step (forward by part, then backward): the step of median length among
    ``repeats`` (one step's parts, so that they add up to its time; medians taken part by part need not)."""
    import torch

    from vaezoo.models import build_model
    from vaezoo.recipes import resolve
    from vaezoo.store.checkpoint import make_config

    torch.set_num_threads(1)
    model = build_model(make_config(resolve(model_id)))
    x = torch.rand(100, *model.shape).round()
    spent = dict.fromkeys(PARTS, 0.0)

    def timed(name, fn):
        def call(*args, **kw):
            t0 = time.perf_counter()
            out = fn(*args, **kw)
            spent[name] += time.perf_counter() - t0
            return out
        return call

    model.read, model.write = timed("read", model.read), timed("write", model.write)
    for name in ("enc", "q", "dec"):   # the submodules' forward (an instance attribute wins over the class's)
        sub = getattr(model, name)
        sub.forward = timed(name, sub.forward)
    rows = []
    for _ in range(repeats + 1):   # the first is a warm-up
        spent.update(dict.fromkeys(PARTS, 0.0))
        t0 = time.perf_counter()
        fwd = model.forward_pass(x)
        loss = (fwd.kl - fwd.log_px).mean()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        rows.append({**spent, "forward rest": (t1 - t0) - sum(spent.values()), "backward": t2 - t1, "step": t2 - t0})
    timed_rows = sorted(rows[1:], key=lambda r: r["step"])
    return timed_rows[len(timed_rows) // 2]


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--nll-samples", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sample-n", type=int, default=1000)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--reuse", type=Path, help="A folder of <model id>/ checkpoints trained before (`vaezoo train ID "
                    "--steps S --out DIR/ID`): their metrics are read instead of training again")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--profile", action="store_true", help="where a training step's time goes (no training)")
    args = ap.parse_args()
    if args.profile:
        for mid in args.models:
            p = profile_step(mid)
            print(f"{mid}: {p['step'] * 1000:.0f} ms per training step of 100 (" + ", ".join(
                f"{k} {100 * v / p['step']:.0f} %" for k, v in p.items() if k != "step") + ")")
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mid in args.models:
            print(f"training {mid} ...", file=sys.stderr)
            rows.append(run(mid, args.steps, args.nll_samples, args.threads, args.sample_n, Path(tmp), args.reuse))
    if args.json:
        print(json.dumps(rows))
        return
    print(f"| model | steps | val NLL (K={args.nll_samples}) | -ELBO | KL | train steps/s | samples/s (ONNX) | parity (max abs) | decoder.onnx |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['steps']} | {r['nll']:.2f} | {r['neg_elbo']:.2f} | {r['kl']:.2f} | "
              f"{r['train_steps_per_s']:.2f} | {r['sample_per_s']:.0f} | {r['parity_max_abs']:.2g} | "
              f"{r['graph_bytes']['decoder'] / 1024:.0f} KiB |")


if __name__ == "__main__":
    main()

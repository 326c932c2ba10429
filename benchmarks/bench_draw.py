"""DRAW on mnist5k: held-out NLL with and without attention against the VAE, training and sampling speed.
Prints figures; asserts nothing.

    python benchmarks/bench_draw.py [--steps 500] [--threads 1] [--nll-samples 1000] [--models ...] [--json]

Each model trains with the real trainer (``vaezoo.train.trainer.train``) for ``--steps`` steps of its recipe
(batch 100, seed 0) into a temporary folder; the NLL is the trainer's own evaluation, the model's
``validation_metrics``: importance sampling with K = --nll-samples (seed 1234) on the 500 mnist5k validation
digits (the split the trainer holds out). Training speed is the trainer's ``train.seconds`` (its loop only).
Sampling speed: the exported graphs (torchscript exporter; parity measured) through ONNX Runtime,
``Pipeline.sample`` of --sample-n images (noise drawn with numpy), best of three, after one warm-up call.
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
    args = ap.parse_args()
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

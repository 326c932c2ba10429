"""`vaezoo evaluate`'s cost, ONNX Runtime against torch, for one model (default: the bundled dp-factor-mnist5k).
Prints figures; asserts nothing.

    python benchmarks/bench_evaluate.py [--model ID_OR_FOLDER] [--backends onnx,torch] [--samples 5000] [--json out.json]

1. Cold process: wall time of `vaezoo evaluate MODEL --backend B` (its default metric set, the protocol the
   command prints), the console script beside this interpreter, once per backend.
2. In process, per metric (`vaezoo.evaluation.suite.run` on one metric at a time, after a warm-up run of a
   small set): wall seconds and throughput: generated samples/s for fid and fid-lp (the LP pool is --pool
   times larger), prior + posterior draws/s for skl, importance samples/s (examples x K) for nll.
3. The NLL's throughput as a share of the decoder graph's own: the decoder part alone on the same number of
   codes, in the same batches (`likelihood.ROWS`), with the same backend. The rest is the encoder pass, the
   noise, the prior's density (the flow for dp models) and the log-likelihood in numpy.

The figures move with the machine's load: compare ONNX with torch, and NLL with the decoder, inside one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cold_evaluate(model: str, backend: str, samples: int) -> float:
    exe = Path(sys.executable).parent / "vaezoo"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from vaezoo.cli import main; main()"]
    t = time.perf_counter()
    r = subprocess.run(cmd + ["evaluate", model, "--backend", backend, "--samples", str(samples), "--json"],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"error: vaezoo evaluate {model} --backend {backend} failed: {r.stderr.strip()}")
    return wall


def per_metric(pipe, names, proto) -> dict:
    from vaezoo.evaluation import suite

    suite.run(pipe, [n for n in names if n != "nll"][:1], suite.Protocol(**{**proto.__dict__, "samples": 200}))   # warm-up
    out = {}
    for name in names:
        t = time.perf_counter()
        res = suite.run(pipe, [name], proto)[name]
        wall = time.perf_counter() - t
        if name == "nll":
            work, unit = res["protocol"]["examples"] * res["protocol"]["K"], "importance samples/s"
        elif name == "fid-lp":
            work, unit = proto.samples * proto.pool, "prior draws ranked/s"
        elif name == "skl":
            work, unit = 2 * proto.samples, "draws/s"
        else:
            work, unit = proto.samples, "samples/s"
        out[name] = {"seconds": wall, "throughput": work / wall, "unit": unit, "value": res["value"], "work": work}
    return out


def decoder_alone(pipe, codes: int) -> float:
    """Codes/s of the decoder part alone, in the NLL's batches."""
    from vaezoo.evaluation.likelihood import ROWS

    rng = np.random.default_rng(0)
    z = rng.standard_normal((min(codes, ROWS), *pipe.latent_shape)).astype(np.float32)
    pipe.backend.run("decoder", z)   # warm-up
    t, done = time.perf_counter(), 0
    while done < codes:
        pipe.backend.run("decoder", z)
        done += len(z)
    return done / (time.perf_counter() - t)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="dp-factor-mnist5k")
    ap.add_argument("--backends", default="onnx,torch")
    ap.add_argument("--samples", type=int, default=5000, help="as `vaezoo evaluate --samples` (its default)")
    ap.add_argument("--pool", type=int, default=10)
    ap.add_argument("--classifier", default="lenet-mnist5k")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold-process runs")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from vaezoo.evaluation import suite
    from vaezoo.runtime.pipeline import load_pipeline

    report = {"model": args.model, "samples": args.samples, "machine": f"{platform.machine()} {os.cpu_count()} cpus",
              "backends": {}}
    for backend in args.backends.split(","):
        pipe = load_pipeline(args.model, backend, "cpu")
        names = suite.default_metrics(pipe)
        proto = suite.Protocol(samples=args.samples, seed=0, k=1, pool=args.pool, classifier=args.classifier)
        log(f"{backend}: {', '.join(names)}")
        entry = {"metrics": per_metric(pipe, names, proto)}
        if "nll" in entry["metrics"]:
            entry["decoder_codes_per_s"] = decoder_alone(pipe, entry["metrics"]["nll"]["work"])
            entry["nll_share_of_decoder"] = entry["metrics"]["nll"]["throughput"] / entry["decoder_codes_per_s"]
        if not args.no_cold:
            entry["cold_evaluate_s"] = cold_evaluate(args.model, backend, args.samples)
        report["backends"][backend] = entry
    report["load_average"] = os.getloadavg()[0]

    print(f"\n{args.model}: `vaezoo evaluate` (default metrics, --samples {args.samples}, --pool {args.pool}, seed 0), "
          f"{report['machine']}, load average {report['load_average']:.1f} after the runs\n")
    print("| backend | metric | seconds | throughput | value |")
    print("|---|---|---:|---:|---:|")
    for backend, entry in report["backends"].items():
        for name, m in entry["metrics"].items():
            value = m["value"] if isinstance(m["value"], (int, float)) else "-"
            print(f"| {backend} | {name} | {m['seconds']:.2f} | {m['throughput']:,.0f} {m['unit']} | "
                  + (f"{value:.4g}" if value != "-" else value) + " |")
        if "cold_evaluate_s" in entry:
            print(f"| {backend} | whole command, cold process | {entry['cold_evaluate_s']:.2f} | | |")
    for backend, entry in report["backends"].items():
        if "nll_share_of_decoder" in entry:
            print(f"\n{backend}: decoder alone {entry['decoder_codes_per_s']:,.0f} codes/s; the NLL runs at "
                  f"{100 * entry['nll_share_of_decoder']:.0f} % of it")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

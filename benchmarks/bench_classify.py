"""End-to-end throughput of `vaezoo classify`: a folder of PNG files and one big .npy, per backend.

    python benchmarks/bench_classify.py --model m2-mnist5k [--pngs 10000] [--npy 100000] [--backends onnx,torch] [--threads 1]

Inputs are real MNIST digits from the bundled mnist5k set (repeated to the requested count).
Each run is a fresh `vaezoo classify MODEL INPUT -o preds.csv` process; reported: wall seconds of
the whole process (start-up included), items/s over that wall time, the engine's own items/s
(as the command prints it), and the process's peak resident memory (ru_maxrss). ``--threads N`` sets
VAEZOO_THREADS (ONNX Runtime threads) and OMP_NUM_THREADS (torch) for each run; the
header line also prints the 1-minute load average, since the figures only mean something on an idle machine.
Target: the .npy path >= 20,000 digits/s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RUNNER = """
import resource, sys
from vaezoo.cli import main
sys.argv = ['vaezoo'] + sys.argv[1:]
try:
    main()
finally:
    print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def make_inputs(work: Path, n_png: int, n_npy: int) -> tuple[Path, Path]:
    from PIL import Image

    from vaezoo.data import load_dataset

    x = np.concatenate([load_dataset("mnist5k", s).x[:, 0] for s in ("train", "val")])
    pngs = work / f"pngs{n_png}"
    if not pngs.is_dir():
        pngs.mkdir()
        for i in range(n_png):
            sub = pngs / f"{i // 1000:03d}"
            sub.mkdir(exist_ok=True)
            Image.fromarray(x[i % len(x)]).save(sub / f"{i:06d}.png")
    npy = work / f"digits{n_npy}.npy"
    if not npy.is_file():
        np.save(npy, x[np.arange(n_npy) % len(x)])
    return pngs, npy


def run(model: str, inp: Path, backend: str, work: Path, batch: int, threads: int = 0, decode: int = 1) -> dict:
    out = work / f"preds-{backend}-{inp.stem}.csv"
    cmd = [sys.executable, "-c", RUNNER, "classify", model, str(inp), "-o", str(out), "--backend", backend,
           "--force", "-q", "--batch-size", str(batch), "--decode-threads", str(decode)]
    t = time.perf_counter()
    env = dict(os.environ)
    if threads:
        env.update(VAEZOO_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        return {"input": inp.name, "backend": backend, "error": r.stderr.strip()[-300:]}
    items = int(re.search(r"classified (\d+) of", r.stderr).group(1))
    engine_rate = float(re.search(r"\((\d+) items/s", r.stderr).group(1))
    rss = int(re.search(r"MAXRSS_KB (\d+)", r.stderr).group(1)) / 1024
    return {"input": inp.name, "backend": backend, "items": items, "wall_s": round(wall, 2),
            "items_per_s_wall": round(items / wall), "items_per_s_engine": engine_rate, "peak_rss_mb": round(rss)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="m2-mnist5k")
    ap.add_argument("--pngs", type=int, default=10000)
    ap.add_argument("--npy", type=int, default=100000)
    ap.add_argument("--backends", default="onnx,torch")
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--decode-threads", type=int, default=1, help="passed to vaezoo classify (image-decoding thread pool)")
    ap.add_argument("--threads", type=int, default=0, help="VAEZOO_THREADS and OMP_NUM_THREADS for each run (0: leave as they are)")
    ap.add_argument("--work", type=Path, default=None, help="folder for the generated inputs (kept between runs)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.gettempdir()) / "vaezoo-bench-classify"
    work.mkdir(parents=True, exist_ok=True)
    pngs, npy = make_inputs(work, args.pngs, args.npy)
    rows = [run(args.model, inp, b, work, args.batch_size, args.threads, args.decode_threads) for inp in (npy, pngs) for b in args.backends.split(",")]
    threads = args.threads or os.environ.get("VAEZOO_THREADS") or "default"
    print(f"vaezoo classify {args.model}: {os.cpu_count()} CPUs, threads {threads}, decode threads {args.decode_threads}, batch {args.batch_size}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'input':>16} | {'backend':>7} | {'items':>7} | {'wall s':>7} | {'items/s (wall)':>14} | {'items/s (engine)':>16} | {'peak RSS MB':>11}")
    for r in rows:
        if "error" in r:
            print(f"{r['input']:>16} | {r['backend']:>7} | failed: {r['error']}")
            continue
        print(f"{r['input']:>16} | {r['backend']:>7} | {r['items']:>7} | {r['wall_s']:>7} | {r['items_per_s_wall']:>14} | "
              f"{r['items_per_s_engine']:>16.0f} | {r['peak_rss_mb']:>11}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

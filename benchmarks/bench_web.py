"""Time the `vaezoo export-web` page's 64-sample grid in headless Chromium against `vaezoo sample`.

    python benchmarks/bench_web.py                       # dp-factor-mnist5k, seed 0, 5 page loads x 10 grids
    python benchmarks/bench_web.py --model m2-mnist5k --loads 3 --repeat 20 --json

Page: the site is exported into a temporary folder, served from 127.0.0.1, and loaded ``--loads`` times in
real time (no virtual time); each load reports the time of its first grid (eps -> prior_inverse ->
decoder -> pixels on the canvas; the WebAssembly sessions are already created) and of ``--repeat`` more
grids of the same seed. Python: the same grid through vaezoo's pipeline (ONNX Runtime, in one process,
after one warm-up call), and the whole `vaezoo sample -n 64 -o x.npy` command (process start included).
It also prints the largest difference between the page's grid values and the pipeline's. Needs chromium
and npm (or --ort-web). Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from web_browser import chromium, live_report, serve  # noqa: E402


def vaezoo(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from vaezoo.cli import main; main()", *args], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="dp-factor-mnist5k")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--ort-web", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if chromium() is None:
        sys.exit("bench_web: chromium not found")

    from vaezoo.runtime.pipeline import load_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        vaezoo("export-web", args.model, "-o", str(site), *(["--ort-web", args.ort_web] if args.ort_web else []))
        first, repeats, pages = [], [], []
        with serve(site) as server:
            for _ in range(args.loads):
                got = live_report(server, f"{server.url}index.html?seed={args.seed}&test=1&report=1&repeat={args.repeat}")
                first.append(got["grid_ms"])
                repeats += got["repeat_ms"]
                pages.append(np.frombuffer(base64.b64decode(got["images"]), "<f4"))
        cli = [vaezoo("sample", args.model, "-n", "64", "--seed", str(args.seed), "--backend", "onnx",
                      "-o", str(Path(tmp) / f"x{i}.npy")) * 1000 for i in range(args.loads)]

    pipe = load_pipeline(args.model, "onnx")
    want = pipe.sample(64, args.seed).reshape(-1)   # also the warm-up: sessions created
    parity = max(float(np.abs(p - want).max()) for p in pages)
    calls = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        pipe.sample(64, args.seed)
        calls.append((time.perf_counter() - t0) * 1000)

    rows = {
        "page: first grid of a load (ms)": first,
        "page: later grids (ms)": repeats,
        "pipeline.sample(64), onnxruntime (ms)": calls,
        "vaezoo sample -n 64 -o x.npy, whole process (ms)": cli,
    }
    summary = {k: {"median": statistics.median(v), "min": min(v), "n": len(v)} for k, v in rows.items()}
    summary["max_abs_diff_page_vs_pipeline"] = parity
    summary["settings"] = {"model": args.model, "seed": args.seed, "loads": args.loads, "repeat": args.repeat,
                           "python_ort_threads": pipe.backend.threads, "page_wasm_threads": 1}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{args.model}, 64 samples, seed {args.seed}; page: onnxruntime-web WebAssembly, 1 thread; "
          f"python: onnxruntime, {pipe.backend.threads} intra-op threads")
    for k, v in rows.items():
        print(f"  {k:<52} median {statistics.median(v):8.1f}   min {min(v):8.1f}   (n={len(v)})")
    print(f"  max |page - pipeline| over the {len(pages)} loads' grids: {parity:.2g}")


if __name__ == "__main__":
    main()

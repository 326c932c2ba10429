"""Peak memory of the commands that produce N outputs, for N = 10^4, 10^5, 10^6 (prints a table).

    python benchmarks/bench_memory.py                      # dp-factor-mnist5k, m2-mnist5k, N up to 10^6
    python benchmarks/bench_memory.py --sizes 10000,100000 --keep /tmp/bench

Each command runs as a user would (the `vaezoo` console script, ONNX backend), in its own process; its
peak resident set size is read from ``resource.getrusage(RUSAGE_CHILDREN)`` of a small wrapper process
that runs only that command. The target: peak memory independent of N. Outputs are written to a
scratch folder and removed (``--keep DIR`` keeps them): at N = 10^6 `sample -o x.npy` writes 3.1 GB and
the classify input is 0.8 GB.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WRAPPER = ("import resource, subprocess, sys\n"
           "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
           "if r.returncode: sys.exit('failed: ' + r.stderr[-500:])\n"
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")


def peak_mb(args: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one command."""
    exe = str(Path(sys.executable).parent / "vaezoo")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", WRAPPER, exe, *args], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"vaezoo {' '.join(args)}: {r.stderr.strip()}")
    return int(r.stdout.strip()) / 1024, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="dp-factor-mnist5k")
    ap.add_argument("--classifier", default="m2-mnist5k")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--keep", default=None, help="write outputs here and keep them")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vaezoo-bench-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for n in sizes:
            out = work / f"sample-{n}.npy"
            rows.append(("sample -o x.npy", n, *peak_mb(["sample", args.model, "-n", str(n), "-o", str(out), "--force", "--backend", "onnx"])))
            out.unlink(missing_ok=True)
            steps = max(2, n // 16)  # 16 latent dims of the mnist5k models: 16 x steps images
            out = work / f"traverse-{n}.npy"
            rows.append(("traverse -o x.npy", 16 * steps, *peak_mb(["traverse", args.model, "--steps", str(steps), "-o", str(out), "--force",
                                                                    "--backend", "onnx"])))
            out.unlink(missing_ok=True)
            digits = work / f"digits-{n}.npy"
            rng = np.random.default_rng(0)
            arr = np.lib.format.open_memmap(digits, mode="w+", dtype=np.uint8, shape=(n, 28, 28))
            for i in range(0, n, 100_000):
                arr[i : i + 100_000] = rng.integers(0, 256, (min(100_000, n - i), 28, 28), dtype=np.uint8)
            arr.flush()
            del arr
            out = work / f"preds-{n}.csv"
            rows.append(("classify -o preds.csv", n, *peak_mb(["classify", args.classifier, str(digits), "-o", str(out), "--force",
                                                                "--backend", "onnx", "-q"])))
            out.unlink(missing_ok=True)
            digits.unlink(missing_ok=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'command':24s} {'N':>9s} {'peak RSS MB':>12s} {'seconds':>8s}")
    for name, n, mb, s in rows:
        print(f"{name:24s} {n:>9d} {mb:>12.0f} {s:>8.1f}")


if __name__ == "__main__":
    main()

"""ONNX Runtime vs torch benchmarks for one model (default dp-factor-mnist5k). Prints figures; asserts nothing.

    python benchmarks/bench_onnx.py [--model ID_OR_FOLDER] [--repeats 7] [--seconds 1.0] [--json out.json]

1. Cold-process wall time of ``vaezoo sample MODEL -n 64 -o grid.png --backend onnx|torch`` (the console
   script next to this interpreter, not a pyenv shim; median and min of --repeats runs), with the
   interpreter start and the main imports measured alone for context.
2. In-process decoder and encoder throughput (images/s) at batch 1, 64 and 4096: an ONNX Runtime session
   (``vaezoo.runtime.onnx_backend`` settings) against the torch part in eager mode (``torch.inference_mode``), same
   process, same thread count (physical cores).
3. The MLP decoder's achieved FLOP/s at batch 4096 (2 * multiply-adds of its Linear layers) as a share of
   this machine's fp32 matmul peak, measured here as the best of square matmuls in torch, numpy and ONNX
   Runtime.
4. fp16 / int8 graphs: file size, throughput and max abs error against the fp32 graph.

Model: a checkpoint folder, or a registry id resolved as the CLI does; when the id is not available the
script trains a quick one (``vaezoo train ID --steps 300``, see --train-steps) into ``$VAEZOO_HOME/bench/ID`` and exports it.
Variants are exported into a temporary folder, so the model's own folder is left as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BATCHES = (1, 64, 4096)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def vaezoo_exe() -> list[str]:
    exe = Path(sys.executable).parent / "vaezoo"
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from vaezoo.cli import main; main()"]


# ---------------------------------------------------------------- model
def prepare_model(spec: str, train_steps: int = 300) -> tuple[str, Path]:
    """(argument to pass to the CLI, checkpoint folder with fp32 graphs)."""
    from vaezoo.store.resolution import home, looks_like_path, resolve_model

    if looks_like_path(spec):
        folder = Path(spec)
        arg = str(folder)
    else:
        try:
            folder, arg = resolve_model(spec), spec
        except Exception as exc:  # noqa: BLE001 - not available: train a quick one
            folder = home() / "bench" / spec
            arg = str(folder)
            if not (folder / "model.safetensors").is_file():
                log(f"{spec} is not available ({exc}); training a quick one into {folder} ({train_steps} steps)")
                subprocess.run([*vaezoo_exe(), "train", spec, "--steps", str(train_steps), "--nll-samples", "16", "--out", str(folder), "--force", "-q"],
                               check=True)
    if not (folder / "onnx" / "decoder.onnx").is_file():
        from vaezoo.export import export_checkpoint
        from vaezoo.store.resolution import home

        if not str(folder.resolve()).startswith(str((home() / "bench").resolve())):
            # never write into someone's checkpoint (a bundled starter, the local store): export a scratch copy
            scratch = home() / "bench" / "exported" / folder.name
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
            for name in ("config.json", "model.safetensors", "metrics.json"):
                if (folder / name).is_file():
                    shutil.copy2(folder / name, scratch / name)
            folder = arg = scratch
            arg = str(arg)
        log(f"exporting {folder}")
        export_checkpoint(folder, check=True)
    return arg, folder


# ---------------------------------------------------------------- 1. cold start
def wall(cmd: list[str], env=None) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    return dt


def cold_start(arg: str, repeats: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="vaezoo-bench-")) / "grid.png"
    res: dict = {}
    cmds = {b: [*vaezoo_exe(), "sample", arg, "-n", "64", "-o", str(out), "--backend", b, "--force"] for b in ("onnx", "torch")}
    context = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import vaezoo.cli": [sys.executable, "-c", "import vaezoo.cli"],
        "import onnxruntime": [sys.executable, "-c", "import onnxruntime"],
        "import torch": [sys.executable, "-c", "import torch"],
    }
    for name, cmd in {**cmds, **context}.items():
        wall(cmd)  # warm the page cache
    times: dict[str, list[float]] = {name: [] for name in {**cmds, **context}}
    for _ in range(repeats):
        for name, cmd in {**cmds, **context}.items():
            times[name].append(wall(cmd))
    for name, ts in times.items():
        res[name] = {"median_s": round(statistics.median(ts), 3), "min_s": round(min(ts), 3)}
    shutil.rmtree(out.parent, ignore_errors=True)
    return res


# ---------------------------------------------------------------- 2. throughput
def rates(fns: dict, batch: int, seconds: float, rounds: int = 5, min_iters: int = 3) -> dict:
    """{name: items/s} for competing callables, timed in interleaved windows (round robin, best window of
    each), so that a busy machine slows every competitor alike instead of whichever ran during a spike."""
    for fn in fns.values():
        for _ in range(2):
            fn()
    best = {name: 0.0 for name in fns}
    window = seconds / rounds
    for _ in range(rounds):
        for name, fn in fns.items():
            iters, t0 = 0, time.perf_counter()
            while True:
                fn()
                iters += 1
                dt = time.perf_counter() - t0
                if dt >= window and iters >= min_iters:
                    break
            best[name] = max(best[name], batch * iters / dt)
    return best


def rate(fn, batch: int, seconds: float) -> float:
    return rates({"fn": fn}, batch, seconds)["fn"]


def make_inputs(part: str, config: dict, batch: int) -> np.ndarray:
    rng = np.random.default_rng(batch)
    if part == "encoder":
        return rng.random((batch, *config["input"]["shape"]), dtype=np.float32)
    return rng.standard_normal((batch, int(config["latent_dim"]))).astype(np.float32)


def throughput(folder: Path, seconds: float, threads: int) -> dict:
    import torch

    from vaezoo.runtime.onnx_backend import OnnxBackend
    from vaezoo.models.loading import load_model

    torch.set_num_threads(threads)
    model, config = load_model(folder)
    parts = model.parts()
    onnx_backend = OnnxBackend(folder)
    res: dict = {}
    for part in ("decoder", "encoder"):
        module, sess = parts[part].module.eval(), onnx_backend.session(part)
        name = sess.get_inputs()[0].name
        res[part] = {}
        for b in BATCHES:
            x = make_inputs(part, config, b)
            xt = torch.from_numpy(x)

            def run_torch():
                with torch.inference_mode():
                    return module(xt)

            r = rates({"onnxruntime": lambda: sess.run(None, {name: x}), "torch": run_torch}, b, 2 * seconds)
            ort_rate, torch_rate = r["onnxruntime"], r["torch"]
            res[part][b] = {"onnxruntime": ort_rate, "torch": torch_rate, "speedup": ort_rate / torch_rate}
            log(f"  {part} batch {b}: onnxruntime {ort_rate:,.0f} img/s, torch {torch_rate:,.0f} img/s")
    return res


# ---------------------------------------------------------------- 3. FLOP/s vs matmul peak
def matmul_peak(threads: int, seconds: float, decoder_fn, decoder_flops: float, with_numpy: bool = True) -> tuple[dict, float]:
    """({candidate: FLOP/s} of square fp32 matmuls, decoder FLOP/s), all timed in the same interleaved rounds.

    numpy's BLAS picks its own thread count, so it is left out when --threads asks for fewer than the cores."""
    import onnx
    import torch
    from onnx import TensorProto, helper

    from vaezoo.runtime.onnx_backend import load_session

    torch.set_num_threads(threads)
    fns, flops = {"decoder": decoder_fn}, {"decoder": decoder_flops}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1024, 2048):
            a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
            b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
                                      [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
                                       helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])],
                                      [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
            path = Path(tmp) / f"mm{n}.onnx"
            onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8), str(path))
            sess = load_session(path, ["CPUExecutionProvider"], threads)
            fns[f"torch.mm {n}"] = lambda ta=ta, tb=tb: torch.mm(ta, tb)
            if with_numpy:
                fns[f"numpy.matmul {n}"] = lambda a=a, b=b: a @ b
            fns[f"onnxruntime MatMul {n}"] = lambda sess=sess, a=a, b=b: sess.run(None, {"a": a, "b": b})
            for name in fns:
                flops.setdefault(name, 2.0 * n**3)
        per_call = rates(fns, 1, seconds * len(fns) / 2)
    achieved = {name: per_call[name] * flops[name] for name in fns}
    decoder = achieved.pop("decoder")
    return achieved, decoder


def decoder_flops_per_image(folder: Path) -> tuple[float, str]:
    import torch

    from vaezoo.models.loading import load_model

    model, config = load_model(folder)
    dec = model.parts()["decoder"].module
    linears = [m for m in dec.modules() if isinstance(m, torch.nn.Linear)]
    convs = [m for m in dec.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    kind = "mlp" if not convs else "conv"
    return 2.0 * sum(m.in_features * m.out_features for m in linears), kind


# ---------------------------------------------------------------- 4. variants
def variants(folder: Path, seconds: float, threads: int) -> dict:
    from vaezoo.runtime.onnx_backend import OnnxBackend
    from vaezoo.store.checkpoint import read_config
    from vaezoo.export import export_checkpoint

    config = read_config(folder)
    res: dict = {}
    with tempfile.TemporaryDirectory(prefix="vaezoo-variants-") as tmp:
        ck = Path(tmp) / "ck"
        ck.mkdir()
        for name in ("config.json", "model.safetensors"):
            shutil.copy2(folder / name, ck / name)
        cfg = json.loads((ck / "config.json").read_text())
        cfg.pop("files", None)  # a scratch copy: no manifest to keep
        (ck / "config.json").write_text(json.dumps(cfg))
        report = export_checkpoint(ck, fp16=True, int8=True, test_data=False, log=None)
        backends = {p: OnnxBackend(ck, precision=p) for p in ("fp32", "fp16", "int8")}
        for part in ("decoder", "encoder"):
            res[part] = {}
            sessions = {p: b.session(part) for p, b in backends.items()}
            name = sessions["fp32"].get_inputs()[0].name
            for precision in backends:
                res[part][precision] = {"bytes": (ck / "onnx" / (f"{part}.onnx" if precision == "fp32" else f"{part}.{precision}.onnx")).stat().st_size}
            for b in (64, 4096):
                x = make_inputs(part, config, b)
                r = rates({p: (lambda sess=sess, x=x: sess.run(None, {name: x})) for p, sess in sessions.items()}, b, 1.5 * seconds)
                for precision, v in r.items():
                    res[part][precision][f"img_s_batch_{b}"] = v
            x = make_inputs(part, config, 256)
            ref = sessions["fp32"].run(None, {name: x})
            for precision, sess in sessions.items():
                got = sess.run(None, {name: x})
                entry = res[part][precision]
                entry["max_abs_err_vs_fp32"] = float(max(np.abs(r - g).max() for r, g in zip(ref, got)))
                if precision != "fp32":
                    entry["export_report_err_vs_torch"] = report["variants"][precision][part]["max_abs_diff_vs_torch_fp32"]
    return res


# ---------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="ONNX Runtime vs torch benchmarks (figures printed, nothing asserted)")
    ap.add_argument("--model", default="dp-factor-mnist5k", help="registry id or checkpoint folder")
    ap.add_argument("--train-steps", type=int, default=300, help="steps of the quick model trained when --model is not available")
    ap.add_argument("--repeats", type=int, default=7, help="cold-process runs per command")
    ap.add_argument("--seconds", type=float, default=1.0, help="timing budget per throughput figure")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for ONNX Runtime and torch alike (default: physical cores; on a busy machine use 1)")
    ap.add_argument("--skip", default="", help="comma-separated sections to skip: cold,throughput,flops,variants")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))

    from vaezoo.runtime.onnx_backend import physical_cores

    import onnxruntime
    import torch

    if args.threads:
        os.environ["VAEZOO_THREADS"] = str(args.threads)  # read by vaezoo.runtime.onnx_backend, also in the cold processes
    threads = physical_cores()
    arg, folder = prepare_model(args.model, args.train_steps)
    figures: dict = {
        "model": arg, "folder": str(folder), "threads": threads,
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} logical cpus, {threads} physical cores".strip(),
        "load_average_at_start": os.getloadavg(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
    }

    print(f"# vaezoo ONNX benchmarks: {arg}  ({figures['machine']}; torch {torch.__version__}, onnxruntime {onnxruntime.__version__})")
    print(f"# load average at start: {' '.join(f'{v:.2f}' for v in figures['load_average_at_start'])} (figures are noisy when this is above ~0.5)")

    if "cold" not in skip:
        log("cold-process runs ...")
        cold = cold_start(arg, args.repeats)
        figures["cold_start"] = cold
        print(f"\n## 1. cold process: vaezoo sample {arg} -n 64 -o grid.png  (median / min of {args.repeats}; target onnx <= 0.5 s)")
        for name, v in cold.items():
            label = f"--backend {name}" if name in ("onnx", "torch") else f"(context) {name}"
            print(f"  {label:<32} {v['median_s']:6.3f} s   min {v['min_s']:.3f} s")

    if "throughput" not in skip:
        log("throughput ...")
        tp = throughput(folder, args.seconds, threads)
        figures["throughput"] = tp
        print(f"\n## 2. in-process throughput, images/s ({threads} threads each; target onnx >= 2x torch at batch 1-64, not slower at 4096)")
        print(f"  {'part':<8} {'batch':>6} {'onnxruntime':>14} {'torch eager':>14} {'onnx/torch':>11}")
        for part, rows in tp.items():
            for b, r in rows.items():
                print(f"  {part:<8} {b:>6} {r['onnxruntime']:>14,.0f} {r['torch']:>14,.0f} {r['speedup']:>10.2f}x")

    if "flops" not in skip:
        log("matmul peak and decoder FLOP/s ...")
        flops_img, kind = decoder_flops_per_image(folder)
        from vaezoo.runtime.onnx_backend import OnnxBackend

        sess = OnnxBackend(folder).session("decoder")
        x = make_inputs("decoder", json.loads((folder / "config.json").read_text()), 4096)
        peaks, achieved = matmul_peak(threads, args.seconds, lambda: sess.run(None, {sess.get_inputs()[0].name: x}), 4096 * flops_img,
                                      with_numpy=args.threads is None)
        peak_name = max(peaks, key=peaks.get)
        peak = peaks[peak_name]
        dec_rate = achieved / flops_img
        figures["flops"] = {"decoder_kind": kind, "decoder_flop_per_image": flops_img, "decoder_img_s_batch_4096": dec_rate,
                            "decoder_flop_s": achieved, "matmul_peaks_flop_s": peaks, "peak": peak_name,
                            "share_of_peak": achieved / peak}
        print(f"\n## 3. {kind} decoder at batch 4096 vs this machine's fp32 matmul peak (target >= 50 %)")
        for name, v in sorted(peaks.items(), key=lambda kv: -kv[1]):
            print(f"  peak candidate {name:<26} {v / 1e9:8.1f} GFLOP/s")
        print(f"  decoder: {flops_img / 1e6:.3f} MFLOP/image x {dec_rate:,.0f} img/s = {achieved / 1e9:.1f} GFLOP/s "
              f"= {100 * achieved / peak:.0f} % of {peak / 1e9:.1f} GFLOP/s ({peak_name})")

    if "variants" not in skip:
        log("fp16 / int8 variants ...")
        var = variants(folder, args.seconds, threads)
        figures["variants"] = var
        print("\n## 4. fp16 / int8 graphs vs fp32 (ONNX Runtime CPU)")
        print(f"  {'graph':<18} {'KiB':>8} {'img/s @64':>12} {'img/s @4096':>12} {'max|err| vs fp32':>17} {'vs torch (export)':>18}")
        for part, rows in var.items():
            for precision, e in rows.items():
                print(f"  {part + '.' + precision:<18} {e['bytes'] / 1024:>8.1f} {e['img_s_batch_64']:>12,.0f} {e['img_s_batch_4096']:>12,.0f} "
                      f"{e['max_abs_err_vs_fp32']:>17.2g} {e.get('export_report_err_vs_torch', 0.0):>18.2g}")

    figures["load_average_at_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Export every part of a checkpoint to ONNX: ``export_checkpoint(folder)`` / ``vaezoo export MODEL``.

One graph per part in ``<checkpoint>/onnx/`` (or ``out_dir``)::

    encoder.onnx        x [, y] -> mu, logvar
    decoder.onnx        z [, y] -> logits (Bernoulli) or mean (Gaussian)
    prior_forward.onnx  z -> eps, logdet        (identity and zeros for the standard prior)
    prior_inverse.onnx  eps -> z
    classifier.onnx     x -> logits             (models that have one; any other part is exported too)

How (torch 2.13): ``torch.onnx.export(..., dynamo=True)`` (torch.export + onnxscript), with every option
passed explicitly: ``external_data=False`` (single-file graphs), ``dynamic_shapes`` with one shared
``batch`` dimension and an example batch of 2 (sizes 0 and 1 would be specialised), ``optimize=True``,
``opset_version=18`` by default (any of 18..26; ONNX Runtime 1.31 accepts opset <= 26). Afterwards the IR
version is set to the lowest the opset needs (IR 8 for opset 18; ONNX Runtime 1.31 accepts IR <= 13,
onnx 1.23 would write 14), the batch axis is named ``batch`` on every input and output, and the graph
must pass ``onnx.checker.check_model(full_check=True)``. ``exporter="torchscript"`` uses the legacy
TorchScript exporter (``dynamo=False``, ``dynamic_axes``): about 20x faster, deprecated by torch.

Every graph carries metadata (:mod:`vaezoo.export.metadata`), and ONNX Model Zoo-style test data is
written next to the graphs (:mod:`vaezoo.export.testdata`). Parity with torch is always measured at
batch 1 and 64; ``check=True`` makes a difference above 1e-4 (or a flow that does not round-trip) an error.
Nothing is written unless every graph exported and loaded; graphs are written atomically and the
checkpoint's manifest (config.json "files") is refreshed when the graphs go into the checkpoint itself.
"""

from __future__ import annotations

import contextlib
import json
import hashlib
import logging
import shutil
import sys
import time
import warnings
from pathlib import Path

from vaezoo.errors import UsageError, VaezooError

DEFAULT_OPSET = 18
MIN_OPSET, MAX_OPSET = 18, 26  # torch's dynamo exporter starts at 18; onnxruntime 1.31 stops at 26
EXPORTERS = ("dynamo", "torchscript")
EXAMPLE_BATCH = 2

def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


@contextlib.contextmanager
def _quiet_torch_onnx():
    """The exporter's own chatter (torchvision notices, deprecation warnings) stays out of stdout/stderr."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_part(module, example: list, input_names: list[str], output_names: list[str], opset: int = DEFAULT_OPSET,
                exporter: str = "dynamo", output_shapes: list | None = None):
    """One torch module -> a checked onnx.ModelProto with a dynamic ``batch`` axis (IR set, single file).

    ``output_shapes`` (shapes of torch's outputs on ``example``) pin the non-batch output dims, which the
    TorchScript exporter leaves symbolic; the checker's shape inference then confirms them.
    """
    import io

    import onnx
    import torch

    from vaezoo.export.graph import finalize_graph

    args = tuple(torch.from_numpy(a) for a in example)
    with _quiet_torch_onnx():
        if exporter == "dynamo":
            batch = torch.export.Dim("batch", min=1)
            program = torch.onnx.export(
                module, args, None,
                dynamo=True, external_data=False, opset_version=opset,
                input_names=input_names, output_names=output_names,
                dynamic_shapes=tuple({0: batch} for _ in args),
                optimize=True, verify=False, report=False, verbose=False, export_params=True,
            )
            proto = program.model_proto
        elif exporter == "torchscript":
            buf = io.BytesIO()
            torch.onnx.export(
                module, args, buf,
                dynamo=False, opset_version=opset, input_names=input_names, output_names=output_names,
                dynamic_axes={name: {0: "batch"} for name in [*input_names, *output_names]},
                export_params=True, do_constant_folding=True, keep_initializers_as_inputs=False,
                training=torch.onnx.TrainingMode.EVAL, verbose=False,
            )
            proto = onnx.load_from_string(buf.getvalue())
        else:
            raise UsageError(f"exporter must be one of {', '.join(EXPORTERS)}, not {exporter!r}")
    for value, shape in zip(proto.graph.output, output_shapes or []):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == len(shape):
            for dim, size in list(zip(dims, shape))[1:]:
                dim.ClearField("dim_param")
                dim.dim_value = int(size)
    finalize_graph(proto)
    return proto


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _managed_files(out_dir: Path, parts) -> list[Path]:
    """Files a previous export of these parts left in ``out_dir`` (graphs, variants, test data)."""
    from vaezoo.export.testdata import TEST_DATA

    found = []
    for part in parts:
        for suffix in ("", ".fp16", ".int8"):
            p = out_dir / f"{part}{suffix}.onnx"
            if p.exists():
                found.append(p)
        td = out_dir / TEST_DATA / part
        if td.exists():
            found.append(td)
    return found


def _check_opset(opset: int) -> None:
    if not MIN_OPSET <= int(opset) <= MAX_OPSET:
        raise UsageError(f"--opset must be between {MIN_OPSET} and {MAX_OPSET} (torch's exporter starts at {MIN_OPSET}, "
                         f"onnxruntime 1.31 accepts up to {MAX_OPSET}), not {opset}")


def _requirements(exporter: str = "dynamo"):
    """torch, onnx, onnxscript (the dynamo exporter) and onnxruntime (the checks), or a one-line error."""
    import importlib

    mods = []
    for name in ("onnx", "onnxruntime", "torch") + (("onnxscript",) if exporter == "dynamo" else ()):
        try:
            mods.append(importlib.import_module(name))
        except ImportError:
            hint = "pip install 'vaezoo[cpu]'" if name == "onnxruntime" else "pip install 'vaezoo[torch]'"
            raise UsageError(f"vaezoo export needs {name}, which is not installed ({hint})") from None
    return mods[0], mods[1], mods[2]


def export_checkpoint(folder, out_dir=None, opset: int = DEFAULT_OPSET, fp16: bool = False, int8: bool = False,
                      check: bool = False, *, exporter: str = "dynamo", force: bool = False, test_data: bool = True,
                      log=_log) -> dict:
    """Export every part of the checkpoint in ``folder`` to ONNX; returns a report (JSON-ready dict).

    ``out_dir`` defaults to ``folder/onnx``. Existing graphs there are replaced only with ``force``.
    ``check`` raises a VaezooError when torch and ONNX Runtime differ by more than 1e-4 at batch 1 or 64
    (the differences are measured and reported either way). ``fp16`` / ``int8`` also write
    ``<part>.fp16.onnx`` / ``<part>.int8.onnx`` with their measured error. ``log`` gets progress lines
    (default: stderr; pass ``None`` for silence).
    """
    from vaezoo.version import __version__
    from vaezoo.runtime.onnx_backend import CORE_PARTS
    from vaezoo.store.checkpoint import WEIGHTS, read_config

    log = log or (lambda msg: None)
    t_start = time.perf_counter()
    folder = Path(folder)
    # cheap checks first (before importing torch)
    _check_opset(opset)
    if exporter not in EXPORTERS:
        raise UsageError(f"exporter must be one of {', '.join(EXPORTERS)}, not {exporter!r}")
    read_config(folder)  # a clear error for a folder that is not a checkpoint
    default_out = folder / "onnx"
    out_dir = Path(out_dir) if out_dir is not None else default_out
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"output {out_dir} exists and is not a folder")

    def refuse_overwrite(old: list[Path]) -> None:
        if old and not force:
            raise UsageError(f"{out_dir} already holds exported graphs ({old[0].name}, ...); pass --force to replace them")

    refuse_overwrite(_managed_files(out_dir, (*CORE_PARTS, "classifier")) if out_dir.is_dir() else [])

    onnx, onnxruntime, torch = _requirements(exporter)
    from vaezoo.models.loading import load_model
    from vaezoo.export import parity, testdata, variants
    from vaezoo.export.metadata import graph_metadata, set_metadata
    from vaezoo.io.files import write_bytes

    model, config = load_model(folder, "cpu")
    signatures = {name: part.signature for name, part in model.parts().items()}  # declared by the model
    parts = {name: part.module.eval() for name, part in model.parts().items()}
    old = _managed_files(out_dir, parts) if out_dir.is_dir() else []
    refuse_overwrite(old)

    weights_sha = _sha256(folder / WEIGHTS)
    exporter_desc = f"torch.onnx.export(dynamo={exporter == 'dynamo'}) torch {torch.__version__}, onnx {onnx.__version__}"
    report: dict = {
        "model": config["id"], "folder": str(folder), "out_dir": str(out_dir), "opset": int(opset), "ir_version": None,
        "exporter": exporter, "versions": {"vaezoo": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
                                            "onnxruntime": onnxruntime.__version__},
        "tolerance": parity.TOLERANCE, "check": bool(check), "parts": {}, "variants": {}, "flow_roundtrip": None,
    }
    files: dict[Path, bytes] = {}
    protos: dict[str, object] = {}
    sessions: dict[str, object] = {}
    specs: dict[str, list] = {}
    failures: list[str] = []

    for part, module in parts.items():
        t0 = time.perf_counter()
        inputs = signatures[part].input_specs(config)
        out_names = signatures[part].output_names()
        example = parity.example_inputs(inputs, config, EXAMPLE_BATCH, seed=123)
        ref = parity.torch_run(module, example)
        if len(ref) != len(out_names):
            raise VaezooError(f"part {part} of {config['id']} returns {len(ref)} outputs but declares {len(out_names)} "
                              f"({', '.join(out_names)})")
        try:
            proto = export_part(module, example, [n for n, _ in inputs], out_names, opset, exporter, [r.shape for r in ref])
        except VaezooError:
            raise
        except Exception as exc:  # the exporter's failures are long; keep the first line
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise VaezooError(f"exporting {part} of {config['id']} failed: {first[:300]}") from None
        out_shapes = [[d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in proto.graph.output]
        in_shapes = [["batch", *shape] for _, shape in inputs]
        meta = graph_metadata(config, part, [(n, s) for (n, _), s in zip(inputs, in_shapes)],
                              list(zip(out_names, out_shapes)), weights_sha256=weights_sha, opset=int(opset),
                              exporter=exporter_desc)
        set_metadata(proto, meta)
        proto.producer_name, proto.producer_version = "vaezoo", __version__
        proto.graph.name = f"{config['id']}.{part}"
        try:
            sess = parity.cpu_session(proto.SerializeToString())
        except Exception as exc:
            raise VaezooError(f"onnxruntime {onnxruntime.__version__} cannot load the exported {part} graph "
                              f"(opset {opset}, IR {proto.ir_version}): {str(exc).splitlines()[0][:200]}") from None
        diffs = parity.compare(module, sess, inputs, config)
        # the measured parity goes into the graph's own metadata
        meta["parity"] = {"max_diff_vs_torch": diffs, "measure": "absolute where |torch| <= 1, relative above",
                          "tolerance": parity.TOLERANCE}
        set_metadata(proto, meta)
        protos[part], sessions[part], specs[part] = proto, sess, inputs
        report["ir_version"] = int(proto.ir_version)
        bad = {k: v for k, v in diffs.items() if not v <= parity.TOLERANCE}
        if bad:
            failures.append(f"{part} differs from torch by {max(bad.values()):.3g} at {', '.join(bad)} (tolerance {parity.TOLERANCE:g})")
        data = proto.SerializeToString()
        files[out_dir / f"{part}.onnx"] = data
        entry = {"file": f"{part}.onnx", "bytes": len(data), "inputs": [[n, s] for (n, _), s in zip(inputs, in_shapes)],
                 "outputs": [[n, s] for n, s in zip(out_names, out_shapes)], "parity": diffs,
                 "seconds": round(time.perf_counter() - t0, 2)}
        if test_data:
            xs = parity.example_inputs(inputs, config, testdata.BATCH, seed=2024)
            ys = parity.torch_run(module, xs)
            td = testdata.test_data_dir(out_dir, part)
            for name, blob in testdata.encode_test_data(list(zip([n for n, _ in inputs], xs)), list(zip(out_names, ys))).items():
                files[td / name] = blob
            entry["test_data"] = td.relative_to(out_dir).as_posix()
            entry["test_data_max_abs_diff"] = parity.max_abs_diff(ys, parity.ort_run(sess, xs))
        report["parts"][part] = entry
        log(f"  {part:<14} {len(data) / 1024:8.1f} KiB  torch vs onnxruntime: "
            + ", ".join(f"{k.replace('_', ' ')} {v:.2g}" for k, v in diffs.items()) + f"  ({entry['seconds']:.1f}s)")

    if "prior_forward" in sessions and "prior_inverse" in sessions:
        rt = parity.flow_roundtrip(sessions["prior_forward"], sessions["prior_inverse"], specs["prior_forward"][0][1])
        report["flow_roundtrip"] = {"max_abs_error": rt, "batch": 64}
        log(f"  flow round trip prior_inverse(prior_forward(z)) - z: max abs {rt:.2g}")
        if not rt <= parity.TOLERANCE:
            failures.append(f"the exported flow does not round-trip (max abs error {rt:.3g})")

    report["ok"] = not failures
    if failures and check:
        raise VaezooError("parity check failed: " + "; ".join(failures) + " (nothing written)")
    for msg in failures:
        log(f"warning: {msg}")

    for precision, wanted in (("fp16", fp16), ("int8", int8)):
        if not wanted:
            continue
        report["variants"][precision] = {}
        for part, proto in protos.items():
            try:
                var = variants.make_variant(proto, precision)
            except Exception as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise VaezooError(f"making the {precision} variant of {part} failed: {first[:300]}") from None
            sess = parity.cpu_session(var.SerializeToString())
            xs = parity.example_inputs(specs[part], config, 64, seed=64 + 64)
            err = parity.max_abs_diff(parity.torch_run(parts[part], xs), parity.ort_run(sess, xs))
            from vaezoo.runtime.onnx_backend import META_KEY

            meta = json.loads({p.key: p.value for p in var.metadata_props}[META_KEY])
            meta.update(precision=precision, note=variants.NOTES[precision],
                        measured_error={"max_abs_diff_vs_torch_fp32": err, "batch": 64})
            meta.pop("parity", None)
            set_metadata(var, meta)
            data = var.SerializeToString()
            files[out_dir / f"{part}.{precision}.onnx"] = data
            report["variants"][precision][part] = {"file": f"{part}.{precision}.onnx", "bytes": len(data),
                                                   "fp32_bytes": len(files[out_dir / f"{part}.onnx"]),
                                                   "max_abs_diff_vs_torch_fp32": err}
            log(f"  {part + '.' + precision:<19} {len(data) / 1024:8.1f} KiB  max abs error vs torch fp32: {err:.3g}")
        report["variants"][precision]["note"] = variants.NOTES[precision]

    report["manifest_updated"] = out_dir.resolve() == default_out.resolve()
    if report["manifest_updated"]:
        # into the checkpoint itself: graphs and manifest are replaced as one step (store.graph_swap)
        from vaezoo.store.checkpoint import MANIFEST_KEY, config_text, manifest_with_graphs
        from vaezoo.store.graph_swap import swap_graphs

        def sealed_config(graphs: Path) -> str:
            return config_text({**read_config(folder), MANIFEST_KEY: manifest_with_graphs(folder, graphs)})

        swap_graphs(folder, {p.relative_to(out_dir).as_posix(): data for p, data in files.items()},
                    [p.relative_to(out_dir).as_posix() for p in old], sealed_config)
    else:
        # another folder (-o): remove what a previous export of these parts left, then every file atomically
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in old:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(path, data)
    report["seconds"] = round(time.perf_counter() - t_start, 2)
    return report

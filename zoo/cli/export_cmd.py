"""`vaezoo export`: a checkpoint's parts -> ONNX graphs in its onnx/ folder (needs torch; imported lazily)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from vaezoo.cli.app import app
from vaezoo.cli.options import print_json, Exporter, ForceOpt, JsonOpt, ModelArg, OfflineOpt
from vaezoo.export.onnx_export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET


@app.command("export")
def export_cmd(
    model: ModelArg,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Folder for the graphs (default: the checkpoint's onnx/ folder).")] = None,
    opset: Annotated[int, typer.Option("--opset", min=MIN_OPSET, max=MAX_OPSET,
                                       help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET} (torch's exporter starts at {MIN_OPSET}; onnxruntime 1.31 accepts up to {MAX_OPSET}).")] = DEFAULT_OPSET,
    fp16: Annotated[bool, typer.Option("--fp16", help="Also write <part>.fp16.onnx (fp16 weights and compute, fp32 I/O) with its measured error.")] = False,
    int8: Annotated[bool, typer.Option("--int8", help="Also write <part>.int8.onnx (dynamic int8 quantization, CPU only) with its measured error.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Fail unless torch and ONNX Runtime agree within 1e-4 at batch 1 and 64 and the flow round-trips.")] = False,
    exporter: Annotated[Exporter, typer.Option("--exporter", help="dynamo (torch.export, default) or torchscript (legacy, faster).")] = Exporter.dynamo,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    offline: OfflineOpt = False,
) -> None:
    """Export every part (encoder, decoder, prior_forward, prior_inverse[, classifier]) to ONNX, with metadata and test data."""
    from vaezoo.export import export_checkpoint

    folder = _writable_checkpoint(model, output, offline)
    report = export_checkpoint(folder, output, opset=opset, fp16=fp16, int8=int8, check=check, exporter=exporter.value,
                               force=force, log=lambda msg: print(msg, file=sys.stderr))
    if as_json:
        print_json(report)
        return
    worst = max((v for p in report["parts"].values() for v in p["parity"].values()), default=0.0)
    status = "passed" if report["ok"] else "FAILED"
    typer.echo(f"wrote {len(report['parts'])} graphs of {report['model']} to {report['out_dir']} "
               f"(opset {report['opset']}, IR {report['ir_version']}, {report['seconds']:.0f}s); "
               f"parity {status}: max abs diff {worst:.2g} (tolerance {report['tolerance']:g})")


def _writable_checkpoint(model: str, output: Optional[Path], offline: bool = False) -> Path:
    """The checkpoint folder to export into.

    Folders the user named and the local store are written in place. A bundled starter lives inside
    the installed package, and a Hub download inside the Hugging Face cache: neither is ours to change,
    so a bundled starter is first copied (without its graphs) into the local store, which then takes
    precedence when the id is resolved; for a Hub model the user names an output folder.
    """
    import shutil

    from vaezoo.store.checkpoint import CARD, CONFIG, METRICS, WEIGHTS
    from vaezoo.errors import UsageError
    from vaezoo.store.resolution import bundled_dir, local_dir, looks_like_path, resolve_model

    folder = resolve_model(model, need="weights", offline=offline)
    if looks_like_path(model) or output is not None:
        return folder
    if model.startswith("hf-hub:"):
        raise UsageError("a Hub model lives in the Hugging Face cache: pass -o DIR for its graphs, or `vaezoo pull` it and export a copy")
    if folder == bundled_dir(model):
        dest = local_dir(model)
        dest.mkdir(parents=True, exist_ok=True)
        for name in (CONFIG, WEIGHTS, METRICS, CARD):
            if (folder / name).is_file():
                shutil.copy2(folder / name, dest / name)
        print(f"copied the bundled starter {model} to {dest} (the local store) to export it there", file=sys.stderr)
        return dest
    return folder

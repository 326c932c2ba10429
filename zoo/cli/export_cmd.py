"""`vaezoo export`: a checkpoint's parts -> ONNX graphs in its onnx/ folder (needs torch; imported lazily)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from vaezoo.cli import app
from vaezoo.cli.options import Force, Json, Model


@app.command("export")
def export_cmd(
    model: str = Model,
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Folder for the graphs (default: the checkpoint's onnx/ folder)."),
    opset: int = typer.Option(18, "--opset", help="ONNX opset, 18..26 (onnxruntime 1.31 accepts up to 26)."),
    fp16: bool = typer.Option(False, "--fp16", help="Also write <part>.fp16.onnx (fp16 weights and compute, fp32 I/O) with its measured error."),
    int8: bool = typer.Option(False, "--int8", help="Also write <part>.int8.onnx (dynamic int8 quantization, CPU only) with its measured error."),
    check: bool = typer.Option(False, "--check", help="Fail unless torch and ONNX Runtime agree within 1e-4 at batch 1 and 64 and the flow round-trips."),
    exporter: str = typer.Option("dynamo", "--exporter", help="dynamo (torch.export, default) or torchscript (legacy, faster)."),
    force: bool = Force,
    as_json: bool = Json,
) -> None:
    """Export every part (encoder, decoder, prior_forward, prior_inverse[, classifier]) to ONNX, with metadata and test data."""
    import inspect

    from vaezoo.export import export_checkpoint
    from vaezoo.store import resolve_model

    if "need" in inspect.signature(resolve_model).parameters:
        folder = resolve_model(model, need="weights")
    else:
        folder = resolve_model(model)
    report = export_checkpoint(folder, output, opset=opset, fp16=fp16, int8=int8, check=check, exporter=exporter,
                               force=force, log=lambda msg: print(msg, file=sys.stderr))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    worst = max((v for p in report["parts"].values() for v in p["parity"].values()), default=0.0)
    status = "passed" if report["ok"] else "FAILED"
    typer.echo(f"wrote {len(report['parts'])} graphs of {report['model']} to {report['out_dir']} "
               f"(opset {report['opset']}, IR {report['ir_version']}, {report['seconds']:.0f}s); "
               f"parity {status}: max abs diff {worst:.2g} (tolerance {report['tolerance']:g})")

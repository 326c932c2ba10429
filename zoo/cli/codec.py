"""Encoding commands: encode, reconstruct."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import typer

from vaezoo.cli.app import app
from vaezoo.cli.options import Backend, Device, Force, Json, Model, Nrow, Offline, Output, emit

Inputs = typer.Argument(..., help="Image files (png, jpg), folders (recursive, sorted) or .npy arrays.")


@app.command()
def encode(
    model: str = Model,
    inputs: List[str] = Inputs,
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="latents.npy (means, N x D) or .csv (source + means); default: CSV on stdout."),
    space: str = typer.Option("representation", "--space", help="representation (z) or generation (eps = g(z), dp models)."),
    backend: str = Backend,
    device: str = Device,
    force: bool = Force,
    as_json: bool = Json,
    offline: bool = Offline,
) -> None:
    """Encode inputs to their posterior means."""
    from vaezoo.errors import UsageError
    from vaezoo.io.files import atomic_path, check_writable
    from vaezoo.io.images import load_inputs, save_output
    from vaezoo.runtime.pipeline import load_pipeline

    if output is not None and output.suffix.lower() not in (".csv", ".npy"):
        raise UsageError(f"unsupported output {output}: use .npy or .csv")
    if output is not None:
        check_writable(output, force)   # before any work: an existing output is refused at once
    pipe = load_pipeline(model, backend, device, offline=offline)
    x, names = load_inputs(inputs, pipe.shape)
    mu, _ = pipe.encode(x, space)
    if output is None or output.suffix.lower() == ".csv":
        import csv
        import io
        import sys

        from vaezoo.io.files import safe_text

        # the csv module quotes names holding , " or a line break; "\r\n" as its terminator makes it quote
        # a lone "\r" too, and each row then ends with "\n" as before
        buf, lines = io.StringIO(), []
        w = csv.writer(buf, lineterminator="\r\n")
        for fields in [["source", *(f"z{i}" for i in range(mu.shape[1]))],
                       *([safe_text(name), *(f"{v:.6g}" for v in row)] for name, row in zip(names, mu.tolist()))]:
            buf.seek(0)
            buf.truncate()
            w.writerow(fields)
            lines.append(buf.getvalue()[:-2] + "\n")
        text = "".join(lines)
        if output is None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        with atomic_path(output) as tmp:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
    elif output.suffix.lower() == ".npy":
        save_output(mu.astype(np.float32), output, force=force)
    else:
        raise UsageError(f"unsupported output {output}: use .npy or .csv")
    emit({"model": pipe.id, "output": str(output), "count": len(mu), "latent_dim": int(mu.shape[1]), "space": space},
         as_json, f"wrote {len(mu)} codes ({space} space, {mu.shape[1]} dims) to {output}")


@app.command()
def reconstruct(
    model: str = Model,
    inputs: List[str] = Inputs,
    output: Optional[Path] = Output,
    nrow: Optional[int] = Nrow,
    backend: str = Backend,
    device: str = Device,
    force: bool = Force,
    as_json: bool = Json,
    offline: bool = Offline,
) -> None:
    """Reconstruct inputs (decode their posterior means). A PNG shows input/reconstruction pairs side by side."""
    from vaezoo.cli.options import require_output
    from vaezoo.io.images import load_inputs, save_output
    from vaezoo.runtime.pipeline import load_pipeline

    output = require_output(output)
    pipe = load_pipeline(model, backend, device, offline=offline)
    x, _ = load_inputs(inputs, pipe.shape)
    recon = pipe.reconstruct(x)
    if output.suffix.lower() == ".png" and pipe.is_image:
        pairs = np.stack([x, recon], axis=1).reshape(-1, *x.shape[1:])
        save_output(pairs, output, force=force, nrow=nrow or 2 * max(1, int(np.ceil(np.sqrt(len(x))))))
    else:
        save_output(recon, output, force=force, nrow=nrow)
    emit({"model": pipe.id, "output": str(output), "count": len(recon), "backend": pipe.backend.name},
         as_json, f"wrote {len(recon)} reconstructions to {output}")

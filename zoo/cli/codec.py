"""Encoding commands: encode, reconstruct."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from vaezoo.cli.app import app
from vaezoo.cli.options import (Backend, BackendOpt, ClassOpt, DeviceOpt, ForceOpt, InputsArg, JsonOpt, ModelArg, NrowOpt, OfflineOpt,
                                OutputOpt, Space, SpaceOpt, emit, require_output)


@app.command()
def encode(
    model: ModelArg,
    inputs: InputsArg,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="latents.npy (means, N x D) or .csv (source + means); default: CSV on stdout.")] = None,
    space: SpaceOpt = Space.representation,
    label: ClassOpt = None,
    backend: BackendOpt = Backend.auto,
    device: DeviceOpt = "cpu",
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    offline: OfflineOpt = False,
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
    pipe = load_pipeline(model, backend.value, device, offline=offline)
    x, names = load_inputs(inputs, pipe.shape)
    mu, _ = pipe.encode(x, space.value, label=label)
    if output is None or output.suffix.lower() == ".csv":
        import csv
        import io
        import sys

        from vaezoo.io.files import safe_text

        # the csv module quotes names holding , " or a line break; "\r\n" as its terminator makes it quote
        # a lone "\r" too, and each row then ends with "\n" as before
        buf, lines = io.StringIO(), []
        w = csv.writer(buf, lineterminator="\r\n")
        # a code of several axes (DRAW: steps x latent) is one row per input, its columns z<t>_<i>
        columns = ["z" + "_".join(map(str, i)) for i in np.ndindex(*mu.shape[1:])] if mu.ndim > 2 else [f"z{i}" for i in range(mu.shape[1])]
        for fields in [["source", *columns],
                       *([safe_text(name), *(f"{v:.6g}" for v in row)] for name, row in zip(names, mu.reshape(len(mu), -1).tolist()))]:
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
    dims = " x ".join(map(str, mu.shape[1:]))
    emit({"model": pipe.id, "output": str(output), "count": len(mu), "latent_dim": int(mu.shape[-1]), "code_shape": list(mu.shape[1:]),
          "space": space.value}, as_json, f"wrote {len(mu)} codes ({space.value} space, {dims} dims) to {output}")


@app.command()
def reconstruct(
    model: ModelArg,
    inputs: InputsArg,
    output: OutputOpt = None,
    nrow: NrowOpt = None,
    label: ClassOpt = None,
    backend: BackendOpt = Backend.auto,
    device: DeviceOpt = "cpu",
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    offline: OfflineOpt = False,
) -> None:
    """Reconstruct inputs (decode their posterior means). A PNG shows input/reconstruction pairs side by side."""
    from vaezoo.io.images import load_inputs, save_output
    from vaezoo.runtime.pipeline import load_pipeline

    output = require_output(output)
    pipe = load_pipeline(model, backend.value, device, offline=offline)
    x, _ = load_inputs(inputs, pipe.shape)
    recon = pipe.reconstruct(x, label=label)
    if output.suffix.lower() == ".png" and pipe.is_image:
        pairs = np.stack([x, recon], axis=1).reshape(-1, *x.shape[1:])
        save_output(pairs, output, force=force, nrow=nrow or 2 * max(1, int(np.ceil(np.sqrt(len(x))))))
    else:
        save_output(recon, output, force=force, nrow=nrow)
    emit({"model": pipe.id, "output": str(output), "count": len(recon), "backend": pipe.backend.name},
         as_json, f"wrote {len(recon)} reconstructions to {output}")

"""Image completion: `vaezoo complete MODEL IMAGES --keep top -o completed.png`.

The model gets the kept half of each image (the rest zeroed, plus the mask: vaezoo.completion) and
generates the rest, ``-n`` times per input from noise drawn with numpy from ``--seed`` (outside the graphs,
so both backends give the same completions). A PNG has one row per input: the input, the masked input,
then its n completions; a .npy holds the completions alone, N x n x C x H x W.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from vaezoo.cli.app import app
from vaezoo.cli.options import (Backend, BackendOpt, DeviceOpt, ForceOpt, InputsArg, JsonOpt, ModelArg, OfflineOpt,
                                OutputOpt, SeedOpt, TemperatureOpt, emit, require_output)
from vaezoo.completion import KEEPS

Keep = Enum("Keep", {k: k for k in KEEPS}, type=str)
Keep.__doc__ = "complete's --keep: the half of each image the model is given."


@app.command()
def complete(
    model: ModelArg,
    inputs: InputsArg,
    keep: Annotated[Keep, typer.Option("--keep", help="The half of each image the model is given; it generates the other.")] = Keep.top,
    n: Annotated[int, typer.Option("--per-input", "-n", min=1, help="Completions per input.")] = 4,
    seed: SeedOpt = 0,
    temperature: TemperatureOpt = 1.0,
    output: OutputOpt = None,
    backend: BackendOpt = Backend.auto,
    device: DeviceOpt = "cpu",
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    offline: OfflineOpt = False,
) -> None:
    """Complete images from one half: per input row, the input, the masked input, then -n completions (PNG)."""
    import numpy as np

    from vaezoo.io.images import check_output, load_inputs, save_output
    from vaezoo.runtime.pipeline import load_pipeline

    output = check_output(require_output(output), force)   # before the model is loaded
    pipe = load_pipeline(model, backend.value, device, offline=offline)
    pipe.check_completion()   # before the inputs are read
    x, _ = load_inputs(inputs, pipe.shape)
    kept, done = pipe.complete(x, keep.value, n, seed, temperature)
    if output.suffix.lower() == ".png":
        rows = np.concatenate([x[:, None], kept[:, None], done], axis=1)   # N x (n + 2) x C x H x W
        save_output(rows.reshape(-1, *pipe.shape), output, force=force, nrow=n + 2)
    else:
        save_output(done, output, force=force)
    emit({"model": pipe.id, "output": str(output), "inputs": len(x), "per_input": n, "keep": keep.value,
          "backend": pipe.backend.name},
         as_json, f"wrote {n} completions of each of {len(x)} inputs (kept: {keep.value} half) to {output}")

"""Generation commands: sample, decode, traverse, interpolate."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import typer

from vaezoo.cli.app import app
from vaezoo.cli.options import Backend, Device, Force, Json, Model, Nrow, Offline, Output, Seed, emit, require_output


def _write(pipe, data, output: Path, force: bool, nrow, as_json: bool, what: str) -> None:
    from vaezoo.io.images import save_output

    save_output(data, output, force=force, nrow=nrow)
    emit({"model": pipe.id, "output": str(output), "count": int(data.shape[0]), "backend": pipe.backend.name},
         as_json, f"wrote {data.shape[0]} {what} to {output}")


@app.command()
def sample(
    model: str = Model,
    n: int = typer.Option(64, "-n", "--num", help="Number of samples."),
    seed: int = Seed,
    temperature: float = typer.Option(1.0, "--temperature", "-t", help="Scale of the generation-space noise."),
    label: Optional[str] = typer.Option(None, "--label", help="Conditional models: the class to generate (default: cycle through the classes)."),
    output: Optional[Path] = Output,
    nrow: Optional[int] = Nrow,
    backend: str = Backend,
    device: str = Device,
    force: bool = Force,
    as_json: bool = Json,
    offline: bool = Offline,
) -> None:
    """Draw samples: eps ~ N(0, T^2 I) (numpy, from --seed) -> prior_inverse -> decoder."""
    from vaezoo.runtime.pipeline import load_pipeline

    output = require_output(output)
    pipe = load_pipeline(model, backend, device, offline=offline)
    _write(pipe, pipe.sample(n, seed, temperature, label), output, force, nrow, as_json, "samples")


@app.command()
def decode(
    model: str = Model,
    latents: Path = typer.Argument(..., help=".npy of N x latent_dim codes (as written by `vaezoo encode`)."),
    space: str = typer.Option("representation", "--space", help="representation (z, as encoded) or generation (eps)."),
    output: Optional[Path] = Output,
    nrow: Optional[int] = Nrow,
    backend: str = Backend,
    device: str = Device,
    force: bool = Force,
    as_json: bool = Json,
    offline: bool = Offline,
) -> None:
    """Decode latent codes from a .npy file."""
    from vaezoo.errors import UsageError
    from vaezoo.io.images import load_npy
    from vaezoo.runtime.pipeline import load_pipeline

    output = require_output(output)
    if latents.is_dir():
        raise UsageError(f"latents file {latents} is a folder; give a .npy file")
    if not latents.is_file():
        raise UsageError(f"latents file {latents} does not exist")
    z = load_npy(latents)
    pipe = load_pipeline(model, backend, device, offline=offline)
    z = pipe.check_latents(z, str(latents))   # "latents.npy row 3 is not finite (NaN or inf)"
    if space == "generation":
        z = pipe.from_generation(z)
    elif space != "representation":
        raise UsageError("--space must be 'representation' or 'generation'")
    _write(pipe, pipe.decode(z), output, force, nrow, as_json, "decodings")


@app.command()
def traverse(
    model: str = Model,
    image: Optional[Path] = typer.Option(None, "--input", "-i", help="Start from this image's code instead of a prior draw."),
    seed: int = Seed,
    dims: Optional[str] = typer.Option(None, "--dims", help="Comma-separated latent dims (default: all)."),
    steps: int = typer.Option(9, "--steps", help="Values per dimension."),
    span: float = typer.Option(2.5, "--span", help="Sweep each coordinate over [-span, span] (generation space)."),
    output: Optional[Path] = Output,
    backend: str = Backend,
    device: str = Device,
    force: bool = Force,
    as_json: bool = Json,
    offline: bool = Offline,
) -> None:
    """Latent traversals: one row per dimension, swept in the generation space (through g^-1 for dp models)."""
    from vaezoo.errors import UsageError
    from vaezoo.io.images import load_inputs
    from vaezoo.runtime.pipeline import load_pipeline

    output = require_output(output)
    try:
        dim_list = [int(d) for d in dims.split(",")] if dims else None
    except ValueError:
        raise UsageError(f"--dims must be comma-separated integers, not {dims!r}") from None
    pipe = load_pipeline(model, backend, device, offline=offline)
    x = load_inputs([str(image)], pipe.shape)[0] if image else None
    out = pipe.traverse(x, seed, dim_list, steps, span)
    _write(pipe, out, output, force, steps, as_json, "traversal images")


@app.command()
def interpolate(
    model: str = Model,
    inputs: Optional[List[str]] = typer.Argument(None, help="Two or more images/.npy: paths between consecutive inputs. Default: random pairs."),
    pairs: int = typer.Option(4, "--pairs", help="Random pairs drawn from --seed when no inputs are given."),
    seed: int = Seed,
    steps: int = typer.Option(10, "--steps", help="Points on each path, ends included."),
    output: Optional[Path] = Output,
    backend: str = Backend,
    device: str = Device,
    force: bool = Force,
    as_json: bool = Json,
    offline: bool = Offline,
) -> None:
    """Interpolations, linear in the generation space (through g^-1 for dp models): one row per path."""
    from vaezoo.errors import UsageError
    from vaezoo.io.images import load_inputs
    from vaezoo.runtime.pipeline import load_pipeline

    output = require_output(output)
    pipe = load_pipeline(model, backend, device, offline=offline)
    if inputs:
        x, _ = load_inputs(inputs, pipe.shape)
        if len(x) < 2:
            raise UsageError("interpolate needs at least two inputs")
        eps = pipe.encode(x, "generation")[0]
        a, b = eps[:-1], eps[1:]
    else:
        if pairs < 1:
            raise UsageError("--pairs must be at least 1")
        eps = pipe.noise(2 * pairs, seed)
        a, b = eps[:pairs], eps[pairs:]
    _write(pipe, pipe.interpolate(a, b, steps), output, force, steps, as_json, "interpolation images")

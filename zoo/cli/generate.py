"""Generation commands: sample, decode, traverse, interpolate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from vaezoo.cli.app import app
from vaezoo.cli.options import (Backend, BackendOpt, ClassOpt, DataDirOpt, DeviceOpt, ForceOpt, JsonOpt, ModelArg, NrowOpt, OfflineOpt, OutputOpt, PoolOpt,
                                RegionOpt, SeedOpt, Space, SpaceOpt, StepsOpt, TemperatureOpt, emit, require_output)


DEFAULT_SAMPLES = "samples.png"


def _output(output: Optional[Path], force: bool) -> Path:
    """The -o file, checked before the model is even loaded (an existing file, a bad extension...)."""
    from vaezoo.io.images import check_output

    return check_output(require_output(output), force)


def _write(pipe, data, output: Path, force: bool, nrow, as_json: bool, what: str) -> None:
    _write_batches(pipe, [data], len(data), output, force, nrow, as_json, what)


def _write_batches(pipe, batches, count: int, output: Path, force: bool, nrow, as_json: bool, what: str) -> None:
    """Write ``count`` outputs as they are computed (a .npy streams; a PNG of too many is refused first)."""
    from vaezoo.io.images import check_output, save_batches

    check_output(output, force, count, images=pipe.is_image)
    save_batches(batches, output, count, force=force, nrow=nrow)
    emit({"model": pipe.id, "output": str(output), "count": int(count), "backend": pipe.backend.name},
         as_json, f"wrote {count} {what} to {output}")


@app.command()
def sample(
    model: ModelArg,
    n: Annotated[int, typer.Option("-n", "--num", min=1, help="Number of samples.")] = 64,
    seed: SeedOpt = 0,
    temperature: TemperatureOpt = 1.0,
    label: ClassOpt = None,
    canvas_steps: Annotated[bool, typer.Option("--canvas-steps", help="Models that draw in T steps (DRAW): the canvas after each step, one row of T images per sample.")] = False,
    region: RegionOpt = None,
    pool: PoolOpt = 10,
    data_dir: DataDirOpt = None,
    output: OutputOpt = None,
    nrow: NrowOpt = None,
    backend: BackendOpt = Backend.auto,
    device: DeviceOpt = "cpu",
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    offline: OfflineOpt = False,
) -> None:
    """Draw samples: eps ~ N(0, T^2 I) (numpy, from --seed) -> prior_inverse -> decoder. Without -o the grid
    goes to samples.png (refused, like any output, when it exists and --force is not given). --region lp|hp
    keeps the draws of lowest aggregate-posterior (lp) or prior (hp) density (vaezoo.evaluation.regions)."""
    from vaezoo.errors import UsageError
    from vaezoo.runtime.pipeline import load_pipeline

    if region is not None and (temperature != 1.0 or label is not None or canvas_steps):
        raise UsageError("--region draws from the prior or the aggregate posterior as they are: no --temperature, --label or --canvas-steps")
    if data_dir is not None and region is None:
        raise UsageError("--data-dir is where --region reads the training data; plain samples read no data")
    output = _output(output or Path(DEFAULT_SAMPLES), force)
    pipe = load_pipeline(model, backend.value, device, offline=offline)
    if region is not None:
        from vaezoo.evaluation.regions import region_images
        from vaezoo.io.images import check_output

        check_output(output, force, n, images=pipe.is_image)
        images, _ = region_images(pipe, region.value, n, seed, pool, data_dir)
        _write(pipe, images, output, force, nrow, as_json, f"{region.value.upper()} samples")
        return
    batches = pipe.sample_batches(n, seed, temperature, label, steps=canvas_steps)   # checks --canvas-steps first
    if canvas_steps:
        t = pipe.canvas_steps
        _write_batches(pipe, batches, n * t, output, force, nrow or t, as_json, f"canvases ({n} samples x {t} steps)")
    else:
        _write_batches(pipe, batches, n, output, force, nrow, as_json, "samples")


@app.command()
def decode(
    model: ModelArg,
    latents: Annotated[Path, typer.Argument(help=".npy of N x latent_dim codes (as written by `vaezoo encode`).")],
    space: SpaceOpt = Space.representation,
    output: OutputOpt = None,
    nrow: NrowOpt = None,
    backend: BackendOpt = Backend.auto,
    device: DeviceOpt = "cpu",
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    offline: OfflineOpt = False,
) -> None:
    """Decode latent codes from a .npy file."""
    from vaezoo.errors import UsageError
    from vaezoo.io.images import load_npy
    from vaezoo.runtime.pipeline import load_pipeline

    output = _output(output, force)
    if latents.is_dir():
        raise UsageError(f"latents file {latents} is a folder; give a .npy file")
    if not latents.is_file():
        raise UsageError(f"latents file {latents} does not exist")
    z = load_npy(latents)
    pipe = load_pipeline(model, backend.value, device, offline=offline)
    z = pipe.check_latents(z, str(latents))   # "latents.npy row 3 is not finite (NaN or inf)"
    if space is Space.generation:
        z = pipe.from_generation(z)
    _write(pipe, pipe.decode(z), output, force, nrow, as_json, "decodings")


@app.command()
def traverse(
    model: ModelArg,
    image: Annotated[Optional[Path], typer.Option("--input", "-i", help="Start from this image's code instead of a prior draw.")] = None,
    seed: SeedOpt = 0,
    dims: Annotated[Optional[str], typer.Option("--dims", help="Comma-separated latent dims (default: all).")] = None,
    steps: StepsOpt = 9,
    span: Annotated[float, typer.Option("--span", help="Sweep each coordinate over [-span, span] (generation space).")] = 2.5,
    output: OutputOpt = None,
    backend: BackendOpt = Backend.auto,
    device: DeviceOpt = "cpu",
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    offline: OfflineOpt = False,
) -> None:
    """Latent traversals: one row per dimension, swept in the generation space (through g^-1 for dp models)."""
    from vaezoo.errors import UsageError
    from vaezoo.io.images import load_inputs
    from vaezoo.runtime.pipeline import load_pipeline

    output = _output(output, force)
    try:
        dim_list = [int(d) for d in dims.split(",")] if dims else None
    except ValueError:
        raise UsageError(f"--dims must be comma-separated integers, not {dims!r}") from None
    pipe = load_pipeline(model, backend.value, device, offline=offline)
    x = load_inputs([str(image)], pipe.shape)[0] if image else None
    count, batches = pipe.traverse_batches(x, seed, dim_list, steps, span)
    _write_batches(pipe, batches, count, output, force, steps, as_json, "traversal images")


@app.command()
def interpolate(
    model: ModelArg,
    inputs: Annotated[Optional[List[str]], typer.Argument(help="Two or more images/.npy: paths between consecutive inputs. Default: random pairs.")] = None,
    pairs: Annotated[int, typer.Option("--pairs", min=1, help="Random pairs drawn from --seed when no inputs are given.")] = 4,
    seed: SeedOpt = 0,
    steps: StepsOpt = 10,
    output: OutputOpt = None,
    backend: BackendOpt = Backend.auto,
    device: DeviceOpt = "cpu",
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    offline: OfflineOpt = False,
) -> None:
    """Interpolations, linear in the generation space (through g^-1 for dp models): one row per path."""
    from vaezoo.errors import UsageError
    from vaezoo.io.images import load_inputs
    from vaezoo.runtime.pipeline import load_pipeline

    output = _output(output, force)
    pipe = load_pipeline(model, backend.value, device, offline=offline)
    if inputs:
        x, _ = load_inputs(inputs, pipe.shape)
        if len(x) < 2:
            raise UsageError("interpolate needs at least two inputs")
        eps = pipe.encode(x, "generation")[0]
        a, b = eps[:-1], eps[1:]
    else:
        eps = pipe.noise(2 * pairs, seed)
        a, b = eps[:pairs], eps[pairs:]
    _write(pipe, pipe.interpolate(a, b, steps), output, force, steps, as_json, "interpolation images")

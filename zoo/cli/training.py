"""`vaezoo train`: recipe -> checkpoint folder in $VAEZOO_HOME (or --out)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vaezoo.cli.app import app
from vaezoo.cli.options import print_json, BatchSizeOpt, DataDirOpt, DeviceOpt, ForceOpt, JsonOpt, QuietOpt, SeedOpt, complete_files


def complete_recipe(incomplete: str) -> list[str]:
    """Registry ids and recipe .toml files that start with what was typed."""
    from vaezoo.recipes import list_ids

    return [i for i in list_ids() if i.startswith(incomplete)] + complete_files(incomplete, ".toml")


@app.command()
def train(
    recipe: Annotated[str, typer.Argument(help="Registry id (e.g. dp-vae-moons) or a recipe .toml file.", autocompletion=complete_recipe,
                                          show_default=False)],
    # train's --steps overrides the recipe's step count (at least 1); traverse/interpolate's is images per row
    steps: Annotated[Optional[int], typer.Option("--steps", min=1, help="Override train.steps.")] = None,
    batch_size: BatchSizeOpt = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Override train.lr.")] = None,
    seed: SeedOpt = None,
    nll_samples: Annotated[Optional[int], typer.Option("--nll-samples", min=1, help="Override eval.nll_samples (K for the NLL).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Checkpoint folder (default: $VAEZOO_HOME/models/<id>).")] = None,
    device: DeviceOpt = "auto",
    data_dir: DataDirOpt = None,
    threads: Annotated[int, typer.Option("--threads", min=0, help="CPU threads for torch (0 = auto: 1 for MLP models, all cores for conv).")] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its last checkpoint.")] = False,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Train a model from its recipe; writes config.json, model.safetensors and metrics.json."""
    from vaezoo.recipes import load_recipe_file, resolve
    from vaezoo.store.resolution import local_dir
    from vaezoo.train.trainer import train as run_training

    over = {"train": {k: v for k, v in {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed}.items() if v is not None}}
    if nll_samples is not None:
        over["eval"] = {"nll_samples": nll_samples}
    rec = load_recipe_file(recipe, over) if recipe.endswith(".toml") else resolve(recipe, over)
    folder = out or local_dir(rec["id"])
    metrics = run_training(rec, folder, device=device, resume=resume, force=force, data_dir=data_dir, progress=not quiet,
                           threads=threads, overrides=over)
    if as_json:
        print_json(metrics)
    else:
        typer.echo(str(folder))

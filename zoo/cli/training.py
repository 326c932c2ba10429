"""`vaezoo train`: recipe -> checkpoint folder in $VAEZOO_HOME (or --out)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from vaezoo.cli.app import app


@app.command()
def train(
    recipe: str = typer.Argument(..., help="Registry id (e.g. dp-vae-moons) or a recipe .toml file."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Override train.steps."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Override train.batch_size."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Override train.lr."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override train.seed."),
    nll_samples: Optional[int] = typer.Option(None, "--nll-samples", help="Override eval.nll_samples (K for the NLL)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Checkpoint folder (default: $VAEZOO_HOME/models/<id>)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder with the dataset's files (else $VAEZOO_DATA or download)."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0 = auto: 1 for MLP models, all cores for conv)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last checkpoint."),
    force: bool = typer.Option(False, "--force", help="Start over, replacing what is in the output folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics.json on stdout when done."),
) -> None:
    """Train a model from its recipe; writes config.json, model.safetensors and metrics.json."""
    from vaezoo.errors import UsageError
    from vaezoo.recipes import load_recipe_file, resolve
    from vaezoo.store.resolution import local_dir
    from vaezoo.train.trainer import train as run_training

    for name, val in (("steps", steps), ("batch-size", batch_size)):
        if val is not None and val < 1:
            raise UsageError(f"--{name} must be at least 1")
    over = {"train": {k: v for k, v in {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed}.items() if v is not None}}
    if nll_samples is not None:
        over["eval"] = {"nll_samples": nll_samples}
    rec = load_recipe_file(recipe, over) if recipe.endswith(".toml") else resolve(recipe, over)
    folder = out or local_dir(rec["id"])
    metrics = run_training(rec, folder, device=device, resume=resume, force=force, data_dir=data_dir, progress=not quiet,
                           threads=threads, overrides=over)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
    else:
        typer.echo(str(folder))

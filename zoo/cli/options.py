"""Options shared by several commands, declared once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

Model = typer.Argument(..., help="Registry id (see `vaezoo list`), a checkpoint folder, or a Hub repo hf-hub:org/name (or hf-hub:org/name@revision).")
Output = typer.Option(None, "-o", "--output", help="Output file: .png (grid) or .npy (arrays).")
Force = typer.Option(False, "--force", help="Overwrite an existing output.")
Backend = typer.Option("auto", "--backend", help="auto (ONNX when the graphs exist, else torch), torch or onnx.")
Device = typer.Option("cpu", "--device", help="cpu, cuda or auto (cuda when available).")
Seed = typer.Option(0, "--seed", help="Seed of the numpy noise generator (same seed, same samples on every backend).")
Json = typer.Option(False, "--json", help="Print a machine-readable summary on stdout.")
Nrow = typer.Option(None, "--nrow", help="Images per row in a PNG grid.")
Offline = typer.Option(False, "--offline", help="Use only local and cached models; never contact the Hub (also HF_HUB_OFFLINE=1).")


def emit(summary: dict, as_json: bool, text: str) -> None:
    """Report what a command did: JSON on stdout for machines, or a short line for people."""
    typer.echo(json.dumps(summary) if as_json else text)


def require_output(output: Optional[Path]) -> Path:
    from vaezoo.errors import UsageError

    if output is None:
        raise UsageError("give an output file with -o (grid.png or samples.npy)")
    return output

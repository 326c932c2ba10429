"""Options and arguments shared by several commands, each declared once as a typer ``Annotated`` alias.

A command writes ``backend: BackendOpt = Backend.auto``: the flag names, the help, the choices and the
bounds come from here, the default stays in the command's signature (so ``train`` can default
``--device`` to auto while inference defaults it to cpu). An option that only one command has is
declared in that command. Fixed choice sets are the enums below; a bad value, or a number out of its
bounds, is a usage error (exit 2, one line) before anything is loaded or written.
tests/test_cli_options.py checks that no two commands declare the same option name differently.

Nothing here imports torch: the completion callbacks run on every <TAB>.
"""

from __future__ import annotations

import json
import os
from enum import Enum
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from vaezoo.export.onnx_export import EXPORTERS


# ---------------------------------------------------------------- fixed choice sets
class Backend(str, Enum):
    """--backend: auto (ONNX when the graphs exist, else torch), torch or onnx."""

    auto = "auto"
    torch = "torch"
    onnx = "onnx"


class Space(str, Enum):
    """--space of encode/decode: z as the encoder gives it, or eps = g(z) (the dp models' flow)."""

    representation = "representation"
    generation = "generation"


class Format(str, Enum):
    """classify's --format for stdout (-o picks the format by its extension)."""

    csv = "csv"
    jsonl = "jsonl"


class Region(str, Enum):
    """sample's --region: LP (prior draws of lowest aggregate-posterior density) or HP (the reverse)."""

    lp = "lp"
    hp = "hp"


class Files(str, Enum):
    """pull's --files: which of a Hub checkpoint's files to fetch."""

    all = "all"
    onnx = "onnx"
    torch = "torch"


Exporter = Enum("Exporter", {name: name for name in EXPORTERS}, type=str)
Exporter.__doc__ = "export's --exporter (the ones vaezoo.export knows)."

DEVICES = ("auto", "cpu", "cuda")


# ---------------------------------------------------------------- validation and completion callbacks
def check_device(value: Optional[str]) -> Optional[str]:
    """--device: auto, cpu, cuda or cuda:N (not an Enum because of cuda:N)."""
    if value is None or value in DEVICES or (value.startswith("cuda:") and value[5:].isdigit()):
        return value
    raise typer.BadParameter(f"{value!r} is not one of auto, cpu, cuda, cuda:N")


def complete_device(incomplete: str) -> List[str]:
    return [d for d in (*DEVICES, "cuda:0") if d.startswith(incomplete)]


def complete_model(incomplete: str) -> List[str]:
    """Model ids that start with what was typed: the registry's, the local store's ($VAEZOO_HOME/models)
    and the bundled starters; then the folders matching it as a path. Cheap, and torch-free."""
    from vaezoo.recipes import list_ids
    from vaezoo.store.checkpoint import CONFIG
    from vaezoo.store.resolution import bundled_ids, home

    ids = set(list_ids()) | set(bundled_ids())
    store = home() / "models"
    if store.is_dir():
        ids |= {p.name for p in store.iterdir() if (p / CONFIG).is_file()}
    return sorted(i for i in ids if i.startswith(incomplete)) + complete_files(incomplete)


def complete_files(incomplete: str, suffix: Optional[str] = None) -> List[str]:
    """Folders (as ``name/``), and files ending in ``suffix`` when one is given, that match a partly typed
    path (``runs/f``, ``./``, ``~/ck``, or a name in the current folder)."""
    head, sep, tail = incomplete.rpartition("/")
    where = Path(os.path.expanduser(head) if head else "/") if sep else Path(".")
    try:
        entries = sorted((p.name, p.is_dir()) for p in where.iterdir())
    except OSError:
        return []
    return [f"{head}{sep}{name}" + ("/" if is_dir else "") for name, is_dir in entries
            if name.startswith(tail) and (tail.startswith(".") or not name.startswith("."))
            and (is_dir or (suffix is not None and name.endswith(suffix)))]


# ---------------------------------------------------------------- arguments
ModelArg = Annotated[str, typer.Argument(
    help="Registry id (see `vaezoo list`), a checkpoint folder, or a Hub repo hf-hub:org/name (or hf-hub:org/name@revision).",
    autocompletion=complete_model, show_default=False)]
InputsArg = Annotated[List[str], typer.Argument(help="Image files (png, jpg), folders (recursive, sorted) or .npy arrays.")]

# ---------------------------------------------------------------- options
OfflineOpt = Annotated[bool, typer.Option(
    "--offline", help="Use only local and cached models; never contact the Hub (also HF_HUB_OFFLINE=1).")]
BackendOpt = Annotated[Backend, typer.Option(
    "--backend", help="auto (ONNX when the graphs exist, else torch), torch or onnx.")]
DeviceOpt = Annotated[str, typer.Option(
    "--device", metavar="<auto|cpu|cuda|cuda:N>", callback=check_device, autocompletion=complete_device,
    help="auto (cuda when available), cpu, cuda or cuda:N.")]
OutputOpt = Annotated[Optional[Path], typer.Option("-o", "--output", help="Output file: .png (grid) or .npy (arrays).")]
ForceOpt = Annotated[bool, typer.Option(
    "--force", help="Replace what is already there: an existing output (train: start over; pull: download again even when cached).")]
JsonOpt = Annotated[bool, typer.Option(
    "--json", help="Print a machine-readable JSON summary when done: one indented JSON document on stdout (classify: needs -o for its rows).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
SeedOpt = Annotated[int, typer.Option(
    "--seed", min=0, help="Seed of the random draws: numpy's, outside the graphs, so a seed gives the same samples on every backend (train: overrides train.seed).")]
NrowOpt = Annotated[Optional[int], typer.Option("--nrow", min=1, help="Images per row in a PNG grid.")]
TemperatureOpt = Annotated[float, typer.Option("--temperature", "-t", min=0.0, help="Scale of the generation-space noise (the prior draws).")]
ClassOpt = Annotated[Optional[str], typer.Option(
    "--label", help="Conditional models: the class to generate (sample; default: cycle through the classes), or "
    "the class every input is encoded under (encode, reconstruct; default: the model's own prediction, where it has a classifier).")]
SpaceOpt = Annotated[Space, typer.Option("--space", help="representation (z, as encoded) or generation (eps = g(z), dp models).")]
StepsOpt = Annotated[int, typer.Option(
    "--steps", min=2, help="Images along each row, both ends included: values per swept dimension (traverse), points on each path (interpolate).")]
BatchSizeOpt = Annotated[int, typer.Option(
    "--batch-size", min=1, help="Examples per batch (classify, evaluate: per classifier call; train: overrides train.batch_size).")]
def check_data_dir(value: Optional[str]) -> Optional[str]:
    """--data-dir names where the files are: a path that is not a folder is a mistake, not a place to download into."""
    if value is not None and not Path(value).expanduser().is_dir():
        raise typer.BadParameter(f"{value} is not a folder")
    return value


DataDirOpt = Annotated[Optional[str], typer.Option(
    "--data-dir", callback=check_data_dir,
    help="Folder with the dataset's files (else $VAEZOO_DATA or download); evaluate and sample --region read the model's dataset from it.")]
RevisionOpt = Annotated[Optional[str], typer.Option(
    "--revision", help="Hub revision: pull fetches this branch, tag or commit instead of the pinned one; push commits to this branch (created from main when missing; default main).")]

# evaluate's sample-quality metrics and sample's --region (vaezoo.evaluation)
MetricsOpt = Annotated[Optional[str], typer.Option(
    "--metrics", help="Comma-separated: fid, fid-lp, skl, leakage, nll, error, mig, factor-score, dci (see README, 'Evaluation').")]
SamplesOpt = Annotated[int, typer.Option(
    "--samples", min=2, help="Samples per set: generated images for fid/fid-lp, prior and aggregate-posterior draws for skl/leakage; validation examples for mig/factor-score/dci.")]
KnnOpt = Annotated[int, typer.Option("--k", min=1, help="k of the k-nearest-neighbour KL estimator (skl).")]
PoolOpt = Annotated[int, typer.Option(
    "--pool", min=1, help="LP/HP samples: candidates drawn per sample kept (the kept ones have the lowest density).")]
RegionOpt = Annotated[Optional[Region], typer.Option(
    "--region", help="lp: the prior draws with the lowest aggregate-posterior density (of --pool per sample); hp: the "
    "aggregate-posterior draws with the lowest prior density.")]
FidClassifierOpt = Annotated[Optional[str], typer.Option(
    "--classifier", help="FID's feature network: a classifier's model id, folder or hf-hub: spec with an exported features "
    "graph, or a feature graph FILE.onnx (default: lenet-mnist5k for 1x28x28 digits, else the Inception graph that "
    "`python -m vaezoo.export.inception WEIGHTS.pth` writes into $VAEZOO_HOME/features).", show_default=False)]

def print_json(obj) -> None:
    """Every command's --json: one indented JSON document on stdout (results on stdout, messages on stderr)."""
    typer.echo(json.dumps(obj, indent=2))


def emit(summary: dict, as_json: bool, text: str) -> None:
    """Report what a command did: JSON on stdout for machines, or a short line for people."""
    if as_json:
        print_json(summary)
    else:
        typer.echo(text)


def require_output(output: Optional[Path]) -> Path:
    from vaezoo.errors import UsageError

    if output is None:
        raise UsageError("give an output file with -o (grid.png or samples.npy)")
    return output

"""`vaezoo list` and `vaezoo info`: what exists and where (no torch import)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from vaezoo.cli.app import app
from vaezoo.cli.options import print_json, JsonOpt, ModelArg, OfflineOpt
from vaezoo.errors import VaezooError


@app.command("list")
def list_cmd(
    pattern: Annotated[Optional[str], typer.Argument(help="Shell-style wildcard, e.g. 'dp-*' or '*-mnist5k'.")] = None,
    as_json: JsonOpt = False,
    available: Annotated[bool, typer.Option("--available", help="Only models that can be used without training.")] = False,
) -> None:
    """List registry ids and where each model is available: local (trained here), bundled, cached
    (its pinned Hub revision is in the Hugging Face cache) or remote (pinned on the Hub, not downloaded)."""
    from vaezoo.recipes import list_ids, resolve
    from vaezoo.store.resolution import availability

    rows = []
    for mid in list_ids(pattern or "*"):
        r = resolve(mid)
        where = availability(mid, r)
        if available and not where:
            continue
        rows.append({"id": mid, "family": r["family"], "dataset": r["data"]["name"], "available": where})
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo(f"no model matches {pattern!r}", err=True)
        raise typer.Exit(1)
    table = [("ID", "FAMILY", "DATASET", "AVAILABLE")]
    table += [(r["id"], r["family"], r["dataset"], ",".join(r["available"]) or "-") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(3)]   # every column as wide as its widest cell
    for row in table:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3])


@app.command()
def info(model: ModelArg, as_json: JsonOpt = False, offline: OfflineOpt = False) -> None:
    """Show a model's resolved recipe, where it is, and its recorded metrics (a remote-only registry id
    shows its recipe without downloading anything)."""
    from vaezoo.families import lookup
    from vaezoo.store.checkpoint import METRICS, read_config
    from vaezoo.io.files import read_json
    from vaezoo.store.hub import is_hub_spec
    from vaezoo.recipes import list_ids, resolve, to_toml
    from vaezoo.store.resolution import availability, looks_like_path, resolve_model

    folder = None
    explicit = looks_like_path(model) or is_hub_spec(model)
    if explicit or set(availability(model)) & {"local", "bundled", "cached"}:
        folder = resolve_model(model, need="metrics", offline=offline)
        config = read_config(folder)
        recipe = config["recipe"]
    else:
        if model not in list_ids():
            resolve(model)  # raises the unknown-id error with suggestions
        recipe, config = resolve(model), None
    metrics = None
    if folder and (folder / METRICS).is_file():
        try:
            metrics = read_json(folder / METRICS)
        except (ValueError, OSError) as exc:
            raise VaezooError(f"cannot read {folder / METRICS}: {exc}") from None
        if not isinstance(metrics, dict):
            raise VaezooError(f"{folder / METRICS} is not a vaezoo metrics file (a JSON object)")
    record = {"id": recipe["id"], "path": str(folder) if folder else None,
              "available": ["hub"] if is_hub_spec(model) else ["path"] if explicit else availability(recipe["id"]),
              "recipe": recipe, "config": config, "metrics": metrics}
    if as_json:
        print_json(record)
        return
    pub = lookup(str(recipe.get("family")))
    papers = "; ".join(f"{paper} {link}".strip() for paper, link in pub.papers) if pub else recipe.get("paper", "")
    typer.echo(f"# {recipe['id']}  ({papers})")
    typer.echo(f"# available: {', '.join(record['available']) or 'no (train it with `vaezoo train ' + recipe['id'] + '`)'}")
    if folder:
        typer.echo(f"# path: {folder}")
    if metrics:
        v = metrics.get("validation", {})
        typer.echo("# validation: " + ", ".join(f"{k}={v[k]:.3f}" for k in ("nll", "neg_elbo", "kl", "recon") if k in v))
    typer.echo(to_toml(recipe), nl=False)

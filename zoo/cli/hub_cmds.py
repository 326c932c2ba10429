"""Hub commands: `vaezoo pull`, `vaezoo push` and `vaezoo card` (no torch import)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vaezoo.cli.app import app
from vaezoo.cli.options import print_json, Files, ForceOpt, JsonOpt, ModelArg, OfflineOpt, RevisionOpt, complete_model


def _hub_target(model: str, revision: Optional[str]) -> tuple[str, str]:
    """(repo, revision) that `pull` fetches for a registry id or an hf-hub: spec."""
    from vaezoo.store import hub
    from vaezoo.errors import UsageError
    from vaezoo.recipes import list_ids, unknown_id_error
    from vaezoo.store.resolution import hub_pin, looks_like_path

    if hub.is_hub_spec(model):
        repo, rev = hub.parse_spec(model)
        if rev and revision and rev != revision:
            raise UsageError(f"{model} already names revision {rev}; drop --revision or the @{rev}")
        return repo, rev or revision or hub.DEFAULT_REVISION
    if looks_like_path(model):
        raise UsageError(f"pull takes a registry id or hf-hub:org/name, not a folder ({model})")
    if model not in list_ids():
        raise unknown_id_error(model)
    pin = hub_pin(model)
    if revision is None and pin is None:
        from vaezoo.store.resolution import availability, not_available

        hint = "" if availability(model) else f" {not_available(model)}."
        raise UsageError(f"no published revision of {model} is pinned in its recipe: pass --revision to pull a branch "
                         f"or commit of its repo, or pull a Hub repo with `vaezoo pull hf-hub:org/name`.{hint}")
    from vaezoo.recipes import resolve

    return (pin[0] if pin else resolve(model)["hub"]["repo"]), revision or pin[1]


@app.command()
def pull(
    model: Annotated[str, typer.Argument(help="Registry id (its recipe's Hub repo at the pinned revision) or hf-hub:org/name (or hf-hub:org/name@revision).",
                                         autocompletion=complete_model, show_default=False)],
    revision: RevisionOpt = None,
    files: Annotated[Files, typer.Option("--files", help="all, onnx (config + graphs) or torch (config + weights).")] = Files.all,
    force: ForceOpt = False,
    offline: OfflineOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Prefetch a model from the Hugging Face Hub into its cache (HF_HOME), verifying every file.

    Afterwards every command works on it with --offline. Prints the snapshot folder.
    """
    from vaezoo.store import hub
    from vaezoo.store.checkpoint import read_config

    need = {Files.all: "all", Files.onnx: "graphs", Files.torch: "weights"}[files]
    repo, rev = _hub_target(model, revision)
    folder = hub.fetch(repo, rev, need=need, offline=offline, force=force)
    config = read_config(folder)
    present = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    record = {"model": config.get("id"), "repo": repo, "revision": rev, "commit": folder.name,
              "path": str(folder), "files": present}
    if as_json:
        print_json(record)
        return
    typer.echo(f"{config.get('id')}: {repo}@{rev} (commit {folder.name}), {len(present)} files verified", err=True)
    typer.echo(str(folder))


@app.command()
def push(
    model: ModelArg,
    repo_id: Annotated[str, typer.Argument(help="Hub repo org/name to upload to (created when missing).")],
    private: Annotated[bool, typer.Option("--private", help="Create the repo as private (an existing repo keeps its visibility).")] = False,
    revision: RevisionOpt = None,
    commit_message: Annotated[Optional[str], typer.Option("--commit-message", "-m", help="Commit message.")] = None,
    card: Annotated[Optional[Path], typer.Option("--card", help="Upload this Markdown file as README.md instead of the checkpoint's card.")] = None,
    overwrite_card: Annotated[bool, typer.Option("--overwrite-card", help="Replace a README.md on the Hub that was edited by hand.")] = False,
    keep_card: Annotated[bool, typer.Option("--keep-card", help="Leave the Hub's README.md as it is (upload no card).")] = False,
    rehash: Annotated[bool, typer.Option("--rehash", help="Re-list the folder's files and their SHA-256 instead of requiring the recorded manifest to match.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Upload a checkpoint (config, weights, metrics, ONNX graphs, model card) to the Hub in one commit.

    The README.md is the model card: the folder's README.md when it was written by hand, else a card
    generated for REPO_ID. Needs HF_TOKEN (or `hf auth login`). Prints the commit id to pin.
    """
    from vaezoo.store import hub
    from vaezoo.errors import UsageError
    from vaezoo.store.resolution import resolve_model

    if overwrite_card and keep_card:
        raise UsageError("--overwrite-card and --keep-card contradict each other")
    if card is not None and keep_card:
        raise UsageError("--card and --keep-card contradict each other")
    repo_id = hub.check_repo_id(repo_id)
    folder = resolve_model(model, need="all")
    result = hub.push(folder, repo_id, private=private, branch=revision, commit_message=commit_message, card=card,
                      overwrite_card=overwrite_card, keep_card=keep_card, rehash=rehash)
    if as_json:
        print_json(result)
        return
    spec = hub.format_spec(repo_id, result["commit"])
    typer.echo(f"pushed {len(result['files'])} files to {repo_id}@{result['revision']}; pin it as {spec}", err=True)
    typer.echo(result["commit"])


@app.command()
def card(
    model: ModelArg,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the card here (e.g. model_cards/<id>.md); default: stdout.")] = None,
    repo: Annotated[Optional[str], typer.Option("--repo", help="Hub repo the usage examples point at (default: the recipe's hub.repo).")] = None,
    force: ForceOpt = False,
    offline: OfflineOpt = False,
) -> None:
    """Generate a model card (README.md) from a checkpoint and its recipe.

    An existing card that vaezoo generated is regenerated in place; one edited by hand is kept unless --force.
    """
    from vaezoo.store import cards, hub
    from vaezoo.errors import UsageError
    from vaezoo.io.files import write_bytes
    from vaezoo.store.resolution import resolve_model

    folder = resolve_model(model, need="metrics", offline=offline)
    text = cards.render(folder, repo_id=hub.check_repo_id(repo) if repo else None)
    if output is None:
        typer.echo(text, nl=False)
        return
    if output.exists() and not force:
        try:
            old = output.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            old = ""
        if not cards.is_generated(old):
            raise UsageError(f"{output} exists and was edited by hand (or is not a vaezoo card); pass --force to replace it")
    if not output.parent.exists():
        raise UsageError(f"output folder {output.parent} does not exist")
    write_bytes(output, text.encode("utf-8"))
    typer.echo(f"wrote the model card of {cards.card_metadata(text).get('model-index', [{}])[0].get('name', model)} to {output}", err=True)

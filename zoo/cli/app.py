"""The typer application every command module adds its commands to."""

from __future__ import annotations

import typer

from vaezoo.version import __version__

app = typer.Typer(
    name="vaezoo",
    help="An exportable model zoo of variational autoencoders: list, inspect, train, export to ONNX, sample, encode, decode, classify, and pull/push models on the Hugging Face Hub.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion; model arguments complete ids (vaezoo.cli.options)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vaezoo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    pass

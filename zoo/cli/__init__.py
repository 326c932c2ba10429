"""The `vaezoo` command line.

Results go to stdout or the -o file, progress and logs to stderr. Known errors print one line
and exit non-zero (1, or 2 for bad usage); set VAEZOO_DEBUG=1 for the traceback.
Command modules import torch only inside the commands that need it.
"""

from __future__ import annotations

import os
import sys

import typer

from vaezoo.errors import VaezooError

app = typer.Typer(
    name="vaezoo",
    help="An exportable model zoo of variational autoencoders: list, inspect, train, export to ONNX, sample, encode, decode, classify, and pull/push models on the Hugging Face Hub.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from vaezoo import __version__

        typer.echo(f"vaezoo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    pass


# Registering a command module = importing it (each module decorates functions onto `app`).
from vaezoo.cli import catalog, classify_cmd, codec, export_cmd, generate, hub_cmds, training  # noqa: E402,F401


def main() -> None:
    try:
        app()
    except VaezooError as exc:
        if os.environ.get("VAEZOO_DEBUG") == "1":
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)

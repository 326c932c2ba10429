"""The `vaezoo` command line.

Results go to stdout or the -o file, progress and logs to stderr. Known errors print one line
and exit non-zero (1, or 2 for bad usage); set VAEZOO_DEBUG=1 for the traceback.
Command modules import torch only inside the commands that need it; each adds its commands to
:data:`vaezoo.cli.app.app` when imported, which is what the import line below is for.
"""

from __future__ import annotations

import os
import sys

from vaezoo.cli import catalog, classify_cmd, codec, export_cmd, generate, hub_cmds, training  # noqa: F401
from vaezoo.cli.app import app
from vaezoo.errors import VaezooError


def _one_line(text: str) -> str:
    from vaezoo.io.files import safe_text

    return safe_text(text).replace("\r", "\\r").replace("\n", "\\n")


def _warning_line(message, category, filename, lineno, line=None) -> str:
    """A library's warning (numpy, Pillow on a damaged file) as one line, like vaezoo's own."""
    return f"warning: {_one_line(str(message))}\n"


def main() -> None:
    if os.environ.get("VAEZOO_DEBUG") != "1":
        import warnings

        warnings.formatwarning = _warning_line
    try:
        app()
    except VaezooError as exc:
        if os.environ.get("VAEZOO_DEBUG") == "1":
            raise
        # one line, whatever the message holds (a file name with a newline, bytes that are not UTF-8)
        print("error: " + _one_line(str(exc)), file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)

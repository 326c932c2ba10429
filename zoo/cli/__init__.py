"""The `vaezoo` command line.

Results go to stdout or the -o file, progress and logs to stderr. Known errors print one line
and exit non-zero (1, or 2 for bad usage); set VAEZOO_DEBUG=1 for the traceback.
Command modules import torch only inside the commands that need it; each adds its commands to
:data:`vaezoo.cli.app.app` when imported, which is what the import line below is for.
"""

from __future__ import annotations

import os
import signal
import sys

from vaezoo.cli import catalog, classify_cmd, codec, export_cmd, generate, hub_cmds, training  # noqa: F401
from vaezoo.cli.app import app
from vaezoo.errors import VaezooError


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C, so half-written temp files are removed


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
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

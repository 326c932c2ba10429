"""The `vaezoo` command line.

Results go to stdout or the -o file, progress and logs to stderr. Known errors print one line
and exit non-zero (1, or 2 for bad usage); set VAEZOO_DEBUG=1 for the traceback. Typer's own usage
errors (a bad choice, a number out of range, a missing argument) are printed the same way: one
``error: ...`` line, exit 2.
Command modules import torch only inside the commands that need it; each adds its commands to
:data:`vaezoo.cli.app.app` when imported, which is what the import line below is for.
"""

from __future__ import annotations

import errno
import os
import signal
import sys

import typer

from vaezoo.cli import catalog, classify_cmd, codec, complete, export_cmd, generate, hub_cmds, training, web  # noqa: F401
from vaezoo.cli.app import app
from vaezoo.errors import VaezooError

try:  # recent typer vendors click, and its ClickException (usage errors included) derives from TyperException
    from typer import TyperException as _ClickError
except ImportError:  # older typer runs on click itself
    from click import ClickException as _ClickError


# the machine's I/O failing (not a bug): a full disk or quota, a read-only or unwritable folder, a bad disk
IO_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG}


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C, so half-written temp files are removed


def _one_line(text: str) -> str:
    from vaezoo.io.files import safe_text

    return safe_text(text).replace("\r", "\\r").replace("\n", "\\n")


def _warning_line(message, category, filename, lineno, line=None) -> str:
    """A library's warning (numpy, Pillow on a damaged file) as one line, like vaezoo's own."""
    return f"warning: {_one_line(str(message))}\n"


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    if os.environ.get("VAEZOO_DEBUG") != "1":
        import warnings

        warnings.formatwarning = _warning_line
    try:
        code = app(standalone_mode=False)  # shell completion requests still exit inside
    except VaezooError as exc:
        if os.environ.get("VAEZOO_DEBUG") == "1":
            raise
        # one line, whatever the message holds (a file name with a newline, bytes that are not UTF-8)
        print("error: " + _one_line(str(exc)), file=sys.stderr)
        sys.exit(exc.exit_code)
    except _ClickError as exc:
        _usage_error(exc)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as exc:
        if exc.errno not in IO_ERRNOS or os.environ.get("VAEZOO_DEBUG") == "1":
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}; nothing was left half-written", file=sys.stderr)
        sys.exit(1)
    if isinstance(code, int) and code:  # typer.Exit(n) from a command, or 130 after Ctrl-C
        if code == 130:
            print("interrupted", file=sys.stderr)
        sys.exit(code)


def _usage_error(exc) -> None:
    """typer/click's own errors as one line, like ours; `vaezoo` alone still prints the help (exit 2)."""
    code = getattr(exc, "exit_code", 2)
    if type(exc).__name__ == "NoArgsIsHelpError":
        help_text = exc.format_message()  # empty when rich has printed the help already
        if help_text:
            print(help_text)
        sys.exit(code)
    msg = " ".join(exc.format_message().replace("Value error, ", "").split())  # (the prefix recent typer's value checks add)
    ctx = getattr(exc, "ctx", None)
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None and code == 2 else ""
    print(f"error: {msg}{hint}", file=sys.stderr)
    sys.exit(code)

"""User-facing errors: the CLI prints them as one line and exits non-zero."""


class VaezooError(Exception):
    """A known failure with a message a user can act on (no traceback shown)."""

    exit_code = 1


class UsageError(VaezooError):
    """Bad arguments or input from the user."""

    exit_code = 2

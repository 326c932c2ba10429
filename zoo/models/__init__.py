"""vaezoo.models: the networks (torch). One module per model kind, each registering its classes.

Adding a model kind is one module here plus its import line below (see ARCHITECTURE.md).
"""

from __future__ import annotations

from vaezoo.errors import UsageError
from vaezoo.models import semisup, vae  # noqa: F401  (each registers its model kinds)
from vaezoo.models import lenet  # noqa: F401  (the digit classifier of FID-LeNet)
from vaezoo.models.registry import MODEL_KINDS


def build_model(config: dict):
    """The model a config describes. A recipe that cannot be built (unknown kind or backbone, a net that
    does not fit the data) is a UsageError, so the CLI prints one line instead of a traceback."""
    recipe = config["recipe"]
    kind = recipe["model"]["kind"]
    if kind not in MODEL_KINDS:
        raise UsageError(f"recipe {recipe.get('id', '?')!r}: unknown model kind {kind!r} ({', '.join(MODEL_KINDS)})")
    try:
        return MODEL_KINDS[kind](config)
    except ValueError as exc:  # the nets' own checks (nets.py, flow.py, semisup.py)
        raise UsageError(f"recipe {recipe.get('id', '?')!r}: {exc}") from exc
    except KeyError as exc:  # every setting is read from the recipe; none has a default in code
        raise UsageError(f"recipe {recipe.get('id', '?')!r} lacks the model setting {exc.args[0]!r}") from None

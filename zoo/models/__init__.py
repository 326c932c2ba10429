"""vaezoo.models: the networks (torch). One module per model kind, each registering its classes.

Adding a model kind is one module here plus its import line below (see ARCHITECTURE.md).
"""

from __future__ import annotations

from vaezoo.models import cvae, draw, lenet, semisup, vae  # noqa: F401  (each registers its model kinds)
from vaezoo.models.loading import build_model, create_model  # noqa: F401  (the package's API)
from vaezoo.models.registry import MODEL_KINDS  # noqa: F401

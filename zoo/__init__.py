"""vaezoo: an exportable model zoo of variational autoencoders.

Importing this package is cheap: nothing here imports torch. Heavy modules are imported inside
the functions that need them, so the ONNX inference path runs in environments without torch.
"""

__version__ = "0.1.0"


def list_models(pattern: str = "*") -> list[str]:
    """Registry ids matching a shell-style wildcard, e.g. ``list_models("dp-*")``."""
    from vaezoo.recipes import list_ids

    return list_ids(pattern)


def load(model: str, backend: str = "auto", device: str = "cpu"):
    """Load a model (registry id or checkpoint folder) as a :class:`vaezoo.pipeline.Pipeline`."""
    from vaezoo.pipeline import load_pipeline

    return load_pipeline(model, backend=backend, device=device)

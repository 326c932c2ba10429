"""vaezoo: an exportable model zoo of variational autoencoders.

Importing this package is cheap: nothing here imports torch. Heavy modules are imported inside
the functions that need them, so the ONNX inference path runs in environments without torch.
"""

from vaezoo.version import __version__

__all__ = ["__version__", "list_models", "load"]


def list_models(pattern: str = "*") -> list[str]:
    """Registry ids matching a shell-style wildcard, e.g. ``list_models("dp-*")``."""
    from vaezoo.recipes import list_ids

    return list_ids(pattern)


def load(model: str, backend: str = "auto", device: str = "cpu", offline: bool = False):
    """Load a model as the :class:`vaezoo.runtime.pipeline.Pipeline` the CLI uses.

    ``model`` is a registry id (local store, then bundled starters, then the recipe's Hub repo at its
    pinned revision), a checkpoint folder, or a Hub repo ``"hf-hub:org/name[@revision]"``.
    ``backend`` is "auto" (ONNX when the graphs exist, else torch), "torch" or "onnx"; only the files
    that backend needs are downloaded, and every file is verified against its SHA-256 before use.
    ``device`` is "cpu", "cuda" or "auto". ``offline=True`` (or HF_HUB_OFFLINE=1) uses only the cache.

    >>> pipe = vaezoo.load("dp-factor-mnist5k")
    >>> images = pipe.sample(16, seed=0)          # (16, 1, 28, 28) float32 in [0, 1]
    >>> mu, logvar = pipe.encode(images)
    """
    from vaezoo.runtime.pipeline import load_pipeline

    return load_pipeline(model, backend=backend, device=device, offline=offline)

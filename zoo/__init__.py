"""vaezoo: an exportable model zoo of variational autoencoders.

Importing this package is cheap: nothing here imports torch. Heavy modules are imported inside
the functions that need them, so the ONNX inference path runs in environments without torch.
"""

from vaezoo.version import __version__

__all__ = ["__version__", "create_model", "list_models", "load"]


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Registry ids matching a shell-style wildcard, e.g. ``list_models("dp-*")``; ``pretrained=True``
    keeps those with weights to load (trained here, bundled, or pinned on the Hub), as timm's does."""
    from vaezoo.recipes import list_ids

    ids = list_ids(pattern)
    if not pretrained:
        return ids
    from vaezoo.store.resolution import availability

    return [m for m in ids if availability(m)]


def create_model(model: str, pretrained: bool = True, device: str = "cpu", offline: bool = False):
    """The torch ``nn.Module`` for a model, in eval mode (timm's ``create_model``; needs ``vaezoo[torch]``).

    ``pretrained=True`` loads the weights of a registry id, checkpoint folder or ``hf-hub:`` spec,
    verified as :func:`load` verifies them; ``pretrained=False`` initialises the recipe's networks
    (registry id or recipe ``.toml``). The module has ``save_pretrained(folder)``, and every model class
    ``from_pretrained(spec)``.

    >>> model = vaezoo.create_model("dp-factor-mnist5k")
    >>> parts = model.parts()                      # encoder, decoder, prior_forward, prior_inverse
    """
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        from vaezoo.errors import UsageError

        raise UsageError("create_model needs PyTorch: pip install 'vaezoo[torch]' (vaezoo.load runs without it)")
    from vaezoo.models.loading import create_model as create

    return create(model, pretrained=pretrained, device=device, offline=offline)


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

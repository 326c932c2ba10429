"""Models in and out of checkpoint folders (torch): a model is built from config.json by code
(:func:`build_model`), and model.safetensors is loaded strictly after its SHA-256 is checked against the
manifest. On top of that, the torch API in the shape timm and diffusers users know:

    model = vaezoo.create_model("dp-factor-mnist5k", pretrained=True)   # an nn.Module, weights verified
    model = VAE.from_pretrained("hf-hub:org/name@rev")
    model.save_pretrained("runs/mine")          # a checkpoint folder `vaezoo` reads (export it for ONNX)

Every model class inherits :class:`Pretrained`; :func:`build_model` records the config it was built
from on the module, so ``save_pretrained`` writes the config.json the trainer would.
"""

from __future__ import annotations

import copy
from pathlib import Path

from vaezoo.errors import UsageError, VaezooError
from vaezoo.io.files import atomic_path, write_json
from vaezoo.models.registry import MODEL_KINDS
from vaezoo.store.checkpoint import (CONFIG, MANIFEST_KEY, METRICS, WEIGHTS, compute_manifest, make_config, read_config,
                                     verify_files, write_config)
from vaezoo.version import __version__


def save_checkpoint(folder: Path, model, config: dict, metrics: dict | None = None) -> None:
    """Write config + weights (+ metrics) atomically into ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "vaezoo_version": __version__})
    if metrics is not None:
        write_json(folder / METRICS, metrics)
    write_config(folder, {**config, MANIFEST_KEY: compute_manifest(folder)})


def load_model(folder: Path, device: str = "cpu"):
    """Rebuild the model from config.json and load model.safetensors strictly."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_config(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise VaezooError(f"{folder} has no {WEIGHTS}")
    verify_files(folder, [WEIGHTS], config)
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise VaezooError(f"cannot read {weights}: {exc}") from None
    try:
        model = build_model(config)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()
        detail = next((ln.strip() for ln in first[1:] if ln.strip()), first[0] if first else "")
        raise VaezooError(f"{weights} does not match {CONFIG}: {detail}") from None
    return model.to(device).eval(), config


def build_model(config: dict):
    """The model a config describes. Every kind is registered by then: importing this module runs
    vaezoo/models/__init__.py first, which imports every model module. A recipe that cannot be built
    (unknown kind or backbone, a net that does not fit the data) is a UsageError, so the CLI prints one
    line instead of a traceback."""
    recipe = config["recipe"]
    kind = recipe["model"]["kind"]
    if kind not in MODEL_KINDS:
        raise UsageError(f"recipe {recipe.get('id', '?')!r}: unknown model kind {kind!r} ({', '.join(MODEL_KINDS)})")
    try:
        model = MODEL_KINDS[kind](config)
    except ValueError as exc:  # the nets' own checks (nets.py, flow.py, semisup.py)
        raise UsageError(f"recipe {recipe.get('id', '?')!r}: {exc}") from exc
    except KeyError as exc:  # every setting is read from the recipe; none has a default in code
        raise UsageError(f"recipe {recipe.get('id', '?')!r} lacks the model setting {exc.args[0]!r}") from None
    if not isinstance(model, Pretrained):   # every kind has from_pretrained / save_pretrained
        raise TypeError(f"model kind {kind!r}: {type(model).__name__} must inherit vaezoo.models.loading.Pretrained")
    model.vaezoo_config = _recorded(config)
    return model


class Pretrained:
    """Mixed into every model class: ``from_pretrained`` / ``save_pretrained`` (diffusers' names)."""

    vaezoo_config: dict   # set by build_model: the config.json this module was built from (no manifest)

    @classmethod
    def from_pretrained(cls, spec: str, *, device: str = "cpu", offline: bool = False):
        """Load ``spec`` (registry id, checkpoint folder, ``hf-hub:org/name[@rev]``) with verified weights;
        refuses a checkpoint of another model class."""
        model = create_model(spec, pretrained=True, device=device, offline=offline)
        if cls is not Pretrained and not isinstance(model, cls):
            raise UsageError(f"{spec} is a {type(model).__name__}, not a {cls.__name__}")
        return model

    def save_pretrained(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write config.json + model.safetensors (with the manifest) into ``folder``, atomically, as the
        trainer does; an existing checkpoint there is kept unless ``overwrite``."""
        folder = Path(folder)
        if (folder / CONFIG).exists() and not overwrite:
            raise UsageError(f"{folder} already holds a checkpoint; pass overwrite=True to replace it")
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"{folder} is a file, not a folder")
        save_checkpoint(folder, self, self.vaezoo_config)
        return folder


def create_model(spec: str, *, pretrained: bool = True, device: str = "cpu", offline: bool = False):
    """The ``nn.Module`` for a model (timm's ``create_model``), in eval mode.

    ``pretrained=True``: ``spec`` is a registry id, checkpoint folder or ``hf-hub:`` spec; the weights
    are fetched if needed and verified against config.json's manifest, as ``vaezoo.load`` does.
    ``pretrained=False``: freshly initialised from the recipe of a registry id or a recipe ``.toml``.
    """
    from vaezoo.runtime.device import pick_device

    dev = pick_device(device)
    if pretrained:
        from vaezoo.store.resolution import resolve_model

        folder = resolve_model(spec, need="weights", offline=offline)
        model, _ = load_model(folder, device=str(dev))
        return model
    from vaezoo.recipes import load_recipe_file, resolve, validate

    recipe = load_recipe_file(spec) if str(spec).endswith(".toml") else resolve(spec)
    validate(recipe)
    return build_model(make_config(recipe)).to(dev).eval()


def _recorded(config: dict) -> dict:
    """The config a module keeps for save_pretrained: a copy without the manifest of the files it came from."""
    config = copy.deepcopy(config)
    config.pop(MANIFEST_KEY, None)
    return config

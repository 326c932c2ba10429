"""Checkpoint folders: the same layout locally, in the cache, bundled and on the Hub.

    config.json        resolved recipe, vaezoo version, input shape and pixel scaling, labels
    model.safetensors  weights (architecture comes from code + config; never pickle)
    metrics.json       held-out evaluation
    README.md          model card
    onnx/*.onnx        exported parts
"""

from __future__ import annotations

from pathlib import Path

from vaezoo import __version__
from vaezoo.errors import VaezooError
from vaezoo.fileio import read_json, write_json

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
METRICS = "metrics.json"


def make_config(recipe: dict) -> dict:
    """config.json for a recipe: everything needed to rebuild and use the model."""
    from vaezoo.data import DATASETS

    info = DATASETS[recipe["data"]["name"]]
    likelihood = recipe["model"]["likelihood"]
    return {
        "format": "vaezoo-checkpoint/1",
        "vaezoo_version": __version__,
        "id": recipe["id"],
        "recipe": recipe,
        "input": {
            "shape": list(info.shape),
            "kind": info.kind,
            # how raw data maps to model input: images are uint8/255 -> float32 in [0, 1]
            "pixel_scale": "x/255" if info.kind == "image" else "none",
            "dtype": "float32",
        },
        "output": {
            "likelihood": likelihood,
            "decoder": "logits" if likelihood == "bernoulli" else "mean",
        },
        "latent_dim": int(recipe["model"]["latent"]),
        "labels": list(info.classes),
        # conditional decoders take (z, y_onehot); label_budget = labelled training examples (None: unsupervised)
        "conditional": bool(recipe["model"].get("conditional", False)),
        "label_budget": recipe["data"].get("labels"),
    }


def read_config(folder: Path) -> dict:
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise VaezooError(f"{folder} is not a vaezoo checkpoint folder (no {CONFIG})")
    try:
        cfg = read_json(path)
    except (ValueError, OSError) as exc:
        raise VaezooError(f"cannot read {path}: {exc}") from None
    if not isinstance(cfg, dict) or "recipe" not in cfg or "input" not in cfg:
        raise VaezooError(f"{path} is not a vaezoo config (missing 'recipe' or 'input')")
    return cfg


def save_checkpoint(folder: Path, model, config: dict, metrics: dict | None = None) -> None:
    """Write config + weights (+ metrics) atomically into ``folder``."""
    from safetensors.torch import save_file

    from vaezoo.fileio import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "vaezoo_version": __version__})
    write_json(folder / CONFIG, config)
    if metrics is not None:
        write_json(folder / METRICS, metrics)


def load_model(folder: Path, device: str = "cpu"):
    """Rebuild the model from config.json and load model.safetensors strictly."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from vaezoo.models import build_model

    folder = Path(folder)
    config = read_config(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise VaezooError(f"{folder} has no {WEIGHTS}")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise VaezooError(f"cannot read {weights}: {exc}") from None
    model = build_model(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise VaezooError(f"{weights} does not match its config (missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]})")
    return model.to(device).eval(), config

"""Weights in and out of a checkpoint folder (torch): the model is rebuilt from config.json by code,
and model.safetensors is loaded strictly after its SHA-256 is checked against the manifest."""

from __future__ import annotations

from pathlib import Path

from vaezoo.errors import VaezooError
from vaezoo.io.files import atomic_path, write_json
from vaezoo.models import build_model
from vaezoo.store.checkpoint import CONFIG, MANIFEST_KEY, METRICS, WEIGHTS, compute_manifest, read_config, verify_files
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
    config = {**config, MANIFEST_KEY: compute_manifest(folder)}
    write_json(folder / CONFIG, config)


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

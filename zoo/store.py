"""Where models live, and the order in which a model argument is resolved.

explicit checkpoint folder -> local store ($VAEZOO_HOME/models/<id>, where `train` writes)
-> bundled starters (inside the package) -> a clear error that says how to get the model.
"""

from __future__ import annotations

import os
from pathlib import Path

from vaezoo.checkpoint import CONFIG
from vaezoo.errors import VaezooError

STARTERS = Path(__file__).resolve().parent / "starters"


def home() -> Path:
    return Path(os.environ.get("VAEZOO_HOME") or Path.home() / ".cache" / "vaezoo")


def local_dir(model_id: str) -> Path:
    return home() / "models" / model_id


def bundled_dir(model_id: str) -> Path:
    return STARTERS / model_id


def bundled_ids() -> list[str]:
    if not STARTERS.is_dir():
        return []
    return sorted(p.name for p in STARTERS.iterdir() if (p / CONFIG).is_file())


def availability(model_id: str) -> list[str]:
    """Where a registry id can be loaded from, best first: 'local', 'bundled'."""
    where = []
    if (local_dir(model_id) / CONFIG).is_file():
        where.append("local")
    if (bundled_dir(model_id) / CONFIG).is_file():
        where.append("bundled")
    return where


def looks_like_path(spec: str) -> bool:
    return os.sep in spec or spec.startswith(".") or Path(spec).is_dir()


def resolve_model(spec: str) -> Path:
    """The checkpoint folder for a model argument (registry id or folder path)."""
    from vaezoo.recipes import list_ids, unknown_id_error

    if looks_like_path(spec):
        folder = Path(spec).expanduser()
        if not folder.is_dir():
            raise VaezooError(f"checkpoint folder {spec} does not exist")
        if not (folder / CONFIG).is_file():
            raise VaezooError(f"{spec} is not a vaezoo checkpoint folder (no {CONFIG})")
        return folder
    for folder in (local_dir(spec), bundled_dir(spec)):
        if (folder / CONFIG).is_file():
            return folder
    if spec not in list_ids():
        raise unknown_id_error(spec)
    raise VaezooError(f"{spec} is not available locally; train it with `vaezoo train {spec}`")

"""Where models live, and the order in which a model argument is resolved.

A model argument is a checkpoint folder, a Hub repo ``hf-hub:org/name[@revision]``, or a registry id.
A registry id resolves to: the local store ($VAEZOO_HOME/models/<id>, where `train` writes)
-> bundled starters (inside the package) -> the recipe's Hub repo at its pinned ``hub.revision``
(from the Hugging Face cache, or downloaded unless offline) -> a clear error that says how to get it.
No torch and no huggingface_hub import at module level.
"""

from __future__ import annotations

import os
from pathlib import Path

from vaezoo.store.checkpoint import CONFIG
from vaezoo.errors import VaezooError
from vaezoo.recipes import check_id

STARTERS = Path(__file__).resolve().parent.parent / "starters"   # vaezoo/starters


def home() -> Path:
    return Path(os.environ.get("VAEZOO_HOME") or Path.home() / ".cache" / "vaezoo")


def local_dir(model_id: str) -> Path:
    """$VAEZOO_HOME/models/<id>; an id that is not a plain name (a path, "..") is refused."""
    return home() / "models" / check_id(model_id)


def bundled_dir(model_id: str) -> Path:
    return STARTERS / check_id(model_id)


def bundled_ids() -> list[str]:
    if not STARTERS.is_dir():
        return []
    return sorted(p.name for p in STARTERS.iterdir() if (p / CONFIG).is_file())


def hub_pin(model_id: str, recipe: dict | None = None) -> tuple[str, str] | None:
    """(repo, revision) of a registry id's published weights: the recipe's hub.repo at its pinned
    hub.revision. None when the recipe pins no revision (nothing published for it yet)."""
    if recipe is None:
        from vaezoo.recipes import list_ids, resolve

        if model_id not in list_ids():
            return None
        recipe = resolve(model_id)
    hub = recipe.get("hub") or {}
    if hub.get("repo") and hub.get("revision"):
        return str(hub["repo"]), str(hub["revision"])
    return None


def availability(model_id: str, recipe: dict | None = None) -> list[str]:
    """Where a registry id can be loaded from, best first: 'local', 'bundled', 'cached' (its pinned Hub
    revision is in the Hugging Face cache) or 'remote' (pinned on the Hub, not downloaded yet)."""
    from vaezoo.store.hub import cached_snapshot

    where = []
    if (local_dir(model_id) / CONFIG).is_file():
        where.append("local")
    if (bundled_dir(model_id) / CONFIG).is_file():
        where.append("bundled")
    pin = hub_pin(model_id, recipe)
    if pin is not None:
        where.append("cached" if cached_snapshot(*pin) is not None else "remote")
    return where


def looks_like_path(spec: str) -> bool:
    from vaezoo.store.hub import is_hub_spec

    if is_hub_spec(spec):
        return False
    return os.sep in spec or spec.startswith(".") or Path(spec).is_dir()


def need_for_backend(backend: str) -> str:
    """Which files a backend reads: torch -> weights, onnx -> graphs, auto -> decided from the manifest."""
    return {"torch": "weights", "onnx": "graphs"}.get(backend, "auto")


def resolve_model(spec: str, *, need: str = "all", offline: bool = False, revision: str | None = None) -> Path:
    """The checkpoint folder for a model argument (folder path, ``hf-hub:`` spec or registry id).

    ``need`` says which files a Hub checkpoint must have locally (see :func:`vaezoo.store.hub.fetch`):
    config, metrics, weights, graphs, auto or all. ``offline`` (or HF_HUB_OFFLINE=1) uses only the cache.
    ``revision`` overrides the revision of an ``hf-hub:`` spec without one, or a registry id's pin.
    """
    from vaezoo.store import hub
    from vaezoo.recipes import list_ids, unknown_id_error

    if hub.is_hub_spec(spec):
        repo_id, rev = hub.parse_spec(spec)
        return hub.fetch(repo_id, rev or revision, need=need, offline=offline)
    if looks_like_path(spec):
        folder = Path(spec).expanduser()
        if not folder.is_dir():
            raise VaezooError(f"checkpoint folder {spec} does not exist")
        if not (folder / CONFIG).is_file():
            raise VaezooError(f"{spec} is not a vaezoo checkpoint folder (no {CONFIG})")
        return folder
    if revision is None:
        for folder in (local_dir(spec), bundled_dir(spec)):
            if (folder / CONFIG).is_file():
                return folder
    if spec not in list_ids():
        raise unknown_id_error(spec)
    pin = hub_pin(spec)
    if revision is not None or pin is not None:
        from vaezoo.recipes import resolve

        repo = pin[0] if pin else resolve(spec)["hub"]["repo"]
        return hub.fetch(repo, revision or pin[1], need=need, offline=offline)
    raise not_available(spec)


# ---------------------------------------------------------------- a model that is not here
def not_available(model_id: str) -> VaezooError:
    """One line that leads somewhere: what is ready instead, what training it takes (data, steps, the
    time measured by benchmarks/bench_steps.py), and how weights from elsewhere are used."""
    from vaezoo.recipes import list_ids, resolve

    recipe = resolve(model_id)
    ready = [m for m in list_ids() if availability(m)]
    fam, ds = recipe["family"], recipe["data"]["name"]
    nearest = sorted(ready, key=lambda m: (resolve(m)["family"] != fam, resolve(m)["data"]["name"] != ds, m))[:3]
    t = recipe["train"]
    parts = [f"{model_id} has no weights here (not trained in {home() / 'models'}, not bundled, no Hub revision pinned in its recipe)"]
    if nearest:
        parts.append(f"ready to use: {', '.join(nearest)} (`vaezoo list --available` lists all)")
    parts.append(f"to train it: `vaezoo train {model_id}`, {t['steps']:,} steps of batch {t['batch_size']} on {ds}"
                 f"{_training_time(model_id, int(t['steps']))}")
    parts.append("weights from the Hub: `vaezoo pull hf-hub:ORG/NAME`, then use hf-hub:ORG/NAME as the model")
    return VaezooError("; ".join(parts))


def _training_time(model_id: str, steps: int) -> str:
    """', about X h on <machine> (measured: s/step)' per device kind recorded in step_times.json."""
    import json

    from vaezoo.families import recipe_dir

    path = recipe_dir() / "step_times.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    out, measured = [], set()
    for kind in ("cpu", "gpu"):
        entry = record.get(kind, {})
        sec = entry.get("seconds_per_step", {}).get(model_id)
        if sec:
            measured.add(kind)
            out.append(f"about {_hours(sec * steps)} on {entry['machine']} ({sec:.3g} s/step measured by benchmarks/bench_steps.py)")
    if "gpu" not in measured:
        out.append("GPU time not measured yet")
    return (", " + "; ".join(out)) if out else ""


def _hours(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
